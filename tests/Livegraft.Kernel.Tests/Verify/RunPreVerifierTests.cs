using Livegraft.Diff;
using Livegraft.Elf;
using Livegraft.Kernel.Parent;
using Livegraft.Kernel.Symbols;
using Livegraft.Kernel.Tests.Integration;
using Livegraft.Kernel.Units;
using Livegraft.Kernel.Verify;

namespace Livegraft.Kernel.Tests.Verify;

public sealed class VerifyTableTests
{
    [Fact]
    public void TableRoundTrips()
    {
        var entries = new List<FunctionExpectation>
        {
            new("vmlinux", "m_show", 1, ExpectationRole.Replaced, [0x0f, 0x1f, 0, 0, 0, 0xc3], [0, 0, 0, 0, 0, 0xff]),
            new("binfmt_misc", "bm_status_read", 0, ExpectationRole.Referenced, [1, 2, 3], [0xff, 0xff, 0xff]),
        };
        var blob = VerifyTable.Encode(entries, o => o == "vmlinux" ? 0 : 1);
        var back = VerifyTable.Decode(blob);
        Assert.Equal(2, back.Count);
        Assert.Equal(entries[0].KlpSymbol, back[0].KlpSymbol);
        Assert.Equal(entries[1].Expected, back[1].Expected);
        Assert.Equal(entries[1].Role, back[1].Role);
        Assert.Equal(5, back[0].MaskedBytes);
    }

    [Fact]
    public void MalformedTableIsLG0353()
    {
        var e = Assert.Throws<LivegraftException>(() => VerifyTable.Decode("LGVERIF1\x05\0\0\0\0\0\0\0"u8));
        Assert.Equal(VerifyErrors.NoTable, e.Diagnostics[0].Id);
    }

    [Theory]
    [InlineData(".klp.sym.vmlinux.m_show,1", "vmlinux", "m_show", 1)]
    [InlineData(".klp.sym.binfmt_misc.foo.constprop.0,0", "binfmt_misc", "foo.constprop.0", 0)]
    public void KlpSymbolsParse(string symbol, string obj, string name, int sympos)
    {
        Assert.True(RunPreVerifier.TryParseKlpSymbol(symbol, out var o, out var n, out var p));
        Assert.Equal((obj, name, sympos), (o, n, p));
    }

    [Fact]
    public void FirstDifferenceHonoursBothMasks()
    {
        var e = new FunctionExpectation("vmlinux", "f", 0, ExpectationRole.Replaced, [1, 0, 3, 4], [0xff, 0, 0xff, 0xff]);
        Assert.Equal(-1, e.FirstDifference([1, 9, 3, 4]));
        Assert.Equal(2, e.FirstDifference([1, 9, 7, 4]));
        Assert.Equal(-1, e.FirstDifference([1, 9, 7, 4], [0xff, 0xff, 0, 0xff]));
        Assert.Equal(3, e.FirstDifference([1, 9, 3]));
    }

    [Fact]
    public void GeneratedSourceCarriesOneKlpRelocationPerEntry()
    {
        var entries = new List<FunctionExpectation> { new("vmlinux", "cmdline_proc_show", 0, ExpectationRole.Replaced, [0xc3], [0xff]) };
        var c = VerifyTable.GenerateSource(entries, ["vmlinux"]);
        Assert.Contains(".klp.sym.vmlinux.cmdline_proc_show,0", c);
        Assert.Contains("int livegraft_verify_pre_patch_0(struct klp_object *obj)", c);
        Assert.Contains(".pushsection .livegraft.klp_relocs", c);
    }
}

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
        var symbols = new ParentSymbols(Image.Value.Symbols, null) { ContentMatcher = RunPreVerifier.ContentMatcher(Image.Value) };
        var sympos = symbols.Sympos(sym, file);
        if (Image.Value.Symbols.CountOf(function) > 1)
        {
            var matcher = RunPreVerifier.ContentMatcher(Image.Value);
            Assert.Single(Image.Value.Symbols.IndicesOf(function).ToArray(), i => matcher(sym, file, i));
        }
        var diff = new DiffResult { ObjectName = "vmlinux" };
        diff.Functions.Add(new PatchedFunction(function, sympos, "__livegraft_u0_0"));
        var report = RunPreVerifier.Check(RunPreVerifier.Expectations(file, diff), _ => Image.Value);
        Assert.True(report.Ok, string.Join("\n", report.Functions.Select(f => f.ToDiagnostic()?.ToString())));
        // Every other function of the unit in vmlinux (not init code) matches as well.
        var masks = ExpectationBuilder.Index(file);
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
        var report = RunPreVerifier.Check(RunPreVerifier.Expectations(file, diff), _ => Image.Value);
        Assert.False(report.Ok);
        var bad = report.Functions.Single(f => f.Name == "meminfo_proc_show");
        Assert.Equal(VerifyErrors.CodeMismatch, bad.Id);
        Assert.NotNull(bad.FirstDifference);
        var e = Assert.Throws<LivegraftException>(() => report.ThrowIfFailed());
        Assert.Equal(ExitCode.VerificationFailed, e.ExitCode);
        Assert.Contains("meminfo_proc_show", e.Diagnostics[0].Location);
    }
}
