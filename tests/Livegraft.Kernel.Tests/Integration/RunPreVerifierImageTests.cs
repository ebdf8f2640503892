using Livegraft.Diff;
using Livegraft.Elf;
using Livegraft.Kernel.Parent;
using Livegraft.Symbols;
using Livegraft.Kernel.Units;
using Livegraft.Verify;

namespace Livegraft.Kernel.Tests.Integration;

/// <summary>Against the reference kernel's real image and real compiles (slow; needs the tree).</summary>
[Collection("kernel tree")]
public sealed class RunPreVerifierImageTests(KernelFixture fixture)
{
    private static readonly Lazy<ImageCode> Image = new(() => ImageCode.Open(KernelFixture.Target.KernelImage));

    private string Compile(string unit, string extra, string name)
    {
        var tree = fixture.Tree;
        var obj = Path.Combine(tree.Root, unit);
        var dir = Path.Combine(Path.GetTempPath(), "livegraft-verify-tests");
        Directory.CreateDirectory(dir);
        var copy = Path.Combine(dir, name);
        using (tree.Lock())
        {
            File.Delete(obj);
            try
            {
                tree.Make([unit], UnitCompiler.KCFlags(AuthorHeaders.Extract()) + extra);
                File.Copy(obj, copy, overwrite: true);
            }
            finally
            {
                File.Delete(obj); // never leave an object compiled with test flags in the shared tree
            }
        }
        return copy;
    }

    [Theory]
    [InlineData("fs/proc/cmdline.o", "cmdline_proc_show")]
    [InlineData("fs/proc/meminfo.o", "meminfo_proc_show")]
    [InlineData("kernel/module/procfs.o", "m_show")]
    public void RealUnitMatchesTheImage(string unit, string function)
    {
        var file = ElfFile.Read(Compile(unit, "", Path.GetFileName(unit)));
        var sym = file.SymbolTable!.Symbols.Single(s => s.IsFunction && s.Name == function && s.Section is not null);
        // Sympos by content: exactly one copy of a duplicated name (m_show occurs several times) matches.
        var symbols = new ParentSymbols(Image.Value.Symbols, null) { ContentMatcher = RunPreVerifier.ContentMatcher(Image.Value, SpecialSectionSizes.Linux61) };
        var sympos = symbols.Sympos(sym, file);
        if (Image.Value.Symbols.CountOf(function) > 1)
        {
            var matcher = RunPreVerifier.ContentMatcher(Image.Value, SpecialSectionSizes.Linux61);
            Assert.Single(Image.Value.Symbols.IndicesOf(function).ToArray(), i => matcher(sym, file, i));
        }
        var diff = new DiffResult { ObjectName = "vmlinux" };
        diff.Functions.Add(new PatchedFunction(function, sympos, "__livegraft_u0_0"));
        var report = RunPreVerifier.Check(RunPreVerifier.Expectations(file, diff, SpecialSectionSizes.Linux61), _ => Image.Value);
        Assert.True(report.Ok, string.Join("\n", report.Functions.Select(f => f.ToDiagnostic()?.ToString())));
        // Every other function of the unit in vmlinux (not init code) matches as well.
        var masks = ExpectationBuilder.Index(file, SpecialSectionSizes.Linux61);
        foreach (var f in file.SymbolTable.Symbols.Where(s => s.IsFunction && s.Section is { } sec && !sec.Name.StartsWith(".init", StringComparison.Ordinal) && s.Size > 0))
        {
            if (Image.Value.Symbols.CountOf(f.Name) != 1)
                continue;
            var check = RunPreVerifier.Check(ExpectationBuilder.Build(masks, f, "vmlinux", 0, ExpectationRole.Referenced), Image.Value);
            Assert.True(check.Ok, check.ToDiagnostic()?.ToString());
        }
    }

    [Fact]
    public void DifferentCompilationIsRefusedNamingTheFunction()
    {
        var file = ElfFile.Read(Compile("fs/proc/meminfo.o", " -fno-inline-small-functions -O1", "meminfo-O1.o"));
        var diff = new DiffResult { ObjectName = "vmlinux" };
        diff.Functions.Add(new PatchedFunction("meminfo_proc_show", 0, "__livegraft_u0_0"));
        var report = RunPreVerifier.Check(RunPreVerifier.Expectations(file, diff, SpecialSectionSizes.Linux61), _ => Image.Value);
        Assert.False(report.Ok);
        var bad = report.Functions.Single(f => f.Name == "meminfo_proc_show");
        Assert.Equal(VerifyErrors.CodeMismatch, bad.Id);
        Assert.NotNull(bad.FirstDifference);
        var e = Assert.Throws<LivegraftException>(() => report.ThrowIfFailed());
        Assert.Equal(ExitCode.VerificationFailed, e.ExitCode);
        Assert.Contains("meminfo_proc_show", e.Diagnostics[0].Location);
    }
}
