using System.Globalization;
using Livegraft.Kernel.Features;
using Livegraft.Kernel.Patches;

namespace Livegraft.Kernel;

/// <summary>
/// The prepared source tree of a <see cref="KernelTarget"/>: the distro's source tarball, the
/// distro's config, <c>make olddefconfig prepare modules_prepare</c>. Units are compiled in it with
/// the shipped kernel's flags.
/// </summary>
/// <remarks>
/// The tree carries a stamp file (<see cref="StampFileName"/>) written last; a tree without a valid
/// stamp is never used. A new tree is extracted and prepared in a temporary directory beside
/// <see cref="KernelTarget.TreeDirectory"/> and renamed into place. All users hold
/// <see cref="KernelTarget.TreeLockFile"/> while they work in the tree.
/// </remarks>
public sealed class KernelTree
{
    /// <summary>Name of the stamp file at the root of a prepared tree.</summary>
    public const string StampFileName = ".livegraft-tree";

    private TargetFeatures? _features;

    private KernelTree(KernelTarget target, string root, IReadOnlyDictionary<string, string> stamp)
    {
        Target = target;
        Root = root;
        Stamp = stamp;
    }

    /// <summary>What this kernel is like (special-section layouts, kbuild format, livepatch core),
    /// read from the tree when it was ensured (docs/targets.md).</summary>
    public TargetFeatures Features => _features
        ?? throw new InvalidOperationException("the tree's features are read by KernelTree.Ensure");

    /// <summary>The kernel the tree is for.</summary>
    public KernelTarget Target { get; }

    /// <summary>Absolute path of the tree.</summary>
    public string Root { get; }

    /// <summary>What the tree was prepared from (<c>release</c>, <c>source-package</c>,
    /// <c>source-version</c>, <c>source</c>, <c>config-sha256</c>, <c>compiler</c>, <c>prepared</c>).</summary>
    public IReadOnlyDictionary<string, string> Stamp { get; }

    /// <summary>Parallel jobs for make; defaults to the processor count.</summary>
    public int Jobs { get; init; } = Environment.ProcessorCount;

    /// <summary>Returns the prepared tree of <paramref name="target"/>, extracting and preparing it
    /// when missing or stale, and undoing a half-applied patch left by a killed run.</summary>
    /// <remarks>The release's headers and source are fetched into the cache first when missing
    /// (<see cref="KernelTarget.EnsureHeaders"/>, <see cref="KernelTarget.EnsureSource"/>), the
    /// compiler is compared with the one the kernel was built with, and the tree's
    /// <see cref="Features"/> are read.</remarks>
    /// <exception cref="LivegraftException">LG0370–LG0373 when the release's packages cannot be
    /// resolved or fetched, LG0374 when this machine's compiler is another GCC release, LG0304 when
    /// preparing fails, LG0376 when the feature probe does.</exception>
    public static KernelTree Ensure(KernelTarget target, Action<string>? progress = null, CancellationToken cancellationToken = default)
    {
        using var _ = TreeLock.Acquire(target, progress, cancellationToken);
        return EnsureLocked(target, progress, cancellationToken);
    }

    /// <summary>Ensure, for callers already holding the tree lock.</summary>
    internal static KernelTree EnsureLocked(KernelTarget target, Action<string>? progress, CancellationToken cancellationToken)
    {
        var tree = EnsurePrepared(target, progress, cancellationToken);
        tree._features = TargetFeatures.Read(tree, progress, cancellationToken);
        return tree;
    }

    private static KernelTree EnsurePrepared(KernelTarget target, Action<string>? progress, CancellationToken cancellationToken)
    {
        if (target.ConfigOverride is { } config && !File.Exists(config))
            throw new LivegraftException(ExitCode.InvalidInput, KernelErrors.SourceOverrideInvalid, "no such config file", config);
        if (target.SourceOverride is { } source && !File.Exists(source) && !Directory.Exists(source))
            throw new LivegraftException(ExitCode.InvalidInput, KernelErrors.SourceOverrideInvalid, "no such source tarball or directory", source);
        target.EnsureHeaders(progress);
        var compiler = TargetCompiler.Check(target);
        if (compiler.Warning is { } warning)
            progress?.Invoke(warning.ToString());
        var configSha = Sha256Hash.HashFile(target.BuildConfigFile);
        var root = target.TreeDirectory;
        var stamp = ReadStamp(root);
        if (stamp is not null && StampMatches(target, stamp, configSha, out _) && PreparedConfig.DriftOf(target, root) is [])
        {
            var tree = new KernelTree(target, root, stamp);
            tree.RecoverJournal(progress);
            return tree;
        }
        if (stamp is null && target.SourceOverride is null && target.ConfigOverride is null && LooksPrepared(target, root)
            && PreparedConfig.DriftOf(target, root) is [])
        {
            // A tree prepared by hand (or by an older Livegraft) exactly as Ensure would: adopt it.
            progress?.Invoke($"adopting the prepared tree {root}");
            var adopted = NewStamp(target, configSha, target.SourceVersion, adopted: true);
            WriteStamp(root, adopted);
            var tree = new KernelTree(target, root, adopted);
            tree.RecoverJournal(progress);
            return tree;
        }
        if (stamp is not null)
        {
            if (StampMatches(target, stamp, configSha, out var why))
                why = "its config drifted from the shipped one: " + string.Join("; ", PreparedConfig.DriftOf(target, root).Take(3));
            progress?.Invoke($"the prepared tree is stale ({why}); preparing a new one");
        }
        return Prepare(target, configSha, progress, cancellationToken);
    }

