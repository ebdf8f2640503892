using Livegraft.Kernel.Patches;

namespace Livegraft.Kernel.Tests;

/// <summary><c>livegraft build --fuzz N</c>: hunks apply as <c>patch -F N</c> does, each hunk that
/// needed an offset or fuzz is reported, and the default stays exact.</summary>
public sealed class PatchFuzzTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lg-fuzz-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private const string Original = "line1\nline2\nline3\nline4\nline5\nline6\nline7\nline8\nline9\nline10\n";

    // Changes line5; its first and last context lines (line2, line8) moved upstream.
    private const string Patch = """
        --- a/x.c
        +++ b/x.c
        @@ -2,7 +2,7 @@
         line2
         line3
         line4
        -line5
        +FIVE
         line6
         line7
         line8

        """;

    private string Run(string tree, int fuzz, out PatchSet patch)
    {
        File.WriteAllText(Path.Combine(_dir, "x.c"), tree);
        patch = PatchSet.ParseText(Patch);
        patch.Fuzz = fuzz;
        PatchApplier.Apply(patch, _dir);
        return File.ReadAllText(Path.Combine(_dir, "x.c"));
    }

    [Fact]
    public void DefaultIsExactAndNamesTheLine()
    {
        var tree = Original.Replace("line2\n", "line2 changed upstream\n");
        var e = Assert.Throws<LivegraftException>(() => Run(tree, 0, out _));
        Assert.Equal(KernelErrors.HunkFailed, e.Diagnostics[0].Id);
        Assert.Equal(tree, File.ReadAllText(Path.Combine(_dir, "x.c")));
    }

    [Fact]
    public void FuzzOneIgnoresOneContextLineAtEachEndAndIsReported()
    {
        var tree = Original.Replace("line2\n", "line2 changed upstream\n").Replace("line8\n", "line8 too\n");
        var result = Run(tree, 1, out var patch);
        Assert.Equal(tree.Replace("line5\n", "FIVE\n"), result); // the file keeps its own context lines
        var note = Assert.Single(patch.ApplyNotes);
        Assert.Equal(KernelErrors.HunkFuzz, note.Id);
        Assert.Equal("hunk #1", note.Location);
        Assert.Contains("fuzz 1", note.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FuzzDoesNotReachPastItsLimit()
    {
        var tree = Original.Replace("line2\n", "x\n").Replace("line3\n", "y\n");
        Assert.Equal(KernelErrors.HunkFailed, Assert.Throws<LivegraftException>(() => Run(tree, 1, out _)).Diagnostics[0].Id);
        Assert.Equal(Original.Replace("line2\n", "x\n").Replace("line3\n", "y\n").Replace("line5\n", "FIVE\n"), Run(tree, 2, out var patch));
        Assert.Contains("fuzz 2", Assert.Single(patch.ApplyNotes).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OffsetIsReportedWithFuzzOrWithout()
    {
        var result = Run("extra\nextra\nextra\n" + Original, 0, out var patch);
        Assert.Contains("line4\nFIVE\nline6\n", result, StringComparison.Ordinal);
        var note = Assert.Single(patch.ApplyNotes);
        Assert.Equal(KernelErrors.HunkOffset, note.Id);
        Assert.Contains("offset 3 lines", note.Message, StringComparison.Ordinal);
        var fuzzed = Run("extra\n" + Original.Replace("line8\n", "eight\n"), 1, out patch);
        Assert.Contains("line4\nFIVE\nline6\n", fuzzed, StringComparison.Ordinal);
        Assert.Contains("offset 1 lines", Assert.Single(patch.ApplyNotes).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ExactHunksReportNothing()
    {
        Run(Original, 2, out var patch);
        Assert.Empty(patch.ApplyNotes);
    }
}
