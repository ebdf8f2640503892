namespace Livegraft.Kernel.Tests.Integration;

/// <summary>Fetches the reference packages and prepares a tree from the source tarball (about
/// three minutes on two cores). Runs only
/// when asked, against a separate cache so the shared tree is not touched:
/// <c>LIVEGRAFT_TEST_FRESH_TREE=1 LIVEGRAFT_CACHE=/tmp/lg-cache dotnet test --filter FreshTree</c>.</summary>
public sealed class FreshTreeTests
{
    [Fact]
    public void PreparesFromTheTarballAndCompilesAUnit()
    {
        if (Environment.GetEnvironmentVariable("LIVEGRAFT_TEST_FRESH_TREE") != "1" || Environment.GetEnvironmentVariable("LIVEGRAFT_CACHE") is null)
            Assert.Skip("set LIVEGRAFT_TEST_FRESH_TREE=1 and a scratch LIVEGRAFT_CACHE");
        var target = KernelTarget.Reference;
        var ct = TestContext.Current.CancellationToken;
        var tree = KernelTree.Ensure(target, Console.Error.WriteLine, ct);
        Assert.Equal("no", tree.Stamp["adopted"]);
        Assert.False(Directory.EnumerateDirectories(target.CacheDirectory, "tree.tmp-*").Any());
        // The renamed tree still builds: objtool and fixdep found what prepare made.
        var patch = Patches.PatchSet.ParseText("""
            --- a/fs/proc/cmdline.c
            +++ b/fs/proc/cmdline.c
            @@ -9,3 +9,3 @@
             	seq_puts(m, saved_command_line);
            -	seq_putc(m, '\n');
            +	seq_putc(m, '!');
             	return 0;

            """);
        var work = Directory.CreateTempSubdirectory("lg-fresh-").FullName;
        var units = Units.UnitCompiler.CompileBeforeAfter(tree, patch, work, out _, progress: Console.Error.WriteLine, cancellationToken: ct);
        Assert.Equal("vmlinux", units.Single().Parent);
        // A second Ensure reuses the stamped tree.
        Assert.Equal(tree.Stamp["prepared"], KernelTree.Ensure(target, cancellationToken: ct).Stamp["prepared"]);
        Directory.Delete(work, recursive: true);
    }
}
