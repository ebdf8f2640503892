using System.Globalization;
using System.Text;

namespace Livegraft.Host;

/// <summary>A patch kept under <c>/var/lib/livegraft/&lt;release&gt;/</c> for loading at boot.</summary>
/// <param name="Release">Kernel release it is for (its vermagic release).</param>
/// <param name="Name">Module name.</param>
/// <param name="Sequence">Install order within the release; loads go in this order.</param>
/// <param name="Path">The stored module file.</param>
/// <param name="Sha256">The checksum recorded at install time.</param>
public sealed record InstalledPatch(string Release, string Name, int Sequence, string Path, string Sha256);

/// <summary>What <c>load-installed</c> did with one stored patch.</summary>
public enum BootAction
{
    /// <summary>Loaded now.</summary>
    Loaded,
    /// <summary>It was already in force.</summary>
    AlreadyLoaded,
    /// <summary>Not loaded: superseded by a later replace patch.</summary>
    Skipped,
    /// <summary>Not loaded: boot safety quarantined it (an earlier boot ended before it was confirmed healthy).</summary>
    Quarantined,
    /// <summary>Its load failed.</summary>
    Failed,
}

/// <summary>What <c>load-installed</c> did for one stored patch.</summary>
/// <param name="Patch">The stored patch.</param>
/// <param name="Action">What happened.</param>
/// <param name="Load">The load result, when a load ran.</param>
/// <param name="Diagnostics">Why it failed or was skipped.</param>
public sealed record BootLoadResult(InstalledPatch Patch, BootAction Action, LoadResult? Load, IReadOnlyList<Diagnostic> Diagnostics)
{
    /// <summary>The exit code of a <c>load-installed</c> run: host failure when any patch failed.</summary>
    public static ExitCode ExitCodeOf(IReadOnlyList<BootLoadResult> results) =>
        results.Any(r => r.Action == BootAction.Failed) ? ExitCode.HostFailure : ExitCode.Success;
}

/// <summary>
/// Installed patches: <c>&lt;state&gt;/&lt;release&gt;/NNNN-&lt;name&gt;.ko</c> with a
/// <c>.sha256</c> sidecar in <c>sha256sum</c> format, written atomically (temp file + rename), and the
/// systemd unit that loads them early at boot.
/// </summary>
public sealed class PatchStore
{
    /// <summary>Name of the boot unit.</summary>
    public const string UnitName = "livegraft.service";

    private readonly HostPaths _paths;

    /// <summary>Store over the given roots.</summary>
    public PatchStore(HostPaths? paths = null) => _paths = paths ?? HostPaths.Default;

    /// <summary>Checked before changing anything; tests over a temporary tree turn it off.</summary>
    internal bool RequireRoot { get; init; } = true;

    /// <summary>Path of the livegraft binary the unit runs.</summary>
    public string ExecutablePath { get; init; } = DefaultExecutable();

    /// <summary>Every installed patch, by release then install order.</summary>
    public IReadOnlyList<InstalledPatch> List()
    {
        if (!Directory.Exists(_paths.State))
            return [];
        var all = new List<InstalledPatch>();
        foreach (var releaseDir in Directory.GetDirectories(_paths.State).Order(StringComparer.Ordinal))
            all.AddRange(List(Path.GetFileName(releaseDir)));
        return all;
    }

    /// <summary>The patches installed for one release, in install order.</summary>
    public IReadOnlyList<InstalledPatch> List(string release)
    {
        var dir = Path.Combine(_paths.State, release);
        if (!Directory.Exists(dir))
            return [];
        // An install killed after writing the new copy but before removing the old one leaves two
        // copies of a name: the later one is the installed patch (Repair removes the other).
        return [.. Scan(dir, release).GroupBy(p => p.Name, StringComparer.Ordinal).Select(g => g.MaxBy(p => p.Sequence)!).OrderBy(p => p.Sequence)];
    }

