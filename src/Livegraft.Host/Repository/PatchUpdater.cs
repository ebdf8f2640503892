using System.Text;

namespace Livegraft.Host.Repository;

/// <summary>What <c>update</c> is asked to do.</summary>
/// <param name="Repository">Path or URL of the repository.</param>
public sealed record UpdateRequest(string Repository)
{
    /// <summary>Apply this patch (module name) instead of the newest.</summary>
    public string? Name { get; init; }

    /// <summary>Apply this version instead of the newest (pinning, or going back).</summary>
    public int? Version { get; init; }

    /// <summary>Also keep the patches for boot (the default); false only loads them.</summary>
    public bool Install { get; init; } = true;

    /// <summary>How loads and unloads follow their transitions; <see cref="TransitionOptions.Progress"/> gets progress.</summary>
    public TransitionOptions Transition { get; init; } = new();
}

/// <summary>What <c>update</c> or <c>rollback</c> did.</summary>
/// <param name="Action"><c>updated</c>, <c>up-to-date</c>, <c>no-patch</c>, <c>failed</c>, <c>rolled-back</c>, <c>nothing-to-roll-back</c>.</param>
/// <param name="ExitCode">0, or 3 when a change failed (the previous state was put back).</param>
/// <param name="Target">The repository patch selected, if any.</param>
/// <param name="Before">Patches in force before.</param>
/// <param name="After">Patches in force after.</param>
/// <param name="Loaded">Patches loaded.</param>
/// <param name="Unloaded">Patches unloaded (replaced ones included).</param>
/// <param name="Installed">Patches stored for boot.</param>
/// <param name="Uninstalled">Patches removed from the boot store.</param>
/// <param name="Diagnostics">Notes, warnings, and the error when it failed.</param>
public sealed record UpdateResult(string Action, ExitCode ExitCode, IndexedPatch? Target, IReadOnlyList<string> Before, IReadOnlyList<string> After,
    IReadOnlyList<string> Loaded, IReadOnlyList<string> Unloaded, IReadOnlyList<string> Installed, IReadOnlyList<string> Uninstalled,
    IReadOnlyList<Diagnostic> Diagnostics)
{
    /// <summary>True when the kernel or the boot store changed.</summary>
    public bool Changed => Loaded.Count + Unloaded.Count + Installed.Count + Uninstalled.Count > 0;
}

/// <summary>
/// <c>livegraft update</c> and <c>livegraft rollback</c> (docs/fleet.md, "Updating a host"): fetch the
/// signed index, choose the patch for the running release and build id, fetch and verify it into the
/// cache, then bring the patches in force (and the boot store) to exactly the chosen set. The state
/// before the change is recorded first, so a failed load puts it back and <c>rollback</c> can return to it.
/// </summary>
public sealed class PatchUpdater
{
    /// <summary>Largest index accepted.</summary>
    public const long MaxIndexBytes = 16 << 20;

    private readonly HostPaths _paths;
    private readonly LivepatchManager _manager;
    private readonly PatchStore _store;

    /// <summary>An updater over the given host roots.</summary>
    public PatchUpdater(HostPaths? paths = null)
    {
        _paths = paths ?? HostPaths.Default;
        _manager = new LivepatchManager(_paths);
        _store = new PatchStore(_paths);
    }

    /// <summary>Fetches, verifies and applies the repository's patch for the running kernel.
    /// Refusals before any change throw (and are recorded as the last check).</summary>
    public UpdateResult Update(UpdateRequest request)
    {
        LivepatchManager.RequireRoot("update patches", "loading writes /sys/kernel/livepatch and needs CAP_SYS_MODULE", null);
        using var hostLock = HostLock.Acquire(_paths, "update", request.Transition.LockTimeout, request.Transition.Progress);
        var record = UpdateRecord.Read(_paths, out var warning);
        var notes = new List<Diagnostic>();
        if (warning is not null)
            notes.Add(warning);
        PatchIndex? index = null;
        try
        {
            return UpdateCore(request, record, notes, i => index = i);
        }
        catch (LivegraftException e)
        {
            var latest = UpdateRecord.Read(_paths, out _);
            int? version = null;
            try
            {
                version = EffectiveVersion(latest, RunningKernel.Read(_paths).Release);
            }
            catch (LivegraftException)
            {
                // The failure may be that procfs is unreadable; the record then has no version.
            }
            TryWrite(latest with
            {
                LastCheck = new UpdateCheck(DateTimeOffset.UtcNow, "failed", e.ExitCode, request.Repository, index?.Repository, index?.Serial, version,
                    [.. notes, .. e.Diagnostics]),
            });
            throw;
        }
    }

