namespace Livegraft.Kernel;

/// <summary>
/// A distro kernel release Livegraft builds for and boots: where its packages, prepared source
/// tree and extracted image live in the cache, and how to fetch them when missing.
/// </summary>
/// <remarks>
/// Cache layout, per release: <c>&lt;cache&gt;/kernels/&lt;release&gt;/image</c> (the extracted
/// <c>linux-image-&lt;release&gt;</c> package: <c>boot/vmlinuz-*</c>, <c>lib/modules/*</c>) and
/// <c>&lt;cache&gt;/kernels/&lt;release&gt;/tree</c> (the prepared source tree). The cache root is
/// <c>$LIVEGRAFT_CACHE</c>, else <c>$XDG_CACHE_HOME/livegraft</c>, else <c>~/.cache/livegraft</c>.
/// </remarks>
public sealed class KernelTarget
{
    /// <summary>The reference target: Debian 12's 6.1.0-56-amd64.</summary>
    public const string ReferenceRelease = "6.1.0-56-amd64";

    /// <summary>Creates the target for a Debian kernel release such as <c>6.1.0-56-amd64</c>.</summary>
    public KernelTarget(string release, string sourcePackage = "linux-source-6.1", string? sourceVersion = null)
    {
        Release = release;
        SourcePackage = sourcePackage;
        SourceVersion = sourceVersion ?? (release == ReferenceRelease ? "6.1.192-2" : null);
    }

    /// <summary>The reference target.</summary>
    public static KernelTarget Reference { get; } = new(ReferenceRelease);

    /// <summary>Kernel release string, as <c>uname -r</c> prints it.</summary>
    public string Release { get; }

    /// <summary>Debian package holding the source tarball.</summary>
    public string SourcePackage { get; }

    /// <summary>Exact version of <see cref="SourcePackage"/>, when pinned.</summary>
    public string? SourceVersion { get; }

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

    /// <summary>Root of the extracted <c>linux-image</c> package.</summary>
    public string ImageRoot => Path.Combine(CacheDirectory, "image");

    /// <summary>The bootable kernel image (<c>vmlinuz</c>, a bzImage).</summary>
    public string KernelImage => Path.Combine(ImageRoot, "boot", "vmlinuz-" + Release);

    /// <summary>The kernel's config as shipped.</summary>
    public string ConfigFile => Path.Combine(ImageRoot, "boot", "config-" + Release);

    /// <summary>The release's modules, <c>lib/modules/&lt;release&gt;</c> of the image package.</summary>
    public string ModulesDirectory => Path.Combine(ImageRoot, "lib", "modules", Release);

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

    /// <summary>The installed headers package (kbuild external modules build against it).</summary>
    public string HeadersDirectory => Path.Combine("/usr/src", "linux-headers-" + Release);

    /// <summary>The source tarball to extract: <see cref="SourceOverride"/> when it is a file, else
    /// the one the <see cref="SourcePackage"/> installs, e.g. <c>/usr/src/linux-source-6.1.tar.xz</c>.</summary>
    public string SourceTarball => SourceOverride is { } s && !Directory.Exists(s) ? s : Path.Combine("/usr/src", SourcePackage + ".tar.xz");

    /// <summary>The directory every member of <see cref="SourceTarball"/> sits under (<c>linux-source-6.1</c>).</summary>
    public string SourceTopDirectory => SourcePackage;

    /// <summary>The config the distro built this release with, as the headers package ships it.</summary>
    public string HeadersConfigFile => Path.Combine(HeadersDirectory, ".config");

    /// <summary>Lock file serialising every Livegraft process that prepares, patches or compiles in
    /// <see cref="TreeDirectory"/>. It lives beside the tree so that it also guards the tree's creation.</summary>
    public string TreeLockFile => Path.Combine(CacheDirectory, "tree.lock");

    /// <summary>Per-tree catalog of the objects kbuild builds for this config (see <c>UnitCatalog</c>).</summary>
    public string UnitCatalogFile => Path.Combine(CacheDirectory, TreeKey is { } k ? $"units-{k}.tsv" : "units.tsv");

    /// <summary>The compiler the distro built this release with; kbuild is always invoked with <c>CC=</c> it.</summary>
    public string Compiler { get; init; } = "gcc-12";

    /// <summary>The <c>vermagic</c> every module for this release must carry, derived from the
    /// headers package's config exactly as <c>include/linux/vermagic.h</c> composes it
    /// (with its trailing space). Randomised struct layout (whose seed hash also goes into vermagic)
    /// is not supported.</summary>
    public string ExpectedVermagic()
    {
        if (!File.Exists(HeadersConfigFile))
            throw new LivegraftException(ExitCode.HostFailure, KernelErrors.HeadersPackageMissing,
                $"{HeadersConfigFile} not found: install linux-headers-{Release} (scripts/install-deps)");
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
    public static Dictionary<string, string> ReadConfig(string path)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in File.ReadLines(path))
        {
            if (line.Length == 0 || line[0] == '#')
                continue;
            var eq = line.IndexOf('=');
            if (eq > 0)
                result[line[..eq]] = line[(eq + 1)..];
        }
        return result;
    }

    /// <summary>Fetches and extracts <c>linux-image-&lt;release&gt;</c> into <see cref="ImageRoot"/>
    /// unless it is already there. Extraction goes to a temporary directory renamed into place, so an
    /// interrupted run leaves nothing half-written.</summary>
    public void EnsureImage(Action<string>? progress = null)
    {
        if (File.Exists(KernelImage) && Directory.Exists(ModulesDirectory))
            return;
        Directory.CreateDirectory(CacheDirectory);
        var work = Path.Combine(CacheDirectory, "image.tmp-" + Environment.ProcessId);
        if (Directory.Exists(work))
            Directory.Delete(work, recursive: true);
        Directory.CreateDirectory(work);
        try
        {
            var root = DownloadPackage("linux-image-" + Release, work, progress);
            if (Directory.Exists(ImageRoot))
                Directory.Delete(ImageRoot, recursive: true);
            Directory.Move(root, ImageRoot);
        }
        finally
        {
            if (Directory.Exists(work))
                Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>Fetches a Debian package (<c>name</c> or <c>name=version</c>) with <c>apt-get download</c>
    /// into <paramref name="work"/> and extracts it there; returns the extracted root.</summary>
    internal static string DownloadPackage(string package, string work, Action<string>? progress)
    {
        progress?.Invoke($"downloading {package}");
        ProcessRunner.RunChecked(new ProcessSpec("apt-get", ["download", package]) { WorkingDirectory = work }, KernelErrors.DownloadFailed, $"apt-get download {package}");
        var deb = Directory.GetFiles(work, "*.deb").SingleOrDefault()
            ?? throw new LivegraftException(ExitCode.HostFailure, KernelErrors.DownloadFailed, $"apt-get download {package} produced no .deb");
        progress?.Invoke($"extracting {Path.GetFileName(deb)}");
        var root = Path.Combine(work, "root");
        ProcessRunner.RunChecked(new ProcessSpec("dpkg-deb", ["-x", deb, root]) { WorkingDirectory = work }, KernelErrors.DownloadFailed, $"extracting {Path.GetFileName(deb)}");
        return root;
    }
}