    private static List<InstalledPatch> Scan(string dir, string release)
    {
        var patches = new List<InstalledPatch>();
        foreach (var file in Directory.GetFiles(dir, "*.ko"))
        {
            var fileName = Path.GetFileName(file);
            var dash = fileName.IndexOf('-', StringComparison.Ordinal);
            if (dash <= 0 || !int.TryParse(fileName.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out var seq))
                continue;
            var sha = ReadSidecar(file) ?? "";
            patches.Add(new InstalledPatch(release, fileName[(dash + 1)..^3], seq, file, sha));
        }
        return patches;
    }

    /// <summary>What an interrupted install or uninstall left in the store: temporary files, checksum
    /// sidecars without their module, and older copies of a name installed again. <see cref="List()"/>
    /// already ignores them; the next changing command removes them (<see cref="Repair"/>).</summary>
    public IReadOnlyList<Diagnostic> Leftovers()
    {
        var found = new List<Diagnostic>();
        if (!Directory.Exists(_paths.State))
            return found;
        foreach (var dir in Directory.GetDirectories(_paths.State).Order(StringComparer.Ordinal))
        {
            var release = Path.GetFileName(dir);
            foreach (var temp in Directory.GetFiles(dir, "*.tmp-*"))
                found.Add(Leftover(temp, "a temporary file of an interrupted write"));
            foreach (var suffix in new[] { ".sha256", Repository.DetachedSignature.Suffix })
                foreach (var sidecar in Directory.GetFiles(dir, "*.ko" + suffix))
                    if (!File.Exists(sidecar[..^suffix.Length]))
                        found.Add(Leftover(sidecar, $"a {(suffix == ".sha256" ? "checksum" : "signature")} without its module (an interrupted install or uninstall)"));
            var kept = List(release).Select(p => p.Path).ToHashSet(StringComparer.Ordinal);
            foreach (var stale in Scan(dir, release).Where(p => !kept.Contains(p.Path)))
                found.Add(Leftover(stale.Path, $"an older copy of {stale.Name}, installed again (an interrupted install)"));
        }
        return found;

        static Diagnostic Leftover(string path, string what) => new(HostErrors.StoreRepaired, Severity.Note, what, path);
    }

    /// <summary>Removes what <see cref="Leftovers"/> finds; returns a note for each (LG0544). Runs at the
    /// start of every command that changes the store, under the host lock.</summary>
    private List<Diagnostic> Repair(Action<string>? progress)
    {
        var repaired = new List<Diagnostic>();
        foreach (var d in Leftovers())
        {
            File.Delete(d.File!);
            if (d.File!.EndsWith(".ko", StringComparison.Ordinal))
            {
                File.Delete(d.File + ".sha256");
                File.Delete(d.File + Repository.DetachedSignature.Suffix);
            }
            var note = d with { Message = "removed " + d.Message };
            repaired.Add(note);
            progress?.Invoke(note.ToString());
        }
        return repaired;
    }