    private UpdateResult UpdateCore(UpdateRequest request, UpdateRecord record, List<Diagnostic> notes, Action<PatchIndex> seen)
    {
        var progress = request.Transition.Progress;
        var trust = TrustStore.Read(_paths);
        if (!trust.Enforcing)
            throw new LivegraftException(ExitCode.InvalidInput, FleetErrors.NoTrustedKeys,
                $"no trusted key in {_paths.Keys}: an update could not tell a genuine patch from another; copy the repository's public key (its key.pem, obtained out of band) there", _paths.Keys);
        var kernel = RunningKernel.Read(_paths);
        if (kernel.BuildId is null)
            throw new LivegraftException(ExitCode.HostFailure, "LG0504", $"cannot read the running kernel's build id from {_paths.KernelNotes}; cannot choose a patch", _paths.KernelNotes);

        using var source = RepositorySource.Open(request.Repository);
        progress?.Invoke($"fetching {source.Describe(PatchIndex.FileName)}");
        var indexBytes = source.Read(PatchIndex.FileName, MaxIndexBytes);
        var sigBytes = source.TryRead(PatchIndex.FileName + DetachedSignature.Suffix, 4096);
        var signer = trust.Verify(indexBytes, sigBytes is null ? null : Encoding.UTF8.GetString(sigBytes), source.Describe(PatchIndex.FileName));
        var index = PatchIndex.Parse(indexBytes, source.Describe(PatchIndex.FileName));
        seen(index);
        progress?.Invoke($"index of {index.Title} (serial {index.Serial}) signed by trusted key {signer.Id}");
        if (record.Serials.TryGetValue(index.Repository, out var lastSerial) && index.Serial < lastSerial)
            throw new LivegraftException(ExitCode.VerificationFailed, FleetErrors.StaleIndex,
                $"the index has serial {index.Serial}, older than serial {lastSerial} this host already accepted from repository {index.Repository}: a replayed or rolled-back index is refused", source.Describe(PatchIndex.FileName));
        var serials = new Dictionary<string, long>(record.Serials, StringComparer.Ordinal) { [index.Repository] = index.Serial };

        var candidates = index.For(kernel.Release, kernel.BuildId);
        if (candidates.Count == 0)
        {
            var none = new Diagnostic(FleetErrors.NoPatchForKernel, Severity.Note,
                $"the repository has no patch for {kernel.Release} (build id {kernel.BuildId})", source.Describe(PatchIndex.FileName));
            var inForce = InForce();
            var done = new UpdateResult("no-patch", ExitCode.Success, null, inForce, inForce, [], [], [], [], [.. notes, none]);
            Record(record with { Serials = serials }, done, request.Repository, index, kernel.Release);
            return done;
        }
        var target = request.Name is not null
            ? candidates.LastOrDefault(p => p.Name == request.Name.Replace('-', '_') && (request.Version is null || p.Version == request.Version))
            : request.Version is { } v ? candidates.FirstOrDefault(p => p.Version == v) : candidates[^1];
        if (target is null)
            throw new LivegraftException(ExitCode.InvalidInput, FleetErrors.NoSuchVersion,
                $"no {(request.Name is null ? "" : $"patch {request.Name} ")}{(request.Version is null ? "" : $"version {request.Version} ")}for {kernel.Release} in the index " +
                $"(versions: {string.Join(", ", candidates.Select(c => $"{c.Version} {c.Name}"))})", source.Describe(PatchIndex.FileName));
        var chain = index.Chain(target);
        // A build that crashed a boot here (docs/kexec.md, boot safety) is not loaded live either.
        var safety = new BootSafety(_paths);
        foreach (var p in chain)
        {
            if (safety.Quarantine(kernel.Release, p.Name) is { } q && q.Sha256 == p.Sha256)
                throw new LivegraftException(ExitCode.InvalidInput, Kexec.KexecErrors.InstallQuarantined,
                    $"{p.Name} (version {p.Version}) is quarantined on this host: {q.Reason}; 'livegraft install --force' on the host lifts it", source.Describe(p.File));
        }

        var before = InForce();
        var stored = _store.List(kernel.Release).Select(p => p.Name).ToList();
        var wanted = chain.Select(p => p.Name).ToList();
        var known = record.Patches.ToList();
        var storeMatches = !request.Install || StoreHolds(stored, wanted, known, kernel.Release);
        if (before.SequenceEqual(wanted) && storeMatches && chain.All(p => Cached(known, p) is not null))
        {
            progress?.Invoke($"up to date: version {target.Version} ({target.Name}) is in force");
            var same = new UpdateResult("up-to-date", ExitCode.Success, target, before, before, [], [], [], [], notes);
            Record(record with { Serials = serials }, same, request.Repository, index, kernel.Release);
            return same;
        }

        // Fetch and verify everything first: nothing reaches the kernel until every file checks out.
        foreach (var p in chain)
        {
            if (Cached(known, p) is not null)
                continue;
            var file = Fetch(source, trust, p, progress);
            known.RemoveAll(k => k.Patch.Name == p.Name && k.Patch.KernelRelease == p.KernelRelease);
            known.Add(new KnownPatch(p, index.Repository, request.Repository, file));
        }
        // The snapshot is on disk before the kernel changes, so even a crash half-way leaves a way back.
        var snapshot = new PatchSnapshot(DateTimeOffset.UtcNow, kernel.Release, before, stored);
        var pending = record with { Serials = serials, Patches = known, Previous = snapshot };
        pending.Write(_paths);

        var desired = chain.Select(p => new Wanted(p.Name, Cached(known, p)!, p.Cumulative)).ToList();
        var change = Converge(desired, Managed(known), request.Transition);
        if (change.Error is not null)
        {
            var restore = RestoreAfterFailure(before, known, kernel.Release, request.Transition);
            var failed = new UpdateResult("failed", ExitCode.HostFailure, target, before, InForce(), change.Loaded, change.Unloaded, [], [],
                [.. notes, .. change.Error, .. restore]);
            Record(pending with { Previous = record.Previous }, failed, request.Repository, index, kernel.Release);
            return failed;
        }
        var (installed, uninstalled) = request.Install ? SyncStore(wanted, known, kernel.Release) : ([], []);
        var result = new UpdateResult("updated", ExitCode.Success, target, before, InForce(), change.Loaded, change.Unloaded, installed, uninstalled, notes);
        if (!result.Changed)
            result = result with { Action = "up-to-date" }; // only the cache was refilled
        progress?.Invoke($"version {target.Version} ({target.Name}) in force" + (request.Install ? " and installed for boot" : ""));
        Record(pending, result, request.Repository, index, kernel.Release);
        return result;
    }

