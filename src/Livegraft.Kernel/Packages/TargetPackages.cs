using System.Text.RegularExpressions;

namespace Livegraft.Kernel.Packages;

/// <summary>One Debian binary package at one exact version.</summary>
/// <param name="Name">Package name, e.g. <c>linux-source-6.1</c>.</param>
/// <param name="Version">Exact version, e.g. <c>6.1.170-3</c>.</param>
public sealed record DebianPackage(string Name, string Version)
{
    /// <summary><c>name=version</c>, as <c>apt-get download</c> takes it.</summary>
    public string Spec => $"{Name}={Version}";

    /// <summary>A file-name-safe <c>name_version</c> (an epoch's colon becomes <c>%</c>, as in pool file names).</summary>
    public string CacheKey => $"{Name}_{VersionKey}";

    /// <summary>The version, file-name-safe.</summary>
    public string VersionKey => Version.Replace(':', '%');

    /// <inheritdoc/>
    public override string ToString() => Spec;
}

/// <summary>
/// The Debian packages one kernel release is made of, resolved from the release string alone
/// (docs/targets.md): the image package names the exact version; the headers package of that
/// version names its <c>-common</c> part and the <c>linux-kbuild</c> it needs; the source is
/// <c>linux-source-&lt;major.minor&gt;</c> at exactly the image's version. The machine's installed
/// kernel packages play no part.
/// </summary>
public sealed partial record TargetPackages(string Release, DebianPackage Image, DebianPackage Headers,
    DebianPackage HeadersCommon, DebianPackage Kbuild, DebianPackage Source)
{
    /// <summary>The packages in fetch order, with their roles as recorded in the cache.</summary>
    public IEnumerable<(string Role, DebianPackage Package)> All =>
        [("image", Image), ("headers", Headers), ("headers-common", HeadersCommon), ("kbuild", Kbuild), ("source", Source)];

    /// <summary>The kernel series, <c>6.1</c> or <c>6.12</c> (from the source package's name).</summary>
    public string Series => Source.Name["linux-source-".Length..];

    [GeneratedRegex(@"^[0-9]+\.[0-9]+[A-Za-z0-9.+~_-]*$")]
    private static partial Regex ReleaseShape();

    /// <summary>Resolves <paramref name="release"/> through apt (three <c>apt-cache</c> calls).</summary>
    /// <exception cref="LivegraftException">LG0370 when Debian ships no image for the release
    /// (exit 2); LG0371 when the headers of its version, or their <c>-common</c> and kbuild parts,
    /// are missing; LG0372 when the archive no longer holds the exact source version (exit 3);
    /// LG0373 when apt cannot be asked.</exception>
    public static TargetPackages Resolve(string release)
    {
        if (!ReleaseShape().IsMatch(release))
            throw new LivegraftException(ExitCode.InvalidInput, KernelErrors.ReleaseUnknown,
                $"'{release}' is not a kernel release as uname -r prints it (e.g. {KernelTarget.ReferenceRelease})");
        var image = "linux-image-" + release;
        var headers = "linux-headers-" + release;
        var first = Apt.Versions([image, headers]);
        if (first[image].Count == 0)
            throw new LivegraftException(ExitCode.InvalidInput, KernelErrors.ReleaseUnknown,
                $"Debian ships no {image}: no such release in the configured archives (check the name, or run apt-get update)", release);
        var version = first[image][0];
        var source = "linux-source-" + SeriesOf(version);
        if (!first[headers].Contains(version, StringComparer.Ordinal))
        {
            // Name everything that is missing: usually the source went with the headers.
            var sources = Apt.Versions([source])[source];
            if (!sources.Contains(version, StringComparer.Ordinal))
                throw new LivegraftException(ExitCode.HostFailure, KernelErrors.SourceVersionMissing,
                    $"{image} is {version}, built from {source} {version}, which the archive no longer holds" + Holds(sources)
                    + $", nor {headers}={version}" + Holds(first[headers]) + "; Livegraft builds only from the exact source a kernel was built from", release);
            throw new LivegraftException(ExitCode.HostFailure, KernelErrors.TargetPackageMissing,
                $"{image} is {version}, but the archive holds no {headers}={version}" + Holds(first[headers]), release);
        }
        var fields = Apt.Show(headers, version)
            ?? throw new LivegraftException(ExitCode.HostFailure, KernelErrors.TargetPackageMissing, $"apt-cache knows no {headers}={version}", release);
        var depends = Apt.ParseDepends(fields.GetValueOrDefault("Depends") ?? "");
        (string Package, string? Relation, string? Version) Dep(Func<string, bool> match, string what) =>
            depends.SelectMany(g => g).FirstOrDefault(d => match(d.Package)) is { Package: not null } d ? d
            : throw new LivegraftException(ExitCode.HostFailure, KernelErrors.TargetPackageMissing,
                $"{headers}={version} depends on no {what} package", release);
        var common = Dep(p => p.StartsWith("linux-headers-", StringComparison.Ordinal) && p.EndsWith("-common", StringComparison.Ordinal), "linux-headers-*-common");
        var kbuild = Dep(p => p.StartsWith("linux-kbuild-", StringComparison.Ordinal), "linux-kbuild");
        var second = Apt.Versions([common.Package, kbuild.Package, source]);

        var commonVersion = Pick(second[common.Package], common.Relation, common.Version, version)
            ?? throw new LivegraftException(ExitCode.HostFailure, KernelErrors.TargetPackageMissing,
                $"{headers}={version} needs {common.Package} ({common.Relation} {common.Version}), which the archive no longer holds" + Holds(second[common.Package]), release);
        var kbuildVersion = Pick(second[kbuild.Package], kbuild.Relation, kbuild.Version, version)
            ?? throw new LivegraftException(ExitCode.HostFailure, KernelErrors.TargetPackageMissing,
                $"{headers}={version} needs {kbuild.Package}{(kbuild.Relation is null ? "" : $" ({kbuild.Relation} {kbuild.Version})")}, which the archive does not hold" + Holds(second[kbuild.Package]), release);
        if (!second[source].Contains(version, StringComparer.Ordinal))
            throw new LivegraftException(ExitCode.HostFailure, KernelErrors.SourceVersionMissing,
                $"{image} is {version}, built from {source} {version}, which the archive no longer holds" + Holds(second[source])
                + "; Livegraft builds only from the exact source a kernel was built from", release);
        return new TargetPackages(release, new(image, version), new(headers, version), new(common.Package, commonVersion),
            new(kbuild.Package, kbuildVersion), new(source, version));
    }

    /// <summary>The version of the satisfying set to use: the kernel's own version when present,
    /// else the lowest one that satisfies the relation (closest to what the kernel was built with),
    /// else, for an unversioned dependency, the highest.</summary>
    private static string? Pick(IReadOnlyList<string> available, string? relation, string? bound, string kernelVersion)
    {
        var ok = available.Where(v => relation is null || DebianVersion.Satisfies(v, relation, bound!)).ToList();
        if (ok.Contains(kernelVersion, StringComparer.Ordinal))
            return kernelVersion;
        if (ok.Count == 0)
            return null;
        return relation is null ? ok[0] : ok[^1];
    }

    private static string Holds(IReadOnlyList<string> versions) =>
        versions.Count == 0 ? " (it holds none)" : $" (it holds {string.Join(", ", versions)})";

    /// <summary>The kernel series of a Debian kernel version: <c>6.1.187-1</c> → <c>6.1</c>.</summary>
    public static string SeriesOf(string version)
    {
        var colon = version.IndexOf(':', StringComparison.Ordinal);
        var upstream = colon >= 0 ? version[(colon + 1)..] : version;
        var parts = upstream.Split('.');
        return parts.Length >= 2 ? parts[0] + "." + new string(parts[1].TakeWhile(char.IsAsciiDigit).ToArray()) : upstream;
    }

    /// <summary>The record written to the cache (<c>role=name=version</c> lines).</summary>
    public string ToText() =>
        $"release={Release}\n" + string.Concat(All.Select(p => $"{p.Role}={p.Package.Spec}\n"));

    /// <summary>Reads a record written by <see cref="ToText"/>; null when it is not a complete one.</summary>
    public static TargetPackages? Parse(string text)
    {
        var fields = KeyValueLines.Parse(text);
        DebianPackage? Get(string role)
        {
            if (!fields.TryGetValue(role, out var spec))
                return null;
            var eq = spec.IndexOf('=', StringComparison.Ordinal);
            return eq > 0 && eq < spec.Length - 1 ? new DebianPackage(spec[..eq], spec[(eq + 1)..]) : null;
        }
        return fields.TryGetValue("release", out var release) && Get("image") is { } i && Get("headers") is { } h
            && Get("headers-common") is { } c && Get("kbuild") is { } k && Get("source") is { } s
            ? new TargetPackages(release, i, h, c, k, s) : null;
    }
}