    /// <summary>
    /// Stores a verified livepatch module for the release it was built for and enables the boot unit.
    /// Installing a name again replaces the stored copy and moves it to the end of the order. The same
    /// build of a quarantined patch (boot safety) is refused (LG0657) unless <paramref name="force"/>,
    /// which lifts the quarantine; a different build lifts it too (both reported through <paramref name="progress"/>).
    /// </summary>
    public InstalledPatch Install(string modulePath, bool force = false, Action<string>? progress = null, TimeSpan? lockTimeout = null, bool drop = false)
    {
        // Before anything is read or stored: with trusted keys configured, only a signed patch is kept (docs/fleet.md).
        var signedBy = Repository.TrustStore.Read(_paths).RequireSigned(modulePath);
        var ko = KernelModuleFile.Read(modulePath);
        if (!ko.HasThisModule || !ko.IsLivepatch)
            throw new LivegraftException(ExitCode.InvalidInput, "LG0502", "not a livepatch module (.modinfo has no livepatch=Y)", modulePath);
        var release = ko.KernelRelease
            ?? throw new LivegraftException(ExitCode.VerificationFailed, "LG0503", "module has no vermagic; cannot tell which kernel it is for", modulePath);
        if (release.Contains('/', StringComparison.Ordinal) || release is "." or "..")
            throw new LivegraftException(ExitCode.InvalidInput, "LG0503", $"bad kernel release '{release}' in vermagic", modulePath);
        CheckRoot("install a patch", StoreOwner, modulePath);
        using var hostLock = HostLock.Acquire(_paths, "install", lockTimeout ?? HostLock.DefaultTimeout, progress);
        Repair(progress);
        TestHooks.PauseAt(_paths, "install:locked");
        var safety = new BootSafety(_paths);
        if (safety.Quarantine(release, ko.Name) is { } quarantined)
        {
            if (!force && quarantined.Sha256 == ko.Sha256)
                throw new LivegraftException(ExitCode.InvalidInput, Kexec.KexecErrors.InstallQuarantined,
                    $"{ko.Name} is quarantined for {release}: {quarantined.Reason}; 'livegraft install --force' tries it again", modulePath);
            safety.Lift(release, ko.Name);
            progress?.Invoke(new Diagnostic(Kexec.KexecErrors.QuarantineLifted, Severity.Note,
                $"quarantine of {ko.Name} lifted ({(force ? "--force" : "a different build")}): load-installed loads it again at the next boot", modulePath).ToString());
        }
        var dir = Path.Combine(_paths.State, release);
        CreateDirectory(dir);
        var existing = List(release);
        var dropped = ko.Replace == true ? DroppedBy(ko, existing, modulePath, drop) : [];
        var sequence = existing.Count == 0 ? 1 : existing.Max(p => p.Sequence) + 1;
        var target = Path.Combine(dir, $"{sequence:D4}-{ko.Name}.ko");
        var bytes = File.ReadAllBytes(modulePath);
        if (Sha256Hash.HashHex(bytes) != ko.Sha256 || (signedBy is not null && signedBy.Sha256 != ko.Sha256))
            throw new LivegraftException(ExitCode.InvalidInput, "LG0531", "module file changed while it was being installed", modulePath);
        // Sidecar first: a crash between the two renames leaves a sidecar without module, which List
        // ignores; one after the module is written leaves two copies, of which List takes the later.
        WriteAtomic(target + ".sha256", Encoding.UTF8.GetBytes($"{ko.Sha256}  {Path.GetFileName(target)}\n"));
        if (signedBy is not null)
            WriteAtomic(target + Repository.DetachedSignature.Suffix, Encoding.UTF8.GetBytes(signedBy.SignatureText));
        TestHooks.PauseAt(_paths, "install:sidecar");
        WriteAtomic(target, bytes);
        TestHooks.PauseAt(_paths, "install:module");
        foreach (var old in existing.Where(p => p.Name == ko.Name || dropped.Contains(p)))
            Delete(old);
        TestHooks.PauseAt(_paths, "install:replaced");
        WriteUnit();
        return new InstalledPatch(release, ko.Name, sequence, target, ko.Sha256);
    }

    /// <summary>Removes a stored patch from one release, or from all when <paramref name="release"/> is null;
    /// removes the boot unit when nothing is left. Does not unload a running patch.</summary>
    public IReadOnlyList<InstalledPatch> Uninstall(string name, string? release = null, Action<string>? progress = null, TimeSpan? lockTimeout = null)
    {
        name = KernelModuleFile.NameFromFileName(name); // foo-bar and foo_bar name the same module
        CheckRoot("uninstall a patch", StoreOwner, null);
        using var hostLock = HostLock.Acquire(_paths, "uninstall", lockTimeout ?? HostLock.DefaultTimeout, progress);
        Repair(progress);
        var removed = (release is null ? List() : List(release)).Where(p => p.Name == name).ToList();
        if (removed.Count == 0)
            throw new LivegraftException(ExitCode.InvalidInput, "LG0532",
                $"no installed patch named {name}" + (release is null ? "" : $" for {release}"), _paths.State);
        foreach (var p in removed)
        {
            Delete(p);
            TestHooks.PauseAt(_paths, "uninstall:deleted");
            new BootSafety(_paths).Lift(p.Release, p.Name);
        }
        if (List().Count == 0)
            RemoveUnit();
        return removed;
    }

