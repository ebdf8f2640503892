using Livegraft.Kernel.Patches;

namespace Livegraft.Kernel.Tests;

public sealed class PatchSetTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lg-patch-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private const string Original = "line1\nline2\nline3\nline4\nline5\nline6\nline7\nline8\nline9\nline10\n";

    private const string GitDiff = """
        From 1234 Mon Sep 17 00:00:00 2001
        Subject: [PATCH] change things

        A commit message with a --- line inside.
        ---
         a/x.c | 2 +-
        diff --git a/dir/x.c b/dir/x.c
        index 1111111..2222222 100644
        --- a/dir/x.c
        +++ b/dir/x.c
        @@ -2,3 +2,4 @@
         line2
        -line3
        +LINE3
        +inserted
         line4
        @@ -8,3 +9,3 @@
         line8
        -line9
        +LINE9
         line10
        diff --git a/dir/new.h b/dir/new.h
        new file mode 100644
        index 0000000..3333333
        --- /dev/null
        +++ b/dir/new.h
        @@ -0,0 +1,2 @@
        +#define NEW 1
        +#define NEWER 2
        diff --git a/dir/old.c b/dir/old.c
        deleted file mode 100644
        index 4444444..0000000
        --- a/dir/old.c
        +++ /dev/null
        @@ -1,2 +0,0 @@
        -int old;
        -int older;
        --
        2.39.2

        """;

    private void Write(string rel, string text)
    {
        var p = Path.Combine(_dir, rel);
        Directory.CreateDirectory(Path.GetDirectoryName(p)!);
        File.WriteAllText(p, text);
    }

    private string Read(string rel) => File.ReadAllText(Path.Combine(_dir, rel));

    [Fact]
    public void ParsesGitDiffWithNewAndDeletedFiles()
    {
        var patch = PatchSet.ParseText(GitDiff);
        Assert.Equal(3, patch.Files.Count);
        Assert.Equal(("dir/x.c", FileChangeKind.Modified, 2), (patch.Files[0].Path, patch.Files[0].Kind, patch.Files[0].Hunks.Count));
        Assert.Equal((null, "dir/new.h", FileChangeKind.Added), (patch.Files[1].OldPath, patch.Files[1].NewPath, patch.Files[1].Kind));
        Assert.Equal(("dir/old.c", null, FileChangeKind.Deleted), (patch.Files[2].OldPath, patch.Files[2].NewPath, patch.Files[2].Kind));
        Assert.Equal(["dir/x.c", "dir/new.h", "dir/old.c"], patch.ChangedPaths);
        Assert.Equal(64, patch.Sha256.Length);
        Assert.Equal(2, patch.Files[0].Hunks[1].Number);
    }

    [Fact]
    public void AppliesAndReverses()
    {
        Write("dir/x.c", Original);
        Write("dir/old.c", "int old;\nint older;\n");
        var patch = PatchSet.ParseText(GitDiff);
        PatchApplier.Apply(patch, _dir);
        Assert.Equal("line1\nline2\nLINE3\ninserted\nline4\nline5\nline6\nline7\nline8\nLINE9\nline10\n", Read("dir/x.c"));
        Assert.Equal("#define NEW 1\n#define NEWER 2\n", Read("dir/new.h"));
        Assert.False(File.Exists(Path.Combine(_dir, "dir/old.c")));

        PatchApplier.Apply(patch, _dir, reverse: true);
        Assert.Equal(Original, Read("dir/x.c"));
        Assert.Equal("int old;\nint older;\n", Read("dir/old.c"));
        Assert.False(File.Exists(Path.Combine(_dir, "dir/new.h")));
    }

    [Fact]
    public void DiffDashUWithTimestampsAndOffset()
    {
        // Two extra lines at the top: the hunk applies 2 lines further down.
        Write("fs/a.c", "extra1\nextra2\n" + Original);
        var patch = PatchSet.ParseText("""
            --- linux.orig/fs/a.c	2024-01-01 10:00:00.000000000 +0100
            +++ linux/fs/a.c	2024-01-02 10:00:00.000000000 +0100
            @@ -5,3 +5,3 @@
             line5
            -line6
            +SIX
             line7

            """);
        Assert.Equal("fs/a.c", patch.Files.Single().Path);
        PatchApplier.Apply(patch, _dir);
        Assert.Contains("line5\nSIX\nline7\n", Read("fs/a.c"));
    }

    [Fact]
    public void NoNewlineAtEndOfFile()
    {
        Write("a.c", "one\ntwo");
        var patch = PatchSet.ParseText("""
            --- a/a.c
            +++ b/a.c
            @@ -1,2 +1,2 @@
             one
            -two
            \ No newline at end of file
            +two
            
            """.Replace("+two\n\n", "+two\n"));
        PatchApplier.Apply(patch, _dir);
        Assert.Equal("one\ntwo\n", Read("a.c"));
        PatchApplier.Apply(patch, _dir, reverse: true);
        Assert.Equal("one\ntwo", Read("a.c"));
    }

    [Fact]
    public void HunkThatDoesNotApplyNamesFileAndHunkAndWritesNothing()
    {
        Write("dir/x.c", Original.Replace("line9", "changed upstream"));
        Write("dir/old.c", "int old;\nint older;\n");
        var patch = PatchSet.ParseText(GitDiff);
        var e = Assert.Throws<LivegraftException>(() => PatchApplier.Apply(patch, _dir));
        Assert.Equal(KernelErrors.HunkFailed, e.Diagnostics[0].Id);
        Assert.Equal("dir/x.c", e.Diagnostics[0].File);
        Assert.Equal("hunk #2", e.Diagnostics[0].Location);
        Assert.Equal(ExitCode.InvalidInput, e.ExitCode);
        // Hunk #1 applied fine in memory, but nothing was written.
        Assert.Equal(Original.Replace("line9", "changed upstream"), Read("dir/x.c"));
        Assert.False(File.Exists(Path.Combine(_dir, "dir/new.h")));
        Assert.True(File.Exists(Path.Combine(_dir, "dir/old.c")));
    }

    [Fact]
    public void MissingFileAndExistingNewFileAreRefused()
    {
        var patch = PatchSet.ParseText(GitDiff);
        var e = Assert.Throws<LivegraftException>(() => PatchApplier.Compute(patch, _dir));
        Assert.Equal(KernelErrors.PatchFileState, e.Diagnostics[0].Id);

        Write("dir/x.c", Original);
        Write("dir/old.c", "int old;\nint older;\n");
        Write("dir/new.h", "already\n");
        e = Assert.Throws<LivegraftException>(() => PatchApplier.Compute(patch, _dir));
        Assert.Equal(KernelErrors.PatchFileState, e.Diagnostics[0].Id);
        Assert.Equal("dir/new.h", e.Diagnostics[0].File);
    }

    [Fact]
    public void RenameWithHunk()
    {
        Write("a/old.c", Original);
        var patch = PatchSet.ParseText("""
            diff --git a/a/old.c b/a/new.c
            similarity index 90%
            rename from a/old.c
            rename to a/new.c
            index 1..2 100644
            --- a/a/old.c
            +++ b/a/new.c
            @@ -1,2 +1,2 @@
            -line1
            +LINE1
             line2

            """);
        Assert.Equal(FileChangeKind.Renamed, patch.Files[0].Kind);
        PatchApplier.Apply(patch, _dir);
        Assert.False(File.Exists(Path.Combine(_dir, "a/old.c")));
        Assert.StartsWith("LINE1\nline2\n", Read("a/new.c"));
    }

    [Theory]
    [InlineData("just some text\n")]
    [InlineData("--- a/x.c\n+++ b/x.c\n@@ -1,3 +1,3 @@\n line\n")]
    [InlineData("--- a/x.c\n+++ b/x.c\n@@ garbage @@\n")]
    [InlineData("@@ -1 +1 @@\n-a\n+b\n")]
    [InlineData("diff --git a/x b/x\nindex 1..2\nGIT binary patch\nliteral 1\n")]
    [InlineData("--- a/../etc/passwd\n+++ b/../etc/passwd\n@@ -1 +1 @@\n-a\n+b\n")]
    public void MalformedPatches(string text)
    {
        var e = Assert.Throws<LivegraftException>(() => PatchSet.ParseText(text));
        Assert.Equal(KernelErrors.PatchMalformed, e.Diagnostics[0].Id);
    }

    [Fact]
    public void ModeOnlyChangeIsNotAFileChange()
    {
        var patch = PatchSet.ParseText("""
            diff --git a/x.sh b/x.sh
            old mode 100644
            new mode 100755
            diff --git a/y.c b/y.c
            --- a/y.c
            +++ b/y.c
            @@ -1 +1 @@
            -a
            +b

            """);
        Assert.Equal("y.c", patch.Files.Single().Path);
    }

    [Fact]
    public void DiffDashNEpochTimestampsMeanCreatedAndDeletedFiles()
    {
        Write("gone.c", "bye\n");
        var patch = PatchSet.ParseText(
            "diff -ruN a/new.c b/new.c\n" +
            "--- a/new.c\t1970-01-01 00:00:00.000000000 +0000\n" +
            "+++ b/new.c\t2024-05-01 12:00:00.000000000 +0200\n" +
            "@@ -0,0 +1 @@\n" +
            "+hello\n" +
            "diff -ruN a/gone.c b/gone.c\n" +
            "--- a/gone.c\t2024-05-01 12:00:00.000000000 +0200\n" +
            "+++ b/gone.c\t1970-01-01 00:00:00.000000000 +0000\n" +
            "@@ -1 +0,0 @@\n" +
            "-bye\n");
        Assert.Equal([FileChangeKind.Added, FileChangeKind.Deleted], patch.Files.Select(f => f.Kind));
        PatchApplier.Apply(patch, _dir);
        Assert.Equal("hello\n", Read("new.c"));
        Assert.False(File.Exists(Path.Combine(_dir, "gone.c")));
    }
}