    /// <summary>Puts back the patches in force and installed before the last update (or removal).</summary>
    public UpdateResult Rollback(TransitionOptions options)
    {
        LivepatchManager.RequireRoot("roll back patches", "unloading and loading write /sys/kernel/livepatch and need CAP_SYS_MODULE", null);
        using var hostLock = HostLock.Acquire(_paths, "rollback", options.LockTimeout, options.Progress);
        var record = UpdateRecord.Read(_paths, out var warning);
        var notes = warning is null ? new List<Diagnostic>() : [warning];
        var release = RunningKernel.Read(_paths).Release;
        var before = InForce();
        var previous = record.Previous;
        if (previous is null || previous.Release != release)
        {
            notes.Add(new Diagnostic(FleetErrors.NothingToRollBack, Severity.Note,
                previous is null ? "nothing to roll back: no update is recorded since the last rollback" : $"the last update was for kernel {previous.Release}, not the running {release}", _paths.UpdateRecord));
            return new UpdateResult("nothing-to-roll-back", ExitCode.Success, null, before, before, [], [], [], [], notes);
        }
        var desired = new List<Wanted>();
        foreach (var name in previous.InForce)
        {
            var k = record.Find(name, release);
            if (k is null || !File.Exists(k.CachedFile))
                throw new LivegraftException(ExitCode.HostFailure, FleetErrors.MissingPrevious,
                    $"cannot restore {name}: it was not fetched by 'livegraft update', so no verified copy is kept under {_paths.Cache}", _paths.UpdateRecord);
            desired.Add(new Wanted(name, k.CachedFile, k.Patch.Cumulative));
        }
        options.Progress?.Invoke(previous.InForce.Count == 0 ? "rolling back to no patch in force" : $"rolling back to {string.Join(", ", previous.InForce)}");
        var change = Converge(desired, Managed(record.Patches), options);
        if (change.Error is not null)
        {
            var failed = new UpdateResult("failed", ExitCode.HostFailure, null, before, InForce(), change.Loaded, change.Unloaded, [], [], [.. notes, .. change.Error]);
            TryWrite(record with { LastRollback = Check(failed, null, null, EffectiveVersion(record, release)) });
            return failed;
        }
        var (installed, uninstalled) = SyncStore(previous.Installed, record.Patches, release);
        var result = new UpdateResult("rolled-back", ExitCode.Success, null, before, InForce(), change.Loaded, change.Unloaded, installed, uninstalled, notes);
        var after = record with { Previous = null };
        after = after with { LastRollback = Check(result, null, null, EffectiveVersion(after, release)) };
        after = Pruned(after, release);
        after.Write(_paths);
        return result;
    }