    /// <summary>Checks a stored patch against its sidecar (LG0530 on mismatch or missing sidecar).</summary>
    public static void VerifyChecksum(InstalledPatch patch)
    {
        if (patch.Sha256.Length != 64)
            throw new LivegraftException(ExitCode.VerificationFailed, "LG0530", "checksum sidecar missing or malformed", patch.Path + ".sha256");
        var actual = Sha256Hash.HashHex(File.ReadAllBytes(patch.Path));
        if (actual != patch.Sha256)
            throw new LivegraftException(ExitCode.VerificationFailed, "LG0530",
                $"checksum mismatch: sidecar says {patch.Sha256}, file is {actual}", patch.Path);
    }

    /// <summary>
    /// Loads every patch installed for the running release, in install order, verifying checksums.
    /// Patches before the last one recorded as atomic replace are skipped (it supersedes them);
    /// patches already in force are left alone. Does nothing when the command line has
    /// <c>livegraft.enable=0</c>. Boot safety (<see cref="BootSafety"/>): markers an earlier boot left
    /// become quarantines first; a quarantined patch is not loaded; each load is preceded by a durable
    /// marker that <c>confirm-boot</c> clears after <paramref name="healthyAfter"/> (default 60 s).
    /// </summary>
    public IReadOnlyList<BootLoadResult> LoadInstalled(LivepatchManager manager, TransitionOptions options, TimeSpan? healthyAfter = null)
    {
        // Up front, so a non-root caller is refused even when nothing is installed (each load would refuse anyway).
        CheckRoot("load installed patches", "finit_module(2) needs CAP_SYS_MODULE", null);
        using var hostLock = HostLock.Acquire(_paths, "load-installed", options.LockTimeout, options.Progress);
        Repair(options.Progress);
        var kernel = RunningKernel.Read(_paths);
        if (kernel.HasParameter("livegraft.enable=0"))
        {
            options.Progress?.Invoke("livegraft.enable=0 on the kernel command line: not loading patches");
            return [];
        }
        var safety = new BootSafety(_paths);
        foreach (var d in safety.SettlePreviousBoot(kernel.Release))
            options.Progress?.Invoke(d.ToString());
        var results = new List<BootLoadResult>();
        foreach (var (patch, supersededBy, quarantine) in PlanBoot(kernel.Release, safety))
        {
            if (supersededBy is { } by)
            {
                results.Add(new BootLoadResult(patch, BootAction.Skipped, null,
                    [new Diagnostic("LG0533", Severity.Note, $"superseded by the atomic replace patch {by}, which carries its fixes", patch.Path)]));
                continue;
            }
            if (quarantine is { } q)
            {
                results.Add(new BootLoadResult(patch, BootAction.Quarantined, null,
                    [new Diagnostic(Kexec.KexecErrors.Quarantined, Severity.Warning, $"{patch.Name} is quarantined and not loaded: {q.Reason}; '{q.Retry}' tries it again", patch.Path)]));
                continue;
            }
            try
            {
                VerifyChecksum(patch);
                var loaded = manager.Sysfs.Find(patch.Name);
                if (loaded is { Registered: true, Enabled: true })
                {
                    results.Add(new BootLoadResult(patch, BootAction.AlreadyLoaded, null, []));
                    continue;
                }
                // Durable before the kernel sees the module: a crash inside finit_module must find it at the next boot.
                safety.MarkLoading(patch, healthyAfter ?? BootSafety.DefaultHealthyAfter, RunningKernel.Read(_paths).Tainted);
                var load = manager.Load(patch.Path, options);
                if (load.Outcome == LoadOutcome.Reverted)
                    safety.Clear(patch); // Reverted and removed: nothing of it is left in the kernel.
                else
                    safety.MarkLoaded(patch);
                results.Add(new BootLoadResult(patch, load.ExitCode == ExitCode.Success ? BootAction.Loaded : BootAction.Failed, load, load.Diagnostics));
            }
            catch (LivegraftException e)
            {
                if (e.Diagnostics[0].Id != Kexec.KexecErrors.MarkerNotWritten)
                    safety.Clear(patch);
                results.Add(new BootLoadResult(patch, BootAction.Failed, null, e.Diagnostics));
            }
        }
        return results;
    }

