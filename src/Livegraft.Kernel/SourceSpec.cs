using System.Text.RegularExpressions;
using Livegraft.Kernel.Packages;

namespace Livegraft.Kernel;

/// <summary>
/// What <c>livegraft build --source</c> names: a kernel source tarball, a source directory, or a
/// Debian source package at an exact version (<c>linux-source-6.1=6.1.176-1</c>), fetched once into
/// <c>&lt;cache&gt;/sources/&lt;package&gt;_&lt;version&gt;/</c>.
/// </summary>
public static partial class SourceSpec
{
    [GeneratedRegex(@"^(?<package>[a-z0-9][a-z0-9.+-]*)=(?<version>[0-9][A-Za-z0-9.+~:-]*)$")]
    private static partial Regex PackageVersion();

    /// <summary>Returns the absolute path of the tarball or directory <paramref name="spec"/> names,
    /// downloading a <c>package=version</c> when it is not cached yet.</summary>
    /// <exception cref="LivegraftException">LG0307 when the spec is neither an existing path nor
    /// <c>package=version</c>; LG0300/LG0301 when the download fails.</exception>
    public static string Resolve(string spec, Action<string>? progress = null)
    {
        if (File.Exists(spec) || Directory.Exists(spec))
            return Path.GetFullPath(spec);
        var m = PackageVersion().Match(spec);
        if (!m.Success)
            throw new LivegraftException(ExitCode.InvalidInput, KernelErrors.SourceOverrideInvalid,
                "--source is neither an existing tarball or directory nor a Debian package=version (e.g. linux-source-6.1=6.1.176-1)", spec);
        return PackageCache.SourceTarball(new DebianPackage(m.Groups["package"].Value, m.Groups["version"].Value), progress);
    }
}
