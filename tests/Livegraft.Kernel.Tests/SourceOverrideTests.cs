namespace Livegraft.Kernel.Tests;

/// <summary>
/// <c>livegraft build --source/--config</c>: where such trees live and how bad paths are refused.
/// Building from another release's source is exercised end to end (and refused by verification)
/// in tests/Livegraft.Cli.Tests/VerificationEndToEndTests.cs.
/// </summary>
public sealed class SourceOverrideTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("livegraft-source-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Another_source_or_config_gets_its_own_tree_and_catalog()
    {
        var tarball = Path.Combine(_dir, "linux.tar.xz");
        File.WriteAllText(tarball, "x");
        var config = Path.Combine(_dir, "config");
        File.WriteAllText(config, "CONFIG_X=y\n");
        var plain = new KernelTarget(KernelTarget.ReferenceRelease);
        var source = new KernelTarget(KernelTarget.ReferenceRelease) { SourceOverride = tarball };
        var both = new KernelTarget(KernelTarget.ReferenceRelease) { SourceOverride = tarball, ConfigOverride = config };
        var again = new KernelTarget(KernelTarget.ReferenceRelease) { SourceOverride = tarball };

        Assert.Equal(Path.Combine(plain.CacheDirectory, "tree"), plain.TreeDirectory);
        Assert.Equal(Path.Combine(plain.CacheDirectory, "units.v2.tsv"), plain.UnitCatalogFile);
        Assert.Equal(3, new[] { plain.TreeDirectory, source.TreeDirectory, both.TreeDirectory }.Distinct().Count());
        Assert.Equal(source.TreeDirectory, again.TreeDirectory);
        Assert.NotEqual(plain.UnitCatalogFile, source.UnitCatalogFile);
        Assert.Equal(tarball, source.SourceTarball);
        Assert.Equal(config, both.BuildConfigFile);
        Assert.Equal(plain.HeadersConfigFile, source.BuildConfigFile);
        Assert.StartsWith($"tarball:{tarball}:1:", source.SourceIdentity, StringComparison.Ordinal);
        Assert.Equal("package:linux-source-6.1", plain.SourceIdentity);
        Assert.Equal("dir:" + _dir, new KernelTarget(KernelTarget.ReferenceRelease) { SourceOverride = _dir }.SourceIdentity);
    }

    [Theory]
    [InlineData("no/such/linux.tar.xz")]
    [InlineData("linux-source-6.1")]
    [InlineData("linux-source-6.1=")]
    public void A_source_that_is_neither_a_path_nor_a_package_version_is_LG0307(string spec)
    {
        var e = Assert.Throws<LivegraftException>(() => SourceSpec.Resolve(spec));
        Assert.Equal(KernelErrors.SourceOverrideInvalid, e.Diagnostics[0].Id);
        Assert.Equal(ExitCode.InvalidInput, e.ExitCode);
        Assert.Equal(spec, e.Diagnostics[0].File);
    }

    [Fact]
    public void An_existing_path_resolves_to_itself()
    {
        Assert.Equal(_dir, SourceSpec.Resolve(_dir));
    }

    [Fact]
    public void Missing_config_or_a_directory_that_is_not_a_kernel_is_refused_before_anything_is_prepared()
    {
        var target = new KernelTarget(KernelTarget.ReferenceRelease) { ConfigOverride = Path.Combine(_dir, "no-config") };
        var e = Assert.Throws<LivegraftException>(() => KernelTree.Ensure(target, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal(KernelErrors.SourceOverrideInvalid, e.Diagnostics[0].Id);
        Assert.False(Directory.Exists(target.TreeDirectory));

        var notKernel = new KernelTarget(KernelTarget.ReferenceRelease) { SourceOverride = _dir };
        e = Assert.Throws<LivegraftException>(() => KernelTree.Ensure(notKernel, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal(KernelErrors.SourceOverrideInvalid, e.Diagnostics[0].Id);
        Assert.Contains("not a kernel source directory", e.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(notKernel.TreeDirectory));
    }
}
