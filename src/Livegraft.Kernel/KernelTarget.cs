using Livegraft.Kernel.Features;
using Livegraft.Kernel.Packages;

namespace Livegraft.Kernel;

/// <summary>
/// A distro kernel release Livegraft builds for and boots: which Debian packages it is made of
/// (<see cref="Packages"/>, resolved from the release string alone), where they, its prepared
/// source tree and its extracted image live in the cache, and how to fetch them when missing.
/// </summary>
/// <remarks>
/// Cache layout, per release (docs/targets.md): <c>&lt;cache&gt;/kernels/&lt;release&gt;/packages</c>
/// (the resolution), <c>image-&lt;version&gt;/</c> (the extracted <c>linux-image</c> package),
/// <c>headers-&lt;version&gt;/</c> (headers, their <c>-common</c> part and <c>linux-kbuild</c>, extracted
/// into one root), <c>tree/</c> (the prepared source tree); source tarballs are shared in
/// <c>&lt;cache&gt;/sources/&lt;package&gt;_&lt;version&gt;/</c>. The cache root is
/// <c>$LIVEGRAFT_CACHE</c>, else <c>$XDG_CACHE_HOME/livegraft</c>, else <c>~/.cache/livegraft</c>.
/// </remarks>
public sealed class KernelTarget
{
    /// <summary>The reference target: Debian 12's 6.1.0-56-amd64.</summary>
    public const string ReferenceRelease = "6.1.0-56-amd64";

    private readonly Lazy<TargetPackages> _packages;
    private readonly Lazy<string> _compiler;

    /// <summary>Creates the target for a Debian kernel release such as <c>6.1.0-56-amd64</c> or
    /// <c>6.12.117+deb12-cloud-amd64</c>. Nothing is resolved or fetched until asked for.</summary>
    public KernelTarget(string release)
    {
        Release = release;
        _packages = new Lazy<TargetPackages>(ResolvePackages, LazyThreadSafetyMode.ExecutionAndPublication);
        _compiler = new Lazy<string>(CompilerFromConfig, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>The reference target.</summary>
    public static KernelTarget Reference { get; } = new(ReferenceRelease);

    /// <summary>Kernel release string, as <c>uname -r</c> prints it.</summary>
    public string Release { get; }

    /// <summary>The Debian packages of this release at their exact versions: read from the cache's
    /// record, else resolved through apt (<see cref="TargetPackages.Resolve"/>) and recorded.</summary>
    /// <exception cref="LivegraftException">LG0370–LG0373 when the release cannot be resolved.</exception>
    public TargetPackages Packages => _packages.Value;

    /// <summary>Debian package holding the source tarball (<c>linux-source-6.1</c>).</summary>
    public string SourcePackage => Packages.Source.Name;

    /// <summary>Exact version of <see cref="SourcePackage"/> the release was built from.</summary>
    public string SourceVersion => Packages.Source.Version;

    /// <summary>Root of Livegraft's cache.</summary>
    public static string CacheRoot
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("LIVEGRAFT_CACHE");
            if (!string.IsNullOrEmpty(env))
                return env;
            var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            var baseDir = !string.IsNullOrEmpty(xdg) ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            return Path.Combine(baseDir, "livegraft");
        }
    }

    /// <summary>This release's cache directory.</summary>
    public string CacheDirectory => Path.Combine(CacheRoot, "kernels", Release);

    /// <summary>The recorded resolution (<see cref="TargetPackages.ToText"/>).</summary>
    public string PackagesFile => Path.Combine(CacheDirectory, "packages");

    /// <summary>Root of the extracted <c>linux-image</c> package, keyed by its version.</summary>
    public string ImageRoot => Path.Combine(CacheDirectory, "image-" + Packages.Image.VersionKey);

    /// <summary>The bootable kernel image (<c>vmlinuz</c>, a bzImage).</summary>
    public string KernelImage => Path.Combine(ImageRoot, "boot", "vmlinuz-" + Release);

    /// <summary>The kernel's config as shipped.</summary>
    public string ConfigFile => Path.Combine(ImageRoot, "boot", "config-" + Release);

    /// <summary>The release's modules, <c>lib/modules/&lt;release&gt;</c> of the image package.</summary>
    public string ModulesDirectory => Path.Combine(ImageRoot, "lib", "modules", Release);

    /// <summary>Root into which the headers package, its <c>-common</c> part and <c>linux-kbuild</c>
    /// are extracted together (their relative symlinks meet there), keyed by the headers' version.</summary>
    public string HeadersRoot => Path.Combine(CacheDirectory, "headers-" + Packages.Headers.VersionKey);

    /// <summary>A source tarball or directory to build from instead of <see cref="SourcePackage"/>
    /// (<c>livegraft build --source</c>); an absolute path.</summary>
    public string? SourceOverride { get; init; }

    /// <summary>A kernel config to prepare the tree with instead of the headers package's
    /// (<c>livegraft build --config</c>); an absolute path.</summary>
    public string? ConfigOverride { get; init; }

