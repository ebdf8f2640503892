using System.Runtime.InteropServices;
using Livegraft.Kernel.Patches;

namespace Livegraft.Kernel.Units;

/// <summary>One unit compiled before and after the patch.</summary>
/// <param name="Path">Tree-relative object, e.g. <c>fs/proc/cmdline.o</c>.</param>
/// <param name="Source">Tree-relative source file.</param>
/// <param name="OrigObject">Absolute path of the unpatched object (after objtool).</param>
/// <param name="PatchedObject">Absolute path of the patched object (after objtool).</param>
/// <param name="Parent"><c>vmlinux</c> or the module name (underscores).</param>
public sealed record CompiledUnit(string Path, string Source, string OrigObject, string PatchedObject, string Parent);

/// <summary>
/// Compiles the affected units through kbuild in the prepared tree, unpatched then patched, so the
/// objects carry exactly the shipped kernel's flags plus <c>-ffunction-sections -fdata-sections</c>
/// (one section per function and object, which the differ needs) and the author headers' <c>-I</c>.
/// objtool runs as part of kbuild, so its ORC, retpoline and return-thunk sections are in both objects.
/// </summary>
/// <remarks>
/// Work directory layout: <c>orig/&lt;object&gt;</c>, <c>patched/&lt;object&gt;</c>, and the
/// make logs <c>orig.log</c>, <c>patched.log</c>. The tree is locked for the whole run and restored
/// after the patched compile — on success, failure, or SIGINT/SIGTERM (the signal is turned into
/// cancellation so the restore runs before the process ends; a SIGKILL leaves the journal, which
/// the next run replays).
/// </remarks>
public static class UnitCompiler
{
    /// <summary>Extra compiler flags for every unit compile: one section per function and object,
    /// the author headers, then <paramref name="extra"/> (flags the target kernel was built with
    /// beyond its config's, as <c>KCFLAGS</c>).</summary>
    public static string KCFlags(string includeDirectory, string? extra = null) =>
        $"-ffunction-sections -fdata-sections -I{includeDirectory}" + (string.IsNullOrWhiteSpace(extra) ? "" : " " + extra.Trim());

    /// <summary>Finds the affected units of <paramref name="patch"/> and compiles them before and
    /// after; the one call the build command needs.</summary>
    public static IReadOnlyList<CompiledUnit> CompileBeforeAfter(
        KernelTree tree, PatchSet patch, string workDir, out AffectedUnitSet affected,
        int maxUnits = 200, Action<string>? progress = null, string? extraCflags = null, CancellationToken cancellationToken = default)
    {
        using var scope = new SignalScope(cancellationToken);
        using var treeLock = tree.Lock(progress, scope.Token);
        tree.RecoverJournal(progress);
        var catalog = UnitCatalog.Load(tree, progress, scope.Token);
        affected = AffectedUnits.Find(tree, patch, catalog, maxUnits, progress);
        foreach (var note in affected.Notes)
            progress?.Invoke(note.ToString());
        return CompileLocked(tree, patch, affected.Units, workDir, extraCflags, progress, scope.Token);
    }

    /// <summary>Compiles <paramref name="units"/> unpatched, applies <paramref name="patch"/>,
    /// compiles them again, restores the tree. Units reached only through includes that turn out not
    /// to depend on any changed file (per kbuild's dependency list) are dropped.</summary>
    /// <exception cref="LivegraftException">LG0336 when an unpatched unit does not compile, LG0337
    /// when a patched one does not (the compiler's errors are in the message), LG0331 when the patch
    /// does not apply, LG0338 when a unit's parent is inconsistent with the shipped kernel.</exception>
    public static IReadOnlyList<CompiledUnit> CompileBeforeAfter(
        KernelTree tree, PatchSet patch, IReadOnlyList<AffectedUnit> units, string workDir,
        Action<string>? progress = null, string? extraCflags = null, CancellationToken cancellationToken = default)
    {
        using var scope = new SignalScope(cancellationToken);
        using var treeLock = tree.Lock(progress, scope.Token);
        tree.RecoverJournal(progress);
        return CompileLocked(tree, patch, units, workDir, extraCflags, progress, scope.Token);
    }