    /// <summary>The repository version in force: that of the newest known patch in force, or null.</summary>
    public int? EffectiveVersion(UpdateRecord record, string release) =>
        InForce().Select(n => record.Find(n, release)).LastOrDefault(k => k is not null)?.Patch.Version;

    private sealed record Wanted(string Name, string File, bool Cumulative);

    private sealed record Change(List<string> Loaded, List<string> Unloaded, IReadOnlyList<Diagnostic>? Error);

    /// <summary>Patches in force (registered and enabled), in stack order.</summary>
    private List<string> InForce() => _manager.Sysfs.Patches().Where(p => p.Registered && p.Enabled).Select(p => p.Name).ToList();

    /// <summary>
    /// Brings the patches in force to exactly <paramref name="desired"/>. A cumulative first patch is
    /// loaded over whatever is in force (the kernel's atomic replace drops the rest, cumulative-patches.rst);
    /// a stacking chain keeps the common prefix, unloads the rest newest first, and loads what is missing.
    /// Stops at the first failure; Load itself reverts a transition that does not complete.
    /// </summary>
    private Change Converge(IReadOnlyList<Wanted> desired, HashSet<string> managedNames, TransitionOptions options)
    {
        var loaded = new List<string>();
        var unloaded = new List<string>();
        var current = InForce();
        var names = desired.Select(d => d.Name).ToList();
        if (current.SequenceEqual(names))
            return new Change(loaded, unloaded, null);
        try
        {
            int keep;
            if (desired.Count > 0 && desired[0].Cumulative)
                keep = current.Count > 0 && current.Count <= names.Count && names.Take(current.Count).SequenceEqual(current) ? current.Count : 0;
            else
            {
                keep = 0;
                while (keep < current.Count && keep < names.Count && current[keep] == names[keep])
                    keep++;
                foreach (var extra in current.Skip(keep).Reverse())
                {
                    var u = _manager.Unload(extra, options);
                    if (!u.Unloaded)
                        return new Change(loaded, unloaded, u.Diagnostics);
                    unloaded.Add(extra);
                }
            }
            // The index declares a cumulative patch cumulative over the patches it manages: loading it
            // may drop those (and only those: a patch loaded by hand is still protected, LG0542).
            var managed = current.Where(n => !names.Contains(n) && managedNames.Contains(n)).ToHashSet(StringComparer.Ordinal);
            foreach (var d in desired.Skip(keep))
            {
                var r = _manager.Load(d.File, d.Cumulative ? options with { MayDrop = managed } : options);
                if (r.ExitCode != ExitCode.Success)
                    return new Change(loaded, unloaded, r.Diagnostics.Where(x => x.Severity == Severity.Error).ToList());
                loaded.Add(d.Name);
                unloaded.AddRange(r.Replaced.Where(n => !unloaded.Contains(n)));
            }
            return new Change(loaded, unloaded, null);
        }
        catch (LivegraftException e)
        {
            return new Change(loaded, unloaded, e.Diagnostics);
        }
    }

