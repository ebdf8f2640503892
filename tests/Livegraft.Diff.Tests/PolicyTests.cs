using Livegraft.Elf;
using static Livegraft.Elf.ElfNative;

namespace Livegraft.Diff.Tests;

/// <summary>What the case table cannot say about an output: the bytes and relocations the
/// reference policy left at particular places.</summary>
public sealed class PolicyTests
{
    private static DiffResult Run(string name)
    {
        var c = CaseTable.Get(name);
        var orig = FixtureBuild.Read(c.Name, "orig", c.List("cflags"), c.List("transform"));
        var patched = FixtureBuild.Read(c.Name, "patched", c.List("cflags"), c.List("transform"));
        return Differ.Run(orig, patched, new DiffOptions { Parent = new TestParent(orig, c), OrigName = "orig.o", PatchedName = "patched.o" });
    }

    [Fact]
    public void NopFentrySiteBecomesACallAgain()
    {
        // objtool --mnop / recordmcount left a NOP with R_X86_64_NONE; ftrace expects a call to
        // __fentry__ at every __mcount_loc site it registers.
        var result = Run("fentry-nop");
        var output = result.Output!;
        var text = output.Sections.Single(s => s.Name == ".text.handle");
        Assert.Equal(0xe8, text.Data.Span[0]);
        var rela = output.RelocationsFor(text).SelectMany(r => r.Relocations).Single(r => r.Offset == 1);
        Assert.Equal(R_X86_64_PLT32, rela.Type);
        Assert.Equal("__fentry__", rela.Symbol!.Name);
        Assert.Equal(-4, rela.Addend);
        Assert.NotNull(output.FindSection("__mcount_loc"));
        Assert.DoesNotContain(output.Sections.OfType<ElfRelocationSection>().SelectMany(r => r.Relocations), r => r.Type == R_X86_64_NONE);
    }

    [Fact]
    public void FunctionPointerGoesToTheOriginalAndCallsToTheCopy()
    {
        var result = Run("funcptr-changed");
        // register_it takes handler's address: a klp relocation to the original...
        var klp = Assert.Single(result.KlpRelocations, k => k.SymbolName == ".klp.sym.vmlinux.handler,0");
        Assert.StartsWith(".text.register_it", klp.Section, StringComparison.Ordinal);
        Assert.NotEqual(R_X86_64_PLT32, klp.Type);
        Assert.Contains(result.Functions, f => f.OldName == "handler");
    }

    [Fact]
    public void SizesOverrideParsesEveryKeyAndRefusesGarbage()
    {
        var s = SizesOverride.Parse("alt=14,bug=16,jump=16,ex=12,orc=6,pv=16,static-call=8,pi=40", SpecialSectionSizes.Linux61);
        Assert.Equal(14, s.AltInstr);
        Assert.Equal(16, s.BugEntry);
        Assert.Equal(40, s.PrintkIndexEntry);
        Assert.Equal(s, SizesOverride.Parse("alt=14,bug=16,jump=16,ex=12,orc=6,para=16,static-call=8,printk-index=40", SpecialSectionSizes.Linux61));
        Assert.Equal(SpecialSectionSizes.Linux61.OrcEntry, SizesOverride.Parse("bug=16", SpecialSectionSizes.Linux61).OrcEntry);
        foreach (var bad in new[] { "bug", "bug=0", "bug=x", "nope=4" })
            Assert.Equal("LG0125", Assert.Throws<LivegraftException>(() => SizesOverride.Parse(bad, SpecialSectionSizes.Linux61)).Diagnostics[0].Id);
    }
}
