using System.Security.Cryptography;
using Livegraft.Kernel.Patches;
using Livegraft.Kernel.Units;

namespace Livegraft.Kernel.Tests.Integration;

[Collection("kernel tree")]
public sealed class TreeTests(KernelFixture fixture) : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("lg-units-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    private const string CmdlinePatch = """
        --- a/fs/proc/cmdline.c
        +++ b/fs/proc/cmdline.c
        @@ -6,7 +6,7 @@
         
         static int cmdline_proc_show(struct seq_file *m, void *v)
         {
        -	seq_puts(m, saved_command_line);
        +	seq_printf(m, "%s\n", "this has been live patched");
         	seq_putc(m, '\n');
         	return 0;
         }
        --- a/fs/nls/nls_iso8859-1.c
        +++ b/fs/nls/nls_iso8859-1.c
        @@ -215,7 +215,7 @@
         	unsigned char ch = (uni & 0xff00) >> 8;
         
         	if (boundlen <= 0)
        -		return -ENAMETOOLONG;
        +		return -EINVAL;
         
         	uni2charset = page_uni2charset[ch];
         	if (uni2charset && uni2charset[cl])

        """;

    private static string Hash(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    [Fact]
    public void TreeIsPreparedAndStamped()
    {
        var tree = fixture.Tree;
        Assert.Equal(KernelFixture.Target.TreeDirectory, tree.Root);
        Assert.True(File.Exists(Path.Combine(tree.Root, KernelTree.StampFileName)));
        Assert.Equal(KernelFixture.Target.Release, tree.Stamp["release"]);
        Assert.Equal("gcc-12", tree.Stamp["compiler"]);
        Assert.Equal(KernelFixture.Target.SourceVersion, tree.Stamp["source-version"]);
        Assert.False(tree.HasPendingJournal);
    }

    [Fact]
    public void CompilesBuiltinAndModularUnitsBeforeAndAfterAndRestoresTheTree()
    {
        var tree = fixture.Tree;
        var cmdline = Path.Combine(tree.Root, "fs/proc/cmdline.c");
        var nls = Path.Combine(tree.Root, "fs/nls/nls_iso8859-1.c");
        var before = (Hash(cmdline), Hash(nls));
        var patch = PatchSet.ParseText(CmdlinePatch, "cmdline.patch");

        var units = UnitCompiler.CompileBeforeAfter(tree, patch, _work, out var affected, progress: Console.Error.WriteLine, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Empty(affected.Notes);
        Assert.Equal(["fs/nls/nls_iso8859-1.o", "fs/proc/cmdline.o"], units.Select(u => u.Path));
        var proc = units.Single(u => u.Path == "fs/proc/cmdline.o");
        Assert.Equal("vmlinux", proc.Parent);
        var mod = units.Single(u => u.Path == "fs/nls/nls_iso8859-1.o");
        Assert.Equal("nls_iso8859_1", mod.Parent);
        foreach (var u in units)
        {
            Assert.True(File.Exists(u.OrigObject));
            Assert.True(File.Exists(u.PatchedObject));
            Assert.NotEqual(Hash(u.OrigObject), Hash(u.PatchedObject));
            // objtool ran (ORC unwind data) and -ffunction-sections took effect.
            var sections = Scratch.Run("readelf", ["-SW", u.PatchedObject]);
            Assert.Contains(".orc_unwind", sections);
            Assert.Contains(".text.", sections);
        }
        Assert.Contains("this has been live patched", File.ReadAllText(proc.PatchedObject, System.Text.Encoding.Latin1));
        Assert.DoesNotContain("this has been live patched", File.ReadAllText(proc.OrigObject, System.Text.Encoding.Latin1));
        Assert.Equal(before, (Hash(cmdline), Hash(nls)));
        Assert.False(tree.HasPendingJournal);
    }

    [Fact]
    public void HeaderChangeReachesTheUnitsThatIncludeIt()
    {
        var tree = fixture.Tree;
        var patch = PatchSet.ParseText("""
            --- a/fs/proc/fd.h
            +++ b/fs/proc/fd.h
            @@ -15,7 +15,7 @@
             
             static inline unsigned int proc_fd(struct inode *inode)
             {
            -	return PROC_I(inode)->fd;
            +	return PROC_I(inode)->fd + 1;
             }
             
             #endif /* __PROCFS_FD_H__ */

            """, "fd-h.patch");
        var catalog = UnitCatalog.Load(tree, cancellationToken: TestContext.Current.CancellationToken);
        var affected = AffectedUnits.Find(tree, patch, catalog);
        Assert.Equal(["fs/proc/base.o", "fs/proc/fd.o"], affected.Units.Select(u => u.Object));
        Assert.All(affected.Units, u => Assert.True(u.ViaIncludesOnly));
        Assert.All(affected.Units, u => Assert.Equal(["fs/proc/fd.h"], u.ChangedFiles));
    }

    [Fact]
    public void PatchThatDoesNotCompileFailsWithCompilerErrorsAndRestores()
    {
        var tree = fixture.Tree;
        var cmdline = Path.Combine(tree.Root, "fs/proc/cmdline.c");
        var before = Hash(cmdline);
        var patch = PatchSet.ParseText(CmdlinePatch.Split("--- a/fs/nls")[0].Replace("seq_printf(m, ", "seq_printf_nope(m, "), "broken.patch");
        var e = Assert.Throws<LivegraftException>(() => UnitCompiler.CompileBeforeAfter(tree, patch, _work, out _, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal(KernelErrors.PatchedCompileFailed, e.Diagnostics[0].Id);
        Assert.Equal(ExitCode.InvalidInput, e.ExitCode);
        Assert.Contains("seq_printf_nope", e.Message);
        Assert.Equal(before, Hash(cmdline));
        Assert.False(tree.HasPendingJournal);
    }

    [Fact]
    public void PatchThatDoesNotApplyLeavesTheTreeUntouched()
    {
        var tree = fixture.Tree;
        var cmdline = Path.Combine(tree.Root, "fs/proc/cmdline.c");
        var nls = Path.Combine(tree.Root, "fs/nls/nls_iso8859-1.c");
        var before = (Hash(cmdline), Hash(nls));
        var patch = PatchSet.ParseText(CmdlinePatch.Replace("-		return -ENAMETOOLONG;", "-		return -ENOTHERE;"), "stale.patch");
        var e = Assert.Throws<LivegraftException>(() => tree.ApplyPatch(patch));
        Assert.Equal(KernelErrors.HunkFailed, e.Diagnostics[0].Id);
        Assert.Equal("fs/nls/nls_iso8859-1.c", e.Diagnostics[0].File);
        Assert.Equal("hunk #1", e.Diagnostics[0].Location);
        Assert.Equal(before, (Hash(cmdline), Hash(nls)));
        Assert.False(tree.HasPendingJournal);
    }

    [Fact]
    public void AHalfAppliedPatchIsUndoneByTheNextRun()
    {
        var tree = fixture.Tree;
        var cmdline = Path.Combine(tree.Root, "fs/proc/cmdline.c");
        var before = Hash(cmdline);
        var patch = PatchSet.ParseText(CmdlinePatch, "cmdline.patch");
        // Simulate a run killed while patched: apply, never dispose.
        _ = tree.ApplyPatch(patch);
        Assert.NotEqual(before, Hash(cmdline));
        Assert.True(tree.HasPendingJournal);

        var again = KernelTree.Ensure(tree.Target, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(before, Hash(cmdline));
        Assert.False(again.HasPendingJournal);
    }

    [Fact]
    public void ReverseApplyRoundTrips()
    {
        var tree = fixture.Tree;
        var cmdline = Path.Combine(tree.Root, "fs/proc/cmdline.c");
        var before = Hash(cmdline);
        var patch = PatchSet.ParseText(CmdlinePatch, "cmdline.patch");
        using (tree.ApplyPatch(patch))
        {
            // The reverse applies to the patched tree and gives back the original text.
            var reversed = PatchApplier.Compute(patch, tree.Root, reverse: true);
            Assert.Equal(before, Convert.ToHexString(SHA256.HashData(reversed["fs/proc/cmdline.c"]!)));
        }
        Assert.Equal(before, Hash(cmdline));
    }

    [Fact]
    public void CancellationDuringThePatchedCompileRestoresTheTree()
    {
        var tree = fixture.Tree;
        var cmdline = Path.Combine(tree.Root, "fs/proc/cmdline.c");
        var before = Hash(cmdline);
        var patch = PatchSet.ParseText(CmdlinePatch, "cmdline.patch");
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var patchedCompileStarted = false;
        void Progress(string line)
        {
            // Cancel once make is compiling the patched units, as Ctrl-C would.
            if (line.StartsWith("compiling", StringComparison.Ordinal) && line.EndsWith("patched", StringComparison.Ordinal) && !line.Contains("unpatched", StringComparison.Ordinal))
            {
                patchedCompileStarted = true;
                Assert.NotEqual(before, Hash(cmdline));
                cts.CancelAfter(500);
            }
        }
        Assert.ThrowsAny<OperationCanceledException>(() => UnitCompiler.CompileBeforeAfter(tree, patch, _work, out _, progress: Progress, cancellationToken: cts.Token));
        Assert.True(patchedCompileStarted);
        Assert.Equal(before, Hash(cmdline));
        Assert.False(tree.HasPendingJournal);
    }

    [Fact]
    public void ACoreHeaderChangeIsRefusedQuickly()
    {
        var tree = fixture.Tree;
        var patch = PatchSet.ParseText("""
            --- a/include/linux/seq_file.h
            +++ b/include/linux/seq_file.h
            @@ -1,3 +1,4 @@
             /* SPDX-License-Identifier: GPL-2.0 */
            +/* changed */
             #ifndef _LINUX_SEQ_FILE_H
             #define _LINUX_SEQ_FILE_H

            """, "seq-file.patch");
        var catalog = UnitCatalog.Load(tree, cancellationToken: TestContext.Current.CancellationToken);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var e = Assert.Throws<LivegraftException>(() => AffectedUnits.Find(tree, patch, catalog));
        Assert.Equal(KernelErrors.TooManyUnits, e.Diagnostics[0].Id);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"include search took {clock.Elapsed}");
        Console.Error.WriteLine($"include search over the tree: {clock.Elapsed}; {e.Message}");
    }

    [Fact]
    public void MissingPackagesAreNamedBeforeAnythingIsPrepared()
    {
        var ct = TestContext.Current.CancellationToken;
        var unknown = new KernelTarget("0.0.0-livegraft-test");
        var e = Assert.Throws<LivegraftException>(() => KernelTree.Ensure(unknown, cancellationToken: ct));
        Assert.Equal(KernelErrors.ReleaseUnknown, e.Diagnostics[0].Id);
        Assert.Contains("linux-image-0.0.0-livegraft-test", e.Message);
        Assert.False(Directory.Exists(unknown.TreeDirectory));

        // Debian ships the image, but the archive lost the source it was built from: no tree, no
        // other source instead.
        var noSource = new KernelTarget("6.1.0-48-amd64");
        e = Assert.Throws<LivegraftException>(() => KernelTree.Ensure(noSource, cancellationToken: ct));
        Assert.Equal(KernelErrors.SourceVersionMissing, e.Diagnostics[0].Id);
        Assert.Contains("linux-source-6.1", e.Message);
        Assert.False(Directory.Exists(noSource.TreeDirectory));
        Assert.False(File.Exists(noSource.PackagesFile));
    }

    [Fact]
    public void ChangedSourceIncludedByAnotherUnitOfItsDirectoryReachesBoth()
    {
        // kernel/sched/rt.c is not built itself: build_policy.c includes it.
        var tree = fixture.Tree;
        var catalog = UnitCatalog.Load(tree, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Null(catalog.BySource("kernel/sched/rt.c"));
        var patch = PatchSet.ParseText("""
            --- a/kernel/sched/rt.c
            +++ b/kernel/sched/rt.c
            @@ -1,3 +1,4 @@
             // SPDX-License-Identifier: GPL-2.0
            +/* changed */
             /*
              * Real-Time Scheduling Class (mapped to the SCHED_FIFO and SCHED_RR

            """, "rt.patch");
        var affected = AffectedUnits.Find(tree, patch, catalog);
        Assert.Equal(["kernel/sched/build_policy.o"], affected.Units.Select(u => u.Object));
    }
}