    /// <summary>The names of the patches a repository update manages (fetched and verified here).</summary>
    private static HashSet<string> Managed(IEnumerable<KnownPatch> known) => known.Select(k => k.Patch.Name).ToHashSet(StringComparer.Ordinal);

    /// <summary>After a failed change: back to the patches in force before, as far as verified copies allow.</summary>
    private List<Diagnostic> RestoreAfterFailure(List<string> before, IReadOnlyList<KnownPatch> known, string release, TransitionOptions options)
    {
        var diagnostics = new List<Diagnostic>();
        if (InForce().SequenceEqual(before))
        {
            diagnostics.Add(new Diagnostic(FleetErrors.UpdateFailed, Severity.Error,
                $"the update did not complete; the patches in force are as before ({(before.Count == 0 ? "none" : string.Join(", ", before))})"));
            return diagnostics;
        }
        var wanted = new List<Wanted>();
        foreach (var name in before)
        {
            var k = known.LastOrDefault(p => p.Patch.Name == name && p.Patch.KernelRelease == release);
            if (k is null)
            {
                diagnostics.Add(new Diagnostic(FleetErrors.UpdateFailed, Severity.Error,
                    $"the update failed half-way and {name}, which was in force before, has no verified copy here to restore; in force now: {string.Join(", ", InForce())}"));
                return diagnostics;
            }
            wanted.Add(new Wanted(name, k.CachedFile, k.Patch.Cumulative));
        }
        var back = Converge(wanted, Managed(known), options);
        diagnostics.Add(new Diagnostic(FleetErrors.UpdateFailed, Severity.Error, back.Error is null
            ? $"the update failed half-way; the patches in force before were restored ({(before.Count == 0 ? "none" : string.Join(", ", before))})"
            : $"the update failed half-way and restoring the previous patches failed too; in force now: {string.Join(", ", InForce())}"));
        if (back.Error is not null)
            diagnostics.AddRange(back.Error);
        return diagnostics;
    }

    /// <summary>True when the repository patches stored for <paramref name="release"/> are exactly <paramref name="wanted"/> (in order).</summary>
    private static bool StoreHolds(IReadOnlyList<string> stored, IReadOnlyList<string> wanted, IReadOnlyList<KnownPatch> known, string release)
    {
        var managed = stored.Where(n => wanted.Contains(n) || known.Any(k => k.Patch.Name == n && k.Patch.KernelRelease == release)).ToList();
        return managed.SequenceEqual(wanted);
    }

    /// <summary>Stores <paramref name="wanted"/> for boot and removes other repository patches of the release
    /// (patches installed by hand are left alone).</summary>
    private (List<string> Installed, List<string> Uninstalled) SyncStore(IReadOnlyList<string> wanted, IReadOnlyList<KnownPatch> known, string release)
    {
        var installed = new List<string>();
        var uninstalled = new List<string>();
        var stored = _store.List(release);
        foreach (var name in wanted)
        {
            var k = known.LastOrDefault(p => p.Patch.Name == name && p.Patch.KernelRelease == release);
            if (k is null || stored.Any(s => s.Name == name && s.Sha256 == k.Patch.Sha256))
                continue;
            _store.Install(k.CachedFile);
            installed.Add(name);
        }
        foreach (var s in _store.List(release))
        {
            if (!wanted.Contains(s.Name) && known.Any(k => k.Patch.Name == s.Name && k.Patch.KernelRelease == release))
            {
                _store.Uninstall(s.Name, release);
                uninstalled.Add(s.Name);
            }
        }
        return (installed, uninstalled);
    }