    private static IReadOnlyList<CompiledUnit> CompileLocked(
        KernelTree tree, PatchSet patch, IReadOnlyList<AffectedUnit> units, string workDir, string? extraCflags,
        Action<string>? progress, CancellationToken ct)
    {
        if (units.Count == 0)
            throw new LivegraftException(ExitCode.InvalidInput, KernelErrors.NothingToBuild, "no units to compile", patch.SourcePath);
        workDir = Path.GetFullPath(workDir);
        Directory.CreateDirectory(workDir);
        var kcflags = KCFlags(AuthorHeaders.Extract(), extraCflags);
        var shipped = ShippedModules.Load(tree.Target);

        progress?.Invoke($"compiling {units.Count} unit(s) unpatched");
        var orig = Compile(tree, units, kcflags, Path.Combine(workDir, "orig"), Path.Combine(workDir, "orig.log"),
            KernelErrors.OriginalCompileFailed, ExitCode.HostFailure, "compiling the unpatched units", progress, ct);

        var kept = new List<AffectedUnit>();
        foreach (var u in units)
        {
            var (cmd, deps) = orig[u.Object];
            CheckParent(u, cmd, shipped);
            if (u.ViaIncludesOnly && !u.ChangedFiles.Any(f => deps.Contains(f, StringComparer.Ordinal)))
            {
                progress?.Invoke($"{u.Object}: does not depend on {string.Join(", ", u.ChangedFiles)} for this config; skipped");
                continue;
            }
            kept.Add(u);
        }
        if (kept.Count == 0)
            throw new LivegraftException(ExitCode.InvalidInput, KernelErrors.NothingToBuild,
                "no unit this kernel configuration builds depends on the changed files", patch.SourcePath);

        progress?.Invoke($"applying {patch.SourcePath ?? "the patch"}");
        using (tree.ApplyPatch(patch))
        {
            foreach (var note in patch.ApplyNotes)
                progress?.Invoke(note.ToString());
            progress?.Invoke($"compiling {kept.Count} unit(s) patched");
            Compile(tree, kept, kcflags, Path.Combine(workDir, "patched"), Path.Combine(workDir, "patched.log"),
                KernelErrors.PatchedCompileFailed, ExitCode.InvalidInput, "compiling the patched units", progress, ct);
        }
        progress?.Invoke("tree restored");
        return [.. kept.Select(u => new CompiledUnit(u.Object, u.Source,
            Path.Combine(workDir, "orig", u.Object), Path.Combine(workDir, "patched", u.Object), orig[u.Object].Command.Parent))];
    }

    private static Dictionary<string, (KbuildCommand Command, IReadOnlyList<string> Deps)> Compile(
        KernelTree tree, IReadOnlyList<AffectedUnit> units, string kcflags, string outDir, string log,
        string errorId, ExitCode exitCode, string what, Action<string>? progress, CancellationToken ct)
    {
        // Delete the objects first: kbuild decides by timestamps and command lines, and an object
        // left from the other side of the patch must never be taken as up to date.
        foreach (var u in units)
            File.Delete(Path.Combine(tree.Root, u.Object));
        tree.Make(units.Select(u => u.Object), kcflags, progress, errorId, exitCode, what: what, stdoutFile: log, cancellationToken: ct);
        var info = new Dictionary<string, (KbuildCommand, IReadOnlyList<string>)>(StringComparer.Ordinal);
        foreach (var u in units)
        {
            var built = Path.Combine(tree.Root, u.Object);
            if (!File.Exists(built))
                throw new LivegraftException(exitCode, errorId, $"make succeeded but wrote no {u.Object}", u.Source);
            var dest = Path.Combine(outDir, u.Object);
            Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
            File.Copy(built, dest, overwrite: true);
            info[u.Object] = KbuildCommand.ReadCmdFile(built, tree.Features.CmdFilePrefix);
        }
        return info;
    }

