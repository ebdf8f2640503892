using Livegraft.Symbols;

namespace Livegraft.Symbols.Tests;

public class SymbolTableTests
{
    private static readonly Lazy<SymbolTable> s_vmlinux = new(() => new SymbolTable(SymbolTable.VmlinuxObject, SymbolFixtures.Tables.Symbols));

    private static SymbolTable Vmlinux => s_vmlinux.Value;

    [Fact]
    public void UniqueNameHasSymposZero()
    {
        var s = Assert.Single(Vmlinux.Lookup("cmdline_proc_show"));
        Assert.Equal(0, Vmlinux.SymPos(s));
        Assert.Same(s, Vmlinux.Find("cmdline_proc_show"));
    }

    [Fact]
    public void DuplicateStaticNamesCountInKallsymsOrder()
    {
        var all = Vmlinux.Lookup("type_show");
        Assert.Equal(17, all.Count);
        Assert.Equal(0xffffffff81039ea0UL, all[0].Address);
        Assert.Equal(0xffffffff810d47e0UL, all[1].Address);
        for (var k = 0; k < all.Count; k++)
        {
            Assert.Equal(k + 1, Vmlinux.SymPos(all[k]));
            Assert.Same(all[k], Vmlinux.Find("type_show", k + 1));
        }
        Assert.Null(Vmlinux.Find("type_show"));        // ambiguous: klp refuses sympos 0
        Assert.Null(Vmlinux.Find("type_show", 18));    // past the last occurrence
        var indices = Vmlinux.IndicesOf("type_show");
        Assert.Equal(2, Vmlinux.SymPos(indices[1]));
    }

    [Fact]
    public void ManyNamesAreDuplicated()
    {
        var duplicated = Vmlinux.Symbols.Select(s => s.Name).Distinct().Count(n => Vmlinux.CountOf(n) > 1);
        Assert.InRange(duplicated, 500, 20_000);
    }

    [Fact]
    public void UnknownNameResolvesToNothing()
    {
        Assert.Empty(Vmlinux.Lookup("no_such_symbol_anywhere"));
        Assert.Null(Vmlinux.Find("no_such_symbol_anywhere"));
        Assert.Equal(0, Vmlinux.CountOf("no_such_symbol_anywhere"));
    }

    [Fact]
    public void AliasesShareAnAddress()
    {
        var names = Vmlinux.AtAddress(0xffffffff82a079c0).Select(s => s.Name).ToArray();
        Assert.Equal(new[] { "jiffies", "jiffies_64" }, names);
    }

    [Fact]
    public void ContainingSymbolAndSizeComeFromTheNextSymbol()
    {
        Assert.True(Vmlinux.TryGetContaining(0xffffffff814105a0 + 0x1a, out var at));
        Assert.Equal("cmdline_proc_show", at.Symbol.Name);
        Assert.Equal(0x1aUL, at.Offset);
        Assert.Equal(0x30UL, at.Size);   // c_next follows at ffffffff814105d0
        Assert.True(Vmlinux.TryGetContaining(0xffffffff82a079c4, out var alias));
        Assert.Equal("jiffies", alias.Symbol.Name);   // first alias, like get_symbol_pos
        Assert.True(Vmlinux.TryGetContaining(0xffffffff81000000, out var start));
        Assert.Equal(0UL, start.Offset);
    }

    [Fact]
    public void ContainingWorksOnSmallTables()
    {
        var table = new SymbolTable("vmlinux", new[]
        {
            new KernelSymbol("a", 't', 0x1000),
            new KernelSymbol("b", 't', 0x1000),
            new KernelSymbol("c", 'T', 0x1040),
        });
        Assert.False(table.TryGetContaining(0xfff, out _));
        Assert.True(table.TryGetContaining(0x103f, out var a));
        Assert.Equal(("a", 0x3fUL, 0x40UL), (a.Symbol.Name, a.Offset, a.Size));
        Assert.True(table.TryGetContaining(ulong.MaxValue, out var c));
        Assert.Equal(("c", 0UL), (c.Symbol.Name, c.Size));
    }

    [Fact]
    public void OpenRecognisesEveryInput()
    {
        var dump = SymbolTable.Open(SymbolFixtures.ReferenceDump);
        Assert.True(dump.IsVmlinux);
        Assert.Equal(94266, dump.Count);
        var module = SymbolTable.Open(Path.Combine(KernelTarget.Reference.ModulesDirectory, "kernel", "lib", "crc16.ko"));
        Assert.Equal("crc16", module.ObjectName);
        var fromModulesDump = SymbolTable.Open(SymbolFixtures.ModulesDump, "crc16");
        Assert.Equal(module.Symbols.Select(s => (s.Name, s.Type)), fromModulesDump.Symbols.Select(s => (s.Name, s.Type)));
    }

    [Fact]
    public void OpenRefusesOtherFiles()
    {
        var path = Path.Combine(Path.GetTempPath(), $"livegraft-symbols-{Environment.ProcessId}.txt");
        File.WriteAllText(path, "hello world\n");
        try
        {
            var e = Assert.Throws<LivegraftException>(() => SymbolTable.Open(path));
            Assert.Equal(SymbolErrors.NotAKernelImage, e.Diagnostics[0].Id);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