    /// <summary>What <c>load-installed</c> will do at the next boot of <paramref name="release"/> with each of
    /// its installed patches, in install order, from the store and the quarantines as they are now
    /// (read-only; <c>list --json</c> shows it as <c>atBoot</c>, and the fleet's kexec path expects the
    /// <c>load</c> ones in force after the reboot).</summary>
    public IReadOnlyList<BootPlanEntry> BootPlan(string release) => PlanBoot(release, new BootSafety(_paths));

    private List<BootPlanEntry> PlanBoot(string release, BootSafety safety)
    {
        var installed = List(release);
        var quarantines = installed.Select(p => safety.Quarantine(p.Release, p.Name)).ToList();
        // A patch is skipped when a later atomic replace patch carries its fixes (it is cumulative over
        // it, or replaces every function it patches); otherwise it loads, and a later replace that would
        // drop it is refused by the load's replace check rather than losing its fix silently.
        var modules = installed.Select(p => TryRead(p.Path)).ToList();
        var plan = new List<BootPlanEntry>(installed.Count);
        for (var i = 0; i < installed.Count; i++)
        {
            string? supersededBy = null;
            for (var j = installed.Count - 1; j > i && supersededBy is null; j--)
                if (quarantines[j] is null && modules[j] is { Replace: true } later && modules[i] is { } earlier && Carries(later, earlier))
                    supersededBy = later.Name;
            plan.Add(new BootPlanEntry(installed[i], supersededBy, quarantines[i]));
        }
        return plan;
    }

    /// <summary>The installed patches an atomic replace patch would drop at the next boot (it does not carry
    /// their fixes): refused (LG0542, exit 2) unless <paramref name="drop"/>, which uninstalls them.</summary>
    private static List<InstalledPatch> DroppedBy(KernelModuleFile ko, IReadOnlyList<InstalledPatch> existing, string modulePath, bool drop)
    {
        var dropped = existing.Where(p => p.Name != ko.Name && TryRead(p.Path) is { } earlier && !Carries(ko, earlier)).ToList();
        if (dropped.Count == 0)
            return dropped;
        var message = $"{ko.Name} replaces every patch in force, and does not carry the fixes of {string.Join(", ", dropped.Select(p => p.Name))}, installed for {dropped[0].Release}";
        if (!drop)
            throw new LivegraftException(ExitCode.InvalidInput, HostErrors.ReplaceWouldDrop,
                message + "; build it on top of them (--on-top-of) or install it with --drop to uninstall them", modulePath);
        return dropped;
    }

    /// <summary>True when <paramref name="later"/> carries every fix of <paramref name="earlier"/>: it is
    /// cumulative over it, or it replaces every function <paramref name="earlier"/> patches.</summary>
    internal static bool Carries(KernelModuleFile later, KernelModuleFile earlier) =>
        later.Supersedes.Contains(earlier.Name, StringComparer.Ordinal)
        || (earlier.Functions is { } theirs && later.Functions is { } ours && theirs.IsSubsetOf(ours));

    private static KernelModuleFile? TryRead(string path)
    {
        try
        {
            return KernelModuleFile.Read(path);
        }
        catch (LivegraftException)
        {
            return null; // reported when its turn to load comes
        }
    }

    /// <summary>The unit file's text (systemd.unit(5), systemd.service(5)).</summary>
    public string UnitText() =>
        $"""
        # Written by livegraft install; removed by livegraft uninstall of the last patch.
        [Unit]
        Description=Livegraft: load installed kernel live patches
        DefaultDependencies=no
        After=local-fs.target systemd-modules-load.service
        Before=network-pre.target sysinit.target shutdown.target
        Wants=network-pre.target
        Conflicts=shutdown.target
        ConditionKernelCommandLine=!livegraft.enable=0
        ConditionPathIsDirectory=/sys/kernel/livepatch

        [Service]
        Type=oneshot
        RemainAfterExit=yes
        ExecStart={ExecutablePath} load-installed

        [Install]
        WantedBy=sysinit.target

        """;