    private static void CheckParent(AffectedUnit unit, KbuildCommand cmd, ShippedModules? shipped)
    {
        if (cmd.IsModule && cmd.ModName is null)
            throw new LivegraftException(ExitCode.HostFailure, KernelErrors.ParentUnknown, "module object compiled without KBUILD_MODNAME", unit.Object);
        if (cmd.Parent != unit.Parent)
            throw new LivegraftException(ExitCode.HostFailure, KernelErrors.ParentUnknown,
                $"kbuild compiled it for {cmd.Parent} but its dry run listed it under {unit.Parent}", unit.Object);
        if (shipped is null)
            return;
        // Module objects carry KBUILD_MODNAME only; built-in objects also carry KBUILD_MODFILE
        // (scripts/Makefile.lib passes modfile_flags with KBUILD_CFLAGS_KERNEL).
        if (cmd.IsModule && !shipped.ModuleNames.Contains(cmd.ModName!))
            throw new LivegraftException(ExitCode.HostFailure, KernelErrors.ParentUnknown,
                $"kbuild builds it into module {cmd.ModName}, but the shipped kernel's modules.order has no such module", unit.Object);
        if (!cmd.IsModule && cmd.ModFile is not null && shipped.Modular.Contains("kernel/" + cmd.ModFile + ".ko"))
            throw new LivegraftException(ExitCode.HostFailure, KernelErrors.ParentUnknown,
                $"kbuild builds it into vmlinux, but the shipped kernel has kernel/{cmd.ModFile}.ko as a module", unit.Object);
    }
}

/// <summary>Turns SIGINT and SIGTERM into cancellation while alive, so that a Ctrl-C during a
/// compile unwinds through the <c>finally</c> blocks that restore the tree instead of ending the
/// process on the spot.</summary>
internal sealed class SignalScope : IDisposable
{
    private readonly CancellationTokenSource _cts;
    private readonly PosixSignalRegistration _sigint;
    private readonly PosixSignalRegistration _sigterm;

    public SignalScope(CancellationToken outer)
    {
        _cts = CancellationTokenSource.CreateLinkedTokenSource(outer);
        _sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Cancel);
        _sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Cancel);
    }

    public CancellationToken Token => _cts.Token;

    private void Cancel(PosixSignalContext context)
    {
        context.Cancel = true; // keep the process alive until the tree is restored
        _cts.Cancel();
    }

    public void Dispose()
    {
        _sigint.Dispose();
        _sigterm.Dispose();
        _cts.Dispose();
    }
}

/// <summary>The image package's <c>modules.order</c> and <c>modules.builtin</c>, used to
/// cross-check the parents kbuild reports.</summary>
public sealed class ShippedModules
{
    private ShippedModules(HashSet<string> modular, HashSet<string> builtin)
    {
        Modular = modular;
        Builtin = builtin;
        ModuleNames = new HashSet<string>(modular.Select(ModuleName), StringComparer.Ordinal);
    }

    /// <summary>Names of the modules shipped as <c>.ko</c> files, as the kernel knows them.</summary>
    public IReadOnlySet<string> ModuleNames { get; }

    /// <summary>Paths like <c>kernel/fs/ext4/ext4.ko</c> of modules shipped as <c>.ko</c> files.</summary>
    public IReadOnlySet<string> Modular { get; }

    /// <summary>Paths of tristate modules built into vmlinux.</summary>
    public IReadOnlySet<string> Builtin { get; }

    /// <summary>Loads the lists from the extracted image; null when the image is not extracted.</summary>
    public static ShippedModules? Load(KernelTarget target)
    {
        var order = Path.Combine(target.ModulesDirectory, "modules.order");
        var builtin = Path.Combine(target.ModulesDirectory, "modules.builtin");
        if (!File.Exists(order))
            return null;
        static HashSet<string> Read(string p) => File.Exists(p)
            ? new HashSet<string>(File.ReadLines(p).Select(l => l.Trim()).Where(l => l.Length > 0), StringComparer.Ordinal)
            : [];
        return new ShippedModules(Read(order), Read(builtin));
    }

    /// <summary>The parent a shipped module path stands for: its file name without <c>.ko</c>,
    /// dashes turned into underscores as the kernel does.</summary>
    public static string ModuleName(string koPath) => Path.GetFileNameWithoutExtension(koPath).Replace('-', '_');
}