    /// <summary>The verified cached copy of <paramref name="p"/>, if there is one whose bytes still match.</summary>
    private static string? Cached(IReadOnlyList<KnownPatch> known, IndexedPatch p)
    {
        var k = known.LastOrDefault(x => x.Patch.Sha256 == p.Sha256 && x.Patch.Name == p.Name);
        if (k is null || !File.Exists(k.CachedFile) || !File.Exists(k.CachedFile + DetachedSignature.Suffix))
            return null;
        return Sha256Hash.HashHex(File.ReadAllBytes(k.CachedFile)) == p.Sha256 ? k.CachedFile : null;
    }

    /// <summary>Reads one patch and its signature, checks size, SHA-256 and signature, then writes both
    /// into the cache (signature first, each atomically).</summary>
    private string Fetch(RepositorySource source, TrustStore trust, IndexedPatch p, Action<string>? progress)
    {
        progress?.Invoke($"fetching {source.Describe(p.File)} (version {p.Version}, {p.Size} bytes)");
        var bytes = source.Read(p.File, p.Size);
        var sha = Sha256Hash.HashHex(bytes);
        if (bytes.LongLength != p.Size || sha != p.Sha256)
            throw new LivegraftException(ExitCode.VerificationFailed, FleetErrors.HashMismatch,
                $"tampered or corrupt: the index gives {p.Size} bytes with SHA-256 {p.Sha256}, the file has {bytes.LongLength} bytes with SHA-256 {sha}; nothing was loaded",
                source.Describe(p.File));
        var sig = source.TryRead(p.File + DetachedSignature.Suffix, 4096);
        var sigText = sig is null ? null : Encoding.UTF8.GetString(sig);
        trust.Verify(bytes, sigText, source.Describe(p.File));
        var dir = Path.Combine(_paths.Cache, p.KernelRelease);
        try
        {
            Directory.CreateDirectory(dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LivegraftException(ExitCode.HostFailure, FleetErrors.StateWriteFailed, "cannot create the cache: " + e.Message, dir);
        }
        var file = Path.Combine(dir, $"{p.Name}-{p.Sha256[..16]}.ko");
        HostFiles.WriteAtomic(file + DetachedSignature.Suffix, Encoding.UTF8.GetBytes(sigText!));
        HostFiles.WriteAtomic(file, bytes);
        return file;
    }

    private static UpdateCheck Check(UpdateResult r, string? source, PatchIndex? index, int? version) =>
        new(DateTimeOffset.UtcNow, r.Action, r.ExitCode, source, index?.Repository, index?.Serial, version, r.Diagnostics);

    private void Record(UpdateRecord record, UpdateResult result, string source, PatchIndex index, string release)
    {
        var next = record with { LastCheck = Check(result, source, index, null) };
        next = next with { LastCheck = next.LastCheck! with { Version = EffectiveVersion(next, release) } };
        Pruned(next, release).Write(_paths);
    }

    /// <summary>Drops known patches (and their cached files) that nothing refers to any more: not in force,
    /// not installed, not needed by the rollback snapshot.</summary>
    private UpdateRecord Pruned(UpdateRecord record, string release)
    {
        var needed = new HashSet<string>(InForce(), StringComparer.Ordinal);
        needed.UnionWith(_store.List(release).Select(p => p.Name));
        if (record.Previous is { } prev)
        {
            needed.UnionWith(prev.InForce);
            needed.UnionWith(prev.Installed);
        }
        var keep = record.Patches.Where(k => k.Patch.KernelRelease != release || needed.Contains(k.Patch.Name)).ToList();
        foreach (var drop in record.Patches.Except(keep))
        {
            if (keep.Any(k => k.CachedFile == drop.CachedFile))
                continue;
            try
            {
                File.Delete(drop.CachedFile);
                File.Delete(drop.CachedFile + DetachedSignature.Suffix);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A stale cache file is harmless: it is verified again before any use.
            }
        }
        return record with { Patches = keep };
    }

    private void TryWrite(UpdateRecord record)
    {
        try
        {
            record.Write(_paths);
        }
        catch (LivegraftException)
        {
            // Recording the failure is best effort; the failure itself is what gets reported.
        }
    }
}