    /// <summary>Opens the prepared tree without preparing anything; null when there is none.</summary>
    public static KernelTree? TryOpen(KernelTarget target)
    {
        var stamp = ReadStamp(target.TreeDirectory);
        if (stamp is null)
            return null;
        var features = Path.Combine(target.TreeDirectory, TargetFeatures.FileName);
        return new KernelTree(target, target.TreeDirectory, stamp)
        {
            _features = File.Exists(features) ? TargetFeatures.Parse(File.ReadAllText(features)) : null,
        };
    }

    /// <summary>Takes the tree lock (waits for other Livegraft processes).</summary>
    public IDisposable Lock(Action<string>? progress = null, CancellationToken cancellationToken = default) =>
        TreeLock.Acquire(Target, progress, cancellationToken);

    /// <summary>Applies <paramref name="patch"/> (or its reverse) to the tree, journaling the
    /// originals first. Disposing the result restores the tree. Nothing is written when a hunk
    /// does not apply.</summary>
    public PatchedTree ApplyPatch(PatchSet patch, bool reverse = false)
    {
        var changes = PatchApplier.Compute(patch, Root, reverse);
        TreeJournal.Begin(Root, changes.Keys, $"{(reverse ? "reverse of " : "")}patch {patch.Sha256} {patch.SourcePath}");
        var applied = new PatchedTree(this);
        try
        {
            PatchApplier.Write(Root, changes);
        }
        catch
        {
            applied.Dispose();
            throw;
        }
        return applied;
    }

    /// <summary>True when a journal says the tree carries a patch that was never undone.</summary>
    public bool HasPendingJournal => TreeJournal.IsPending(Root);

    /// <summary>Undoes a patch left applied by a killed run; returns the files restored.</summary>
    public IReadOnlyList<string> RecoverJournal(Action<string>? progress = null)
    {
        if (!Directory.Exists(Path.Combine(Root, TreeJournal.DirectoryName)))
            return [];
        var restored = TreeJournal.Restore(Root);
        if (restored.Count > 0)
            progress?.Invoke($"restored {restored.Count} file(s) left patched by an interrupted run: {string.Join(", ", restored)}");
        return restored;
    }

    /// <summary>Runs kbuild in the tree with the shipped kernel's compiler and release:
    /// <c>make -jN CC=… KERNELRELEASE=… [KCFLAGS=…] targets</c>. make's progress lines go to
    /// <paramref name="progress"/>; a failure throws with <paramref name="errorId"/> and make's stderr tail.</summary>
    internal ProcessResult Make(
        IEnumerable<string> targets,
        string? kcflags = null,
        Action<string>? progress = null,
        string errorId = KernelErrors.TreePrepareFailed,
        ExitCode exitCode = ExitCode.HostFailure,
        bool check = true,
        string? what = null,
        IEnumerable<string>? extraArgs = null,
        string? stdoutFile = null,
        CancellationToken cancellationToken = default)
    {
        var args = new List<string> { "-C", Root, "-j" + Jobs.ToString(CultureInfo.InvariantCulture), "CC=" + Target.Compiler, "KERNELRELEASE=" + Target.Release };
        if (kcflags is not null)
            args.Add("KCFLAGS=" + kcflags);
        if (extraArgs is not null)
            args.AddRange(extraArgs);
        args.AddRange(targets);
        var spec = new ProcessSpec("make", args)
        {
            WorkingDirectory = Root,
            OnStdoutLine = progress is null ? null : l => progress(l.Trim()),
            Environment = KbuildEnvironment,
            StdoutFile = stdoutFile,
        };
        return check
            ? ProcessRunner.RunChecked(spec, errorId, what, exitCode, cancellationToken)
            : ProcessRunner.Run(spec, cancellationToken);
    }

