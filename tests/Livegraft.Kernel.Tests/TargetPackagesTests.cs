using Livegraft.Kernel.Packages;

namespace Livegraft.Kernel.Tests;

/// <summary>
/// A release string is all a target needs: the image package names the exact version, the headers
/// of that version name their -common and kbuild parts, the source is linux-source-X.Y at exactly
/// that version. Asked of the machine's apt (the Debian archive as configured), never of the
/// installed packages.
/// </summary>
public sealed class TargetPackagesTests
{
    [Theory]
    [InlineData("6.1.192-2", "6.1.192-3", -1)]
    [InlineData("6.1.192-3", "6.1.192-3", 0)]
    [InlineData("6.1.187-1", "6.1.192-1", -1)]
    [InlineData("6.12.117-1~deb12u1", "6.12.117-1", -1)]
    [InlineData("6.12.117-1~deb12u1", "6.12.115-2~deb12u1", 1)]
    [InlineData("6.1.9-1", "6.1.10-1", -1)]
    [InlineData("1:1.0-1", "2.0-1", 1)]
    [InlineData("1.0~rc1-1", "1.0-1", -1)]
    [InlineData("1.0a-1", "1.0-1", 1)]
    [InlineData("1.0+b1", "1.0", 1)]
    [InlineData("12.2.0-14", "12.2.0-14+deb12u1", -1)]
    public void DebianVersionsOrderLikeDpkg(string a, string b, int sign)
    {
        Assert.Equal(sign, Math.Sign(DebianVersion.Compare(a, b)));
        Assert.Equal(-sign, Math.Sign(DebianVersion.Compare(b, a)));
    }

    [Fact]
    public void DependsFieldsParse()
    {
        var deps = Apt.ParseDepends("linux-headers-6.1.0-53-common (= 6.1.187-1), linux-kbuild-6.1 (>= 6.1.187-1), linux-image-x (= 1) | linux-image-x-unsigned (= 1), gcc-12");
        Assert.Equal(("linux-headers-6.1.0-53-common", "=", "6.1.187-1"), deps[0][0]);
        Assert.Equal(("linux-kbuild-6.1", ">=", "6.1.187-1"), deps[1][0]);
        Assert.Equal(2, deps[2].Count);
        Assert.Equal(("gcc-12", (string?)null, (string?)null), deps[3][0]);
    }

    [Theory]
    // release, image = source version, source package, kbuild package
    [InlineData("6.1.0-53-amd64", "6.1.187-1", "linux-source-6.1", "linux-kbuild-6.1")]
    [InlineData("6.1.0-47-amd64", "6.1.170-3", "linux-source-6.1", "linux-kbuild-6.1")]
    [InlineData("6.1.0-56-cloud-amd64", "6.1.192-2", "linux-source-6.1", "linux-kbuild-6.1")]
    [InlineData("6.12.117+deb12-amd64", "6.12.117-1~deb12u1", "linux-source-6.12", "linux-kbuild-6.12.117+deb12")]
    [InlineData("6.12.117+deb12-cloud-amd64", "6.12.117-1~deb12u1", "linux-source-6.12", "linux-kbuild-6.12.117+deb12")]
    public void AReleaseResolvesToItsExactPackages(string release, string version, string source, string kbuild)
    {
        var p = TargetPackages.Resolve(release);
        Assert.Equal(new DebianPackage("linux-image-" + release, version), p.Image);
        Assert.Equal(new DebianPackage("linux-headers-" + release, version), p.Headers);
        Assert.Equal(new DebianPackage(source, version), p.Source);
        Assert.Equal(kbuild, p.Kbuild.Name);
        // The kbuild the headers ask for: the kernel's own version when the archive has it, else the
        // lowest one the dependency allows (linux-kbuild-6.1 is published at a few versions only).
        Assert.True(DebianVersion.Compare(p.Kbuild.Version, version) >= 0, p.Kbuild.Spec);
        Assert.EndsWith("-common", p.HeadersCommon.Name, StringComparison.Ordinal);
        Assert.Equal(version, p.HeadersCommon.Version);
        Assert.Equal(p, TargetPackages.Parse(p.ToText()));
    }

    [Fact]
    public void AnOlderReleaseTakesTheLowestKbuildItsHeadersAllow()
    {
        // linux-headers-6.1.0-47-amd64 depends on linux-kbuild-6.1 (>= 6.1.170-3); the archive has
        // 6.1.176-1 and 6.1.192-3.
        var p = TargetPackages.Resolve("6.1.0-47-amd64");
        var available = Apt.Versions(["linux-kbuild-6.1"])["linux-kbuild-6.1"];
        Assert.Equal(available.Where(v => DebianVersion.Compare(v, "6.1.170-3") >= 0).Min(Comparer<string>.Create(DebianVersion.Compare)), p.Kbuild.Version);
    }

    [Theory]
    [InlineData("6.1.0-48-amd64")]
    [InlineData("6.1.0-49-amd64")]
    [InlineData("6.1.0-51-amd64")]
    [InlineData("6.1.0-52-amd64")]
    public void AReleaseWhoseSourceTheArchiveNoLongerHoldsIsRefusedByName(string release)
    {
        var e = Assert.Throws<LivegraftException>(() => TargetPackages.Resolve(release));
        Assert.Equal(KernelErrors.SourceVersionMissing, e.Diagnostics[0].Id);
        Assert.Equal(ExitCode.HostFailure, e.ExitCode);
        var version = Apt.Versions(["linux-image-" + release])["linux-image-" + release][0];
        Assert.Contains($"linux-source-6.1 {version}", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("6.1.0-999-amd64")]
    [InlineData("not a release")]
    public void AReleaseDebianDoesNotShipIsLG0370(string release)
    {
        var e = Assert.Throws<LivegraftException>(() => TargetPackages.Resolve(release));
        Assert.Equal(KernelErrors.ReleaseUnknown, e.Diagnostics[0].Id);
        Assert.Equal(ExitCode.InvalidInput, e.ExitCode);
    }
}