    /// <summary>Name of the unit that confirms the boot's patches once the system has stayed up (boot safety).</summary>
    public const string ConfirmUnitName = "livegraft-confirm.service";

    /// <summary>The confirm unit's text: started after the boot unit, it does not delay the boot (Type=exec)
    /// and exits once the healthy window has passed.</summary>
    public string ConfirmUnitText() =>
        $"""
        # Written by livegraft install; removed by livegraft uninstall of the last patch.
        [Unit]
        Description=Livegraft: confirm the boot's live patches once the system has stayed up healthy
        After=livegraft.service
        ConditionKernelCommandLine=!livegraft.enable=0
        ConditionPathIsDirectory=/sys/kernel/livepatch

        [Service]
        Type=exec
        ExecStart={ExecutablePath} confirm-boot

        [Install]
        WantedBy=multi-user.target

        """;

    /// <summary>Path of the confirm unit file.</summary>
    public string ConfirmUnitPath => Path.Combine(_paths.SystemdUnits, ConfirmUnitName);

    /// <summary>Path of the symlink that enables the confirm unit.</summary>
    public string ConfirmWantsLink => Path.Combine(_paths.SystemdUnits, "multi-user.target.wants", ConfirmUnitName);

    /// <summary>Path of the unit file.</summary>
    public string UnitPath => Path.Combine(_paths.SystemdUnits, UnitName);

    /// <summary>Path of the symlink that enables it (what <c>systemctl enable</c> would create).</summary>
    public string WantsLink => Path.Combine(_paths.SystemdUnits, "sysinit.target.wants", UnitName);

    private void WriteUnit()
    {
        Directory.CreateDirectory(_paths.SystemdUnits);
        WriteAtomic(UnitPath, Encoding.UTF8.GetBytes(UnitText()));
        WriteAtomic(ConfirmUnitPath, Encoding.UTF8.GetBytes(ConfirmUnitText()));
        foreach (var (link, unit) in new[] { (WantsLink, UnitName), (ConfirmWantsLink, ConfirmUnitName) })
        {
            Directory.CreateDirectory(Path.GetDirectoryName(link)!);
            var info = new FileInfo(link);
            if (info.LinkTarget is not null || info.Exists)
                info.Delete();
            File.CreateSymbolicLink(link, Path.Combine("..", unit));
        }
    }

    private void RemoveUnit()
    {
        foreach (var (link, unit) in new[] { (WantsLink, UnitPath), (ConfirmWantsLink, ConfirmUnitPath) })
        {
            var info = new FileInfo(link);
            if (info.LinkTarget is not null || info.Exists)
                info.Delete();
            if (File.Exists(unit))
                File.Delete(unit);
        }
    }

    private static void Delete(InstalledPatch p)
    {
        // Module first: a crash in between leaves a sidecar without module, which List ignores.
        File.Delete(p.Path);
        File.Delete(p.Path + ".sha256");
        File.Delete(p.Path + Repository.DetachedSignature.Suffix);
    }

    private static string? ReadSidecar(string file)
    {
        var text = LivepatchSysfs.ReadText(file + ".sha256");
        var hash = text?.Split(' ', 2)[0];
        return hash is { Length: 64 } ? hash.ToLowerInvariant() : null;
    }

    /// <summary>Writes atomically and durably (<see cref="HostFiles.WriteAtomic"/>); failures are LG0534.</summary>
    internal static void WriteAtomic(string path, byte[] bytes) => HostFiles.WriteAtomic(path, bytes, errorId: "LG0534");

    private static void CreateDirectory(string dir)
    {
        try
        {
            Directory.CreateDirectory(dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LivegraftException(ExitCode.HostFailure, "LG0534", "cannot write: " + e.Message, dir);
        }
    }

    private string StoreOwner => $"{_paths.State} and {_paths.SystemdUnits} belong to root";

    private void CheckRoot(string what, string why, string? file)
    {
        if (RequireRoot)
            LivepatchManager.RequireRoot(what, why, file);
    }

    private static string DefaultExecutable()
    {
        var self = Environment.ProcessPath;
        return self is not null && Path.GetFileName(self) == "livegraft" ? self : "/usr/bin/livegraft";
    }
}