    /// <summary>Environment variables that would change what kbuild does are removed, so a build
    /// started from another make (or a shell with ARCH set) behaves like a clean one.</summary>
    internal static readonly IReadOnlyDictionary<string, string?> KbuildEnvironment = new Dictionary<string, string?>
    {
        ["MAKEFLAGS"] = null, ["MFLAGS"] = null, ["MAKELEVEL"] = null, ["MAKEOVERRIDES"] = null,
        ["KBUILD_OUTPUT"] = null, ["KBUILD_EXTMOD"] = null, ["KBUILD_MODPOST_WARN"] = null,
        ["ARCH"] = null, ["CROSS_COMPILE"] = null, ["KCFLAGS"] = null, ["KCPPFLAGS"] = null,
        ["KAFLAGS"] = null, ["LLVM"] = null, ["O"] = null, ["M"] = null, ["V"] = null,
    };

    private static KernelTree Prepare(KernelTarget target, string configSha, Action<string>? progress, CancellationToken cancellationToken)
    {
        var fromDirectory = target.SourceOverride is { } dir && Directory.Exists(dir);
        // The exact source the release was built from, fetched into the cache: never whatever
        // linux-source package the machine has installed.
        var tarball = fromDirectory ? null : target.SourceOverride ?? target.EnsureSource(progress);

        Directory.CreateDirectory(target.CacheDirectory);
        foreach (var stale in Directory.GetDirectories(target.CacheDirectory, "tree.tmp-*").Concat(Directory.GetDirectories(target.CacheDirectory, "tree.old-*")))
            Directory.Delete(stale, recursive: true); // we hold the lock: nobody else is using them
        var work = Path.Combine(target.CacheDirectory, "tree.tmp-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        Directory.CreateDirectory(work);
        try
        {
            var prepared = fromDirectory ? CopySource(target.SourceOverride!, work, cancellationToken) : ExtractSource(target, tarball!, work, progress, cancellationToken);
            File.Copy(target.BuildConfigFile, Path.Combine(prepared, ".config"), overwrite: true);
            var version = target.SourceOverride is null ? target.SourceVersion : MakefileVersion(prepared);
            var stamp = NewStamp(target, configSha, version, adopted: false);
            var tree = new KernelTree(target, prepared, stamp);
            progress?.Invoke("make olddefconfig prepare modules_prepare");
            tree.Make(["olddefconfig", "prepare", "modules_prepare"], progress: progress, errorId: KernelErrors.TreePrepareFailed,
                what: "preparing the kernel tree", cancellationToken: cancellationToken);
            PreparedConfig.ThrowIfDrifted(target, prepared, progress);
            WriteStamp(prepared, stamp);
            var root = target.TreeDirectory;
            if (Directory.Exists(root))
            {
                var old = Path.Combine(target.CacheDirectory, "tree.old-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
                Directory.Move(root, old);
                Directory.Delete(old, recursive: true);
            }
            Directory.Move(prepared, root);
            var final = new KernelTree(target, root, stamp);
            // prepare records absolute paths in a few dependency files (tools/objtool); a second,
            // cheap prepare in the final place refreshes them.
            final.Make(["prepare", "modules_prepare"], progress: progress, errorId: KernelErrors.TreePrepareFailed,
                what: "re-preparing the kernel tree in place", cancellationToken: cancellationToken);
            File.Delete(target.UnitCatalogFile);
            return final;
        }
        finally
        {
            if (Directory.Exists(work))
                Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>Extracts the tarball into <paramref name="work"/>; returns the directory holding its
    /// top Makefile (the package's <c>linux-source-X.Y/</c>, any single top directory, or none).</summary>
    private static string ExtractSource(KernelTarget target, string tarball, string work, Action<string>? progress, CancellationToken cancellationToken)
    {
        progress?.Invoke($"extracting {tarball}");
        ProcessRunner.RunChecked(new ProcessSpec("tar", ["-xf", tarball, "-C", work]), KernelErrors.TreePrepareFailed,
            $"extracting {tarball}", cancellationToken: cancellationToken);
        var candidates = new[] { Path.Combine(work, target.SourceTopDirectory), work }
            .Concat(Directory.GetDirectories(work))
            .Where(d => File.Exists(Path.Combine(d, "Makefile")) && Directory.Exists(Path.Combine(d, "arch")));
        return candidates.FirstOrDefault()
            ?? throw new LivegraftException(ExitCode.InvalidInput, KernelErrors.TreePrepareFailed,
                "not a kernel source tarball: no top directory with a Makefile and arch/", tarball);
    }

    /// <summary>Copies a source directory (never prepared in place: it is the user's).</summary>
    private static string CopySource(string source, string work, CancellationToken cancellationToken)
    {
        if (!File.Exists(Path.Combine(source, "Makefile")) || !Directory.Exists(Path.Combine(source, "arch")))
            throw new LivegraftException(ExitCode.InvalidInput, KernelErrors.SourceOverrideInvalid, "not a kernel source directory: no Makefile and arch/", source);
        var copy = Path.Combine(work, "source");
        ProcessRunner.RunChecked(new ProcessSpec("cp", ["-a", "--reflink=auto", source, copy]), KernelErrors.TreePrepareFailed,
            $"copying {source}", cancellationToken: cancellationToken);
        return copy;
    }

    /// <summary><c>VERSION.PATCHLEVEL.SUBLEVEL</c> from a tree's top Makefile.</summary>
    private static string MakefileVersion(string root)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in File.ReadLines(Path.Combine(root, "Makefile")).Take(10))
        {
            var eq = line.IndexOf('=');
            if (eq > 0)
                fields[line[..eq].Trim()] = line[(eq + 1)..].Trim();
        }
        string Get(string k) => fields.TryGetValue(k, out var v) ? v : "?";
        return $"{Get("VERSION")}.{Get("PATCHLEVEL")}.{Get("SUBLEVEL")}";
    }

    private static bool LooksPrepared(KernelTarget target, string root)
    {
        var uts = Path.Combine(root, "include", "generated", "utsrelease.h");
        return File.Exists(Path.Combine(root, ".config"))
            && File.Exists(Path.Combine(root, "include", "generated", "autoconf.h"))
            && File.Exists(Path.Combine(root, "scripts", "mod", "modpost"))
            && File.Exists(uts)
            && File.ReadAllText(uts).Contains($"\"{target.Release}\"", StringComparison.Ordinal);
    }

    private static bool StampMatches(KernelTarget target, Dictionary<string, string> stamp, string configSha, out string why)
    {
        string Get(string k) => stamp.TryGetValue(k, out var v) ? v : "";
        why = "";
        if (Get("release") != target.Release)
            why = $"release {Get("release")}";
        else if (Get("source-package") != target.SourcePackage)
            why = $"source package {Get("source-package")}";
        else if ((stamp.TryGetValue("source", out var source) ? source : "package:" + target.SourcePackage) != target.SourceIdentity)
            why = $"source {source}";
        else if (target.SourceOverride is null && Get("source-version") != target.SourceVersion)
            why = $"source version {Get("source-version")}, want {target.SourceVersion}";
        else if (Get("config-sha256") != configSha)
            why = $"the config changed ({target.BuildConfigFile})";
        else if (Get("compiler") != target.Compiler)
            why = $"compiler {Get("compiler")}";
        return why.Length == 0;
    }

    private static Dictionary<string, string> NewStamp(KernelTarget target, string configSha, string sourceVersion, bool adopted) => new(StringComparer.Ordinal)
    {
        ["release"] = target.Release,
        ["source-package"] = target.SourcePackage,
        ["source-version"] = sourceVersion,
        ["source"] = target.SourceIdentity,
        ["config-sha256"] = configSha,
        ["compiler"] = target.Compiler,
        ["prepared"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
        ["adopted"] = adopted ? "yes" : "no",
    };

    private static Dictionary<string, string>? ReadStamp(string root)
    {
        var path = Path.Combine(root, StampFileName);
        return File.Exists(path) ? KeyValueLines.Parse(File.ReadLines(path)) : null;
    }

    private static void WriteStamp(string root, IReadOnlyDictionary<string, string> stamp) =>
        PatchApplier.AtomicWrite(Path.Combine(root, StampFileName),
            System.Text.Encoding.UTF8.GetBytes(string.Concat(stamp.Select(kv => $"{kv.Key}={kv.Value}\n"))));
}

/// <summary>A patch applied to a <see cref="KernelTree"/>; disposing restores the originals from
/// the journal (also after an exception or cancellation, as long as the process lives).</summary>
public sealed class PatchedTree : IDisposable
{
    private readonly KernelTree _tree;
    private bool _restored;

    internal PatchedTree(KernelTree tree) => _tree = tree;

    /// <summary>Restores the tree now; idempotent.</summary>
    public void Restore()
    {
        if (_restored)
            return;
        TreeJournal.Restore(_tree.Root);
        _restored = true;
    }

    /// <summary>Same as <see cref="Restore"/>.</summary>
    public void Dispose() => Restore();
}

/// <summary>Inter-process lock on a kernel tree (<see cref="CacheLock"/> on <see cref="KernelTarget.TreeLockFile"/>).</summary>
internal static class TreeLock
{
    public static CacheLock Acquire(KernelTarget target, Action<string>? progress, CancellationToken cancellationToken) =>
        CacheLock.Acquire(target.TreeLockFile, $"the kernel tree of {target.Release}", progress, cancellationToken);
}