    /// <summary>The config the tree is prepared with: <see cref="ConfigOverride"/>, else the headers package's.</summary>
    public string BuildConfigFile => ConfigOverride ?? HeadersConfigFile;

    /// <summary>What the tree's source is, as recorded in its stamp: the package, a directory, or
    /// a tarball with its size and modification time (a replaced tarball makes the tree stale).</summary>
    public string SourceIdentity
    {
        get
        {
            if (SourceOverride is null)
                return "package:" + SourcePackage;
            if (Directory.Exists(SourceOverride))
                return "dir:" + SourceOverride;
            var f = new FileInfo(SourceOverride);
            return f.Exists ? $"tarball:{SourceOverride}:{f.Length}:{f.LastWriteTimeUtc.Ticks}" : "tarball:" + SourceOverride;
        }
    }

    /// <summary>Short key of a tree built from another source or config than the package's; null
    /// for the default tree. Each such tree lives beside the default one.</summary>
    private string? TreeKey => SourceOverride is null && ConfigOverride is null ? null
        : Sha256Hash.HashHex(System.Text.Encoding.UTF8.GetBytes((SourceOverride ?? SourcePackage) + "\n" + ConfigOverride))[..12];

    /// <summary>The prepared source tree: <c>tree</c>, or <c>tree-&lt;key&gt;</c> for an overridden source or config.</summary>
    public string TreeDirectory => Path.Combine(CacheDirectory, TreeKey is { } k ? "tree-" + k : "tree");

    /// <summary>The headers tree kbuild builds external modules against (in <see cref="HeadersRoot"/>;
    /// <see cref="EnsureHeaders"/> fetches it).</summary>
    public string HeadersDirectory => Path.Combine(HeadersRoot, "usr", "src", "linux-headers-" + Release);

    /// <summary>The source tarball to extract: <see cref="SourceOverride"/> when it is a file, else
    /// the <see cref="SourcePackage"/>'s at <see cref="SourceVersion"/> in the cache
    /// (<see cref="EnsureSource"/> fetches it).</summary>
    public string SourceTarball => SourceOverride is { } s && !Directory.Exists(s) ? s
        : Path.Combine(CacheRoot, "sources", Packages.Source.CacheKey, SourcePackage + ".tar.xz");

    /// <summary>The directory every member of <see cref="SourceTarball"/> sits under (<c>linux-source-6.1</c>).</summary>
    public string SourceTopDirectory => SourcePackage;

    /// <summary>The config the distro built this release with, as the headers package ships it.</summary>
    public string HeadersConfigFile => Path.Combine(HeadersDirectory, ".config");

    /// <summary>Lock file serialising every Livegraft process that prepares, patches or compiles in
    /// <see cref="TreeDirectory"/>. It lives beside the tree so that it also guards the tree's creation.</summary>
    public string TreeLockFile => Path.Combine(CacheDirectory, "tree.lock");

    /// <summary>Per-tree catalog of the objects kbuild builds for this config (see <c>UnitCatalog</c>).</summary>
    /// <remarks>The file name carries the catalog's format version (<c>units.v2.tsv</c>), so
    /// Livegraft builds of another format sharing the cache keep their own instead of rewriting one
    /// file in turn.</remarks>
    public string UnitCatalogFile => Path.Combine(CacheDirectory, TreeKey is { } k ? $"units-{k}.v{Units.UnitCatalog.FormatVersion}.tsv" : $"units.v{Units.UnitCatalog.FormatVersion}.tsv");

    /// <summary>The compiler the distro built this release with, as its config names it
    /// (<c>CONFIG_CC_VERSION_TEXT</c>'s program, e.g. <c>gcc-12</c> or <c>x86_64-linux-gnu-gcc-12</c>);
    /// kbuild is always invoked with <c>CC=</c> it. Needs the headers (<see cref="EnsureHeaders"/>).</summary>
    public string Compiler => _compiler.Value;

    /// <summary><c>CONFIG_CC_VERSION_TEXT</c> of the headers package's config: what
    /// <c>$(CC) --version | head -1</c> printed when the distro built this release.</summary>
    public string CompilerVersionText => TargetCompiler.VersionText(HeadersConfigFile);

    private string CompilerFromConfig() => TargetCompiler.ProgramOf(CompilerVersionText);

    /// <summary>The <c>vermagic</c> every module for this release must carry, derived from the
    /// headers package's config exactly as <c>include/linux/vermagic.h</c> composes it
    /// (with its trailing space). Randomised struct layout (whose seed hash also goes into vermagic)
    /// is not supported.</summary>
    public string ExpectedVermagic()
    {
        if (!File.Exists(HeadersConfigFile))
            throw new LivegraftException(ExitCode.HostFailure, KernelErrors.HeadersPackageMissing,
                $"{HeadersConfigFile} not found: the headers of {Release} are not fetched (KernelTarget.EnsureHeaders)");
        var config = ReadConfig(HeadersConfigFile);
        bool On(string name) => config.TryGetValue(name, out var v) && v == "y";
        var magic = Release + " ";
        if (On("CONFIG_SMP"))
            magic += "SMP ";
        if (On("CONFIG_PREEMPT_RT"))
            magic += "preempt_rt ";
        else if (On("CONFIG_PREEMPT_BUILD"))
            magic += "preempt ";
        if (On("CONFIG_MODULE_UNLOAD"))
            magic += "mod_unload ";
        if (On("CONFIG_MODVERSIONS"))
            magic += "modversions ";
        return magic;
    }

    /// <summary>Reads a kconfig file into <c>CONFIG_X → value</c> (strings keep their quotes).</summary>
    public static Dictionary<string, string> ReadConfig(string path) => KeyValueLines.Parse(File.ReadLines(path));

    private TargetPackages ResolvePackages()
    {
        if (File.Exists(PackagesFile) && TargetPackages.Parse(File.ReadAllText(PackagesFile)) is { } recorded && recorded.Release == Release)
            return recorded;
        var resolved = TargetPackages.Resolve(Release);
        Directory.CreateDirectory(CacheDirectory);
        var tmp = CacheLock.WorkDirectoryFor(PackagesFile);
        File.WriteAllText(tmp, resolved.ToText());
        File.Move(tmp, PackagesFile, overwrite: true);
        return resolved;
    }

    /// <summary>Written last into an extracted image or headers root: what was extracted there.</summary>
    private const string CompleteMarker = ".livegraft-complete";

    /// <summary>Lock serialising fetches into this release's cache directory.</summary>
    private string FetchLockFile => Path.Combine(CacheDirectory, "fetch.lock");

    /// <summary>Fetches and extracts <c>linux-image-&lt;release&gt;</c> at its version into
    /// <see cref="ImageRoot"/> unless it is already there; compressed modules (6.12 ships
    /// <c>.ko.xz</c>) are decompressed, so every reader and the guest's initramfs see plain <c>.ko</c> files. Safe to call from several threads and
    /// processes at once; an interrupted run leaves nothing half-written.</summary>
    public void EnsureImage(Action<string>? progress = null) =>
        PackageCache.Ensure(ImageRoot, FetchLockFile, $"{Packages.Image.Spec}", _ => File.Exists(KernelImage) && Directory.Exists(ModulesDirectory) && File.Exists(Path.Combine(ImageRoot, CompleteMarker)),
            work =>
            {
                PackageCache.DownloadInto(Packages.Image, work, Path.Combine(work, ".download"), progress);
                Directory.Delete(Path.Combine(work, ".download"), recursive: true);
                PackageCache.DecompressModules(Path.Combine(work, "lib", "modules"), progress);
                File.WriteAllText(Path.Combine(work, CompleteMarker), Packages.Image.Spec + "\n");
            }, progress);

    /// <summary>Fetches the headers package, its <c>-common</c> part and <c>linux-kbuild</c> into
    /// <see cref="HeadersRoot"/> unless they are there; returns <see cref="HeadersDirectory"/>.</summary>
    /// <remarks>The packages' symlinks (<c>scripts -&gt; ../../lib/linux-kbuild-6.1/scripts</c>) are
    /// relative, so they meet in the one root; the only absolute path, the headers' <c>Makefile</c>
    /// including <c>/usr/src/linux-headers-*-common/Makefile</c>, is made relative.</remarks>
    public string EnsureHeaders(Action<string>? progress = null)
    {
        var p = Packages;
        PackageCache.Ensure(HeadersRoot, FetchLockFile, p.Headers.Spec,
            _ => File.Exists(Path.Combine(HeadersDirectory, "Module.symvers")) && File.Exists(HeadersConfigFile) && File.Exists(Path.Combine(HeadersRoot, CompleteMarker)),
            work =>
            {
                var scratch = Path.Combine(work, ".download");
                foreach (var package in new[] { p.Headers, p.HeadersCommon, p.Kbuild })
                    PackageCache.DownloadInto(package, work, scratch, progress);
                Directory.Delete(scratch, recursive: true);
                var makefile = Path.Combine(work, "usr", "src", "linux-headers-" + Release, "Makefile");
                if (!File.Exists(makefile))
                    throw new LivegraftException(ExitCode.HostFailure, KernelErrors.HeadersPackageMissing, $"{p.Headers.Spec} has no usr/src/linux-headers-{Release}/Makefile");
                File.WriteAllText(makefile, File.ReadAllText(makefile).Replace("include /usr/src/", "include ../", StringComparison.Ordinal));
                File.WriteAllText(Path.Combine(work, CompleteMarker), string.Join('\n', p.Headers.Spec, p.HeadersCommon.Spec, p.Kbuild.Spec) + "\n");
            }, progress);
        return HeadersDirectory;
    }

    /// <summary>Fetches the source package at <see cref="SourceVersion"/> into the shared source cache
    /// unless it is there; returns the tarball.</summary>
    public string EnsureSource(Action<string>? progress = null) =>
        PackageCache.SourceTarball(Packages.Source, progress);
}
