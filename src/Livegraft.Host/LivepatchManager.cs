using System.Diagnostics;
using Livegraft.Host.Native;
using Livegraft.Symbols;
using Livegraft.Verify;

namespace Livegraft.Host;

/// <summary>
/// Loads, follows and removes live patches on the running kernel: <c>finit_module(2)</c> and
/// <c>delete_module(2)</c>, and the sysfs interface of livepatch.rst ("Sysfs", "Consistency model").
/// Nothing is shelled out, so it runs on a system with only libc.
/// </summary>
public sealed class LivepatchManager
{
    private readonly HostPaths _paths;
    private readonly LivepatchSysfs _sysfs;
    private readonly TaskScanner _tasks;

    /// <summary>Manager for the real host, or for the given roots.</summary>
    public LivepatchManager(HostPaths? paths = null)
    {
        _paths = paths ?? HostPaths.Default;
        _sysfs = new LivepatchSysfs(_paths);
        _tasks = new TaskScanner(_paths);
    }

    /// <summary>The sysfs reader this manager uses.</summary>
    public LivepatchSysfs Sysfs => _sysfs;

    /// <summary>True when the process may load modules (effective uid 0; CAP_SYS_MODULE alone is not looked for).</summary>
    public static bool IsRoot => Libc.GetEffectiveUserId() == 0;

    /// <summary>
    /// Checks a patch module against the running kernel without loading it: ELF, kernel module,
    /// <c>livepatch=Y</c>, vermagic release, recorded build id. Returns the parsed module and warnings.
    /// </summary>
    public (KernelModuleFile Module, IReadOnlyList<Diagnostic> Warnings) Verify(string path)
    {
        var ko = KernelModuleFile.Read(path);
        if (!ko.HasThisModule)
            throw new LivegraftException(ExitCode.InvalidInput, "LG0502", "not a kernel module (no .gnu.linkonce.this_module section)", path);
        if (!ko.IsLivepatch)
            throw new LivegraftException(ExitCode.InvalidInput, "LG0502", "not a livepatch module (.modinfo has no livepatch=Y)", path);
        var kernel = RunningKernel.Read(_paths);
        var warnings = new List<Diagnostic>();
        if (ko.KernelRelease is null)
            throw new LivegraftException(ExitCode.VerificationFailed, "LG0503", "module has no vermagic; cannot tell which kernel it is for", path, ".modinfo");
        if (ko.KernelRelease != kernel.Release)
            throw new LivegraftException(ExitCode.VerificationFailed, "LG0503",
                $"module is built for kernel {ko.KernelRelease} but the running kernel is {kernel.Release}", path, ".modinfo vermagic");
        var recordedRelease = ko.Get(LivegraftInfo.KernelRelease);
        if (recordedRelease is not null && recordedRelease != kernel.Release)
            throw new LivegraftException(ExitCode.VerificationFailed, "LG0503",
                $"patch records kernel release {recordedRelease} but the running kernel is {kernel.Release}", path, ".modinfo livegraft.kernel_release");
        var recordedBuildId = ko.RecordedKernelBuildId;
        if (recordedBuildId is not null)
        {
            if (kernel.BuildId is null)
                warnings.Add(new Diagnostic("LG0504", Severity.Warning, $"cannot read the running kernel's build id from {_paths.KernelNotes}; not checked", path));
            else if (!string.Equals(recordedBuildId, kernel.BuildId, StringComparison.OrdinalIgnoreCase))
                throw new LivegraftException(ExitCode.VerificationFailed, "LG0504",
                    $"patch is built for kernel build id {recordedBuildId} but the running kernel's is {kernel.BuildId}", path, ".modinfo livegraft.kernel_build_id");
        }
        return (ko, warnings);
    }

    /// <summary>
    /// Verifies and loads a patch module, then follows its transition. A stalled transition is
    /// reported through <see cref="TransitionOptions.Progress"/>, signalled at half the timeout when the
    /// kernel has the <c>signal</c> attribute, and reverted at the timeout (or forced, when asked).
    /// Refusals before loading throw <see cref="LivegraftException"/>; a reverted load returns a result
    /// whose <see cref="LoadResult.ExitCode"/> is non-zero.
    /// </summary>
    public LoadResult Load(string path, TransitionOptions options)
    {
        // First of all: with trusted keys configured, an unsigned or tampered file goes no further (docs/fleet.md).
        var signedBy = Repository.TrustStore.Read(_paths).RequireSigned(path);
        var (ko, warnings) = Verify(path);
        var diagnostics = new List<Diagnostic>(warnings);
        var progress = options.Progress;
        if (signedBy is not null && signedBy.Sha256 != ko.Sha256)
            throw new LivegraftException(ExitCode.VerificationFailed, Repository.FleetErrors.BadSignature, "the file changed after its signature was checked", path);
        if (signedBy is not null)
            progress?.Invoke($"{Path.GetFileName(path)}: signed by trusted key {signedBy.Key.Id}");
        foreach (var w in warnings)
            progress?.Invoke(w.ToString());
        if (!_sysfs.Supported)
            throw new LivegraftException(ExitCode.HostFailure, "LG0505", $"the kernel has no live patching support ({_paths.LivepatchRoot} is missing)");
        // Verify only reads, so any user can ask whether a module would load here; this is the first
        // check that guards a change (docs/host.md, "Non-root callers").
        RequireRoot("load a patch", "finit_module(2) needs CAP_SYS_MODULE", path);
        using var hostLock = HostLock.Acquire(_paths, "load", options.LockTimeout, progress);
        var name = ko.Name;
        if (_sysfs.Find(name) is { Registered: false })
            throw new LivegraftException(ExitCode.InvalidInput, "LG0507",
                $"{name} is still loaded but its patch is disabled (an interrupted unload, or a replaced patch); 'livegraft unload {name}' removes it", path);
        if (_sysfs.Find(name) is not null || Directory.Exists(_paths.ModuleDirectory(name)))
            throw new LivegraftException(ExitCode.InvalidInput, "LG0507", $"a module named {name} is already loaded", path);
        WaitForOtherTransitions(name, options);
        if (ko.Replace == true)
            diagnostics.AddRange(CheckReplace(ko, path, options));
        // Run-pre verification of the running kernel's code (docs/verify.md), always: a mismatch
        // refuses the load with exit 4 before the kernel sees the module; what cannot be checked
        // here (lockdown, a module not loaded yet) is a note, and the module checks it itself.
        var found = RunningKernelCode.CheckModule(path, _paths.Proc);
        foreach (var d in found.Where(d => d.Severity != Severity.Error))
            progress?.Invoke(d.ToString());
        var errors = found.Where(d => d.Severity == Severity.Error).ToArray();
        if (errors.Length > 0)
            throw new LivegraftException(ExitCode.VerificationFailed, errors);
        diagnostics.AddRange(found.Where(d => d.Severity == Severity.Warning));
        var before = _sysfs.Patches().Where(p => p.Registered).Select(p => p.Name).ToHashSet(StringComparer.Ordinal);

        progress?.Invoke($"loading {name} ({Path.GetFileName(path)})");
        var clock = Stopwatch.StartNew();
        FinitModule(path, name);
        TestHooks.PauseAt(_paths, "load:loaded");

        // klp_enable_patch() runs in the module's init, so the sysfs directory exists by now.
        var follow = Follow(name, targetState: 1, options, allowSignal: true);
        if (follow.Completed && _sysfs.Find(name) is not { Registered: true, Enabled: true })
        {
            // The patch went away by itself (its init failed after registering, or someone disabled it).
            diagnostics.Add(new Diagnostic("LG0518", Severity.Error, $"{name} is not enabled after its transition; see dmesg", path));
            return new LoadResult(name, path, ko.Sha256, LoadOutcome.Stuck, clock.Elapsed, follow.Signalled, [], [], diagnostics);
        }
        if (follow.Completed)
        {
            var replaced = RemoveReplaced(before, name, diagnostics);
            progress?.Invoke($"{name}: patched in {clock.Elapsed.TotalSeconds:0.0}s" + (replaced.Count > 0 ? $", replaced {string.Join(", ", replaced)}" : ""));
            return new LoadResult(name, path, ko.Sha256, LoadOutcome.Patched, clock.Elapsed, follow.Signalled, [], replaced, diagnostics);
        }

        if (options.Force)
        {
            var warning = new Diagnostic("LG0513", Severity.Warning,
                $"FORCING the transition of {name}: {follow.Blockers.Count} task(s) never switched and may run old and new code mixed; " +
                "the module can no longer be removed (livepatch.rst, 'force'). Reboot when possible.", path);
            diagnostics.Add(warning);
            progress?.Invoke(warning.ToString());
            WriteAttribute(name, "force", "1");
            var forced = Follow(name, targetState: 1, options with { Timeout = TimeSpan.FromSeconds(10) }, allowSignal: false);
            var replaced = forced.Completed ? RemoveReplaced(before, name, diagnostics) : [];
            return new LoadResult(name, path, ko.Sha256, forced.Completed ? LoadOutcome.Forced : LoadOutcome.Stuck, clock.Elapsed,
                follow.Signalled, follow.Blockers, replaced, diagnostics);
        }

        progress?.Invoke($"{name}: transition did not complete in {options.Timeout.TotalSeconds:0}s; reverting");
        WriteAttribute(name, "enabled", "0");
        var back = Follow(name, targetState: 0, options, allowSignal: false);
        var blockerText = string.Join("; ", follow.Blockers.Select(b => b.ToString()));
        if (!back.Completed)
        {
            diagnostics.Add(new Diagnostic("LG0511", Severity.Error,
                $"transition of {name} stalled and reverting it stalled too; the patch is still in transition. Blockers: {blockerText}", path));
            return new LoadResult(name, path, ko.Sha256, LoadOutcome.Stuck, clock.Elapsed, follow.Signalled, follow.Blockers, [], diagnostics);
        }
        var removeError = RemoveModule(name);
        if (removeError is not null)
            diagnostics.Add(removeError);
        diagnostics.Add(new Diagnostic("LG0510", Severity.Error,
            $"transition of {name} did not complete in {options.Timeout.TotalSeconds:0}s and was reverted; tasks that did not switch: {blockerText}", path));
        return new LoadResult(name, path, ko.Sha256, LoadOutcome.Reverted, clock.Elapsed, follow.Signalled, follow.Blockers, [], diagnostics);
    }

    /// <summary>
    /// Replace safety: an atomic replace patch disables every patch in force when it completes
    /// (cumulative-patches.rst). Every function patched now that it does not carry would go back to
    /// its unpatched code, so unless the new patch is cumulative over the patch that function comes
    /// from (<see cref="KernelModuleFile.Supersedes"/>) the load is refused (LG0542, exit 2) naming
    /// each one; <see cref="TransitionOptions.Drop"/> lets it go ahead with a warning (LG0543).
    /// </summary>
    private List<Diagnostic> CheckReplace(KernelModuleFile ko, string path, TransitionOptions options)
    {
        // sysfs names a function "name,N" with N = old_sympos, or 1 for 0 (klp_init_func): both mean
        // the first (for a unique name, the only) symbol of that name.
        static int Sympos(int n) => n == 0 ? 1 : n;
        var carried = (ko.Functions ?? new HashSet<(string, string, int)>()).Select(f => (f.Object, f.Name, Sympos(f.Sympos))).ToHashSet();
        var supersedes = ko.Supersedes.ToHashSet(StringComparer.Ordinal);
        var dropped = new List<Diagnostic>();
        foreach (var p in _sysfs.Patches().Where(p => p.Registered && p.Enabled && p.Name != ko.Name && !supersedes.Contains(p.Name) && !options.MayDrop.Contains(p.Name)))
        {
            var lost = p.Objects.SelectMany(o => o.Functions.Where(f => !carried.Contains((o.Name, f.Name, Sympos(f.Sympos))))
                .Select(f => $"{o.Name}:{(Sympos(f.Sympos) == 1 ? f.Name : $"{f.Name},{f.Sympos}")}")).ToList();
            if (lost.Count == 0)
                continue;
            dropped.Add(new Diagnostic(HostErrors.ReplaceWouldDrop, options.Drop ? Severity.Warning : Severity.Error,
                $"{ko.Name} replaces every patch in force, and would undo {p.Name}'s fix of {string.Join(", ", lost)}" +
                (ko.Functions is null ? " (it does not record which functions it carries)" : "") +
                (options.Drop ? "; dropped as asked (--drop)" : $"; build it on top of {p.Name} (--on-top-of) to carry that fix, or load with --drop to undo it"),
                path));
        }
        if (dropped.Count > 0 && !options.Drop)
            throw new LivegraftException(ExitCode.InvalidInput, [.. dropped]);
        foreach (var d in dropped)
            options.Progress?.Invoke(d.ToString());
        return [.. dropped.Select(d => d with { Id = HostErrors.DroppedFixes })];
    }

    /// <summary>Waits (up to the lock timeout) for a transition another patch is in, such as one started
    /// outside Livegraft; only one transition runs at a time.</summary>
    private void WaitForOtherTransitions(string name, TransitionOptions options)
    {
        var clock = Stopwatch.StartNew();
        var announced = false;
        while (_sysfs.Patches().FirstOrDefault(p => p.Transition && p.Name != name) is { } busy)
        {
            if (clock.Elapsed >= options.LockTimeout)
                throw new LivegraftException(ExitCode.HostFailure, HostErrors.HostBusy,
                    $"patch {busy.Name} is still in transition after {options.LockTimeout.TotalSeconds:0}s; only one transition runs at a time");
            if (!announced)
                options.Progress?.Invoke($"waiting for the transition of {busy.Name} to finish");
            announced = true;
            Thread.Sleep(options.PollInterval);
        }
        if (announced)
            options.Progress?.Invoke(new Diagnostic(HostErrors.WaitedForLock, Severity.Note, $"waited {clock.Elapsed.TotalSeconds:0.0}s for another transition").ToString());
    }

    /// <summary>Disables a patch, follows the unpatching transition and removes its module. A stalled
    /// unpatching transition is reversed at the timeout (the patch stays in force) and reported.</summary>
    public UnloadResult Unload(string name, TransitionOptions options)
    {
        name = KernelModuleFile.NameFromFileName(name); // foo-bar and foo_bar name the same module
        RequireRoot("unload a patch", "disabling it writes /sys/kernel/livepatch and delete_module(2) needs CAP_SYS_MODULE", null);
        var progress = options.Progress;
        var clock = Stopwatch.StartNew();
        using var hostLock = HostLock.Acquire(_paths, "unload", options.LockTimeout, progress);
        var patch = _sysfs.Find(name)
            ?? throw new LivegraftException(ExitCode.InvalidInput, "LG0512", $"no livepatch module named {name} is loaded");
        var diagnostics = new List<Diagnostic>();
        if (patch.Registered)
        {
            WaitForOtherTransitions(name, options);
            if (patch.Enabled)
            {
                progress?.Invoke($"disabling {name}");
                WriteAttribute(name, "enabled", "0");
            }
            var follow = Follow(name, targetState: 0, options, allowSignal: true);
            if (!follow.Completed)
            {
                // Put the patch back in force rather than leave the kernel half-way (enabled_store allows reversing).
                progress?.Invoke($"{name}: unpatching did not complete in {options.Timeout.TotalSeconds:0}s; re-enabling");
                WriteAttribute(name, "enabled", "1");
                var back = Follow(name, targetState: 1, options, allowSignal: false);
                var blockerText = string.Join("; ", follow.Blockers.Select(b => b.ToString()));
                diagnostics.Add(new Diagnostic(back.Completed ? "LG0514" : "LG0511", Severity.Error, back.Completed
                    ? $"unpatching {name} did not complete in {options.Timeout.TotalSeconds:0}s; the patch was re-enabled. Tasks that did not switch: {blockerText}"
                    : $"unpatching {name} stalled and re-enabling it stalled too; the patch is still in transition. Blockers: {blockerText}"));
                return new UnloadResult(name, false, clock.Elapsed, follow.Blockers, diagnostics);
            }
        }
        var error = RemoveModule(name);
        if (error is not null)
        {
            diagnostics.Add(error);
            return new UnloadResult(name, false, clock.Elapsed, [], diagnostics);
        }
        progress?.Invoke($"{name}: unloaded in {clock.Elapsed.TotalSeconds:0.0}s");
        return new UnloadResult(name, true, clock.Elapsed, [], diagnostics);
    }

    /// <summary>Unloads every livepatch module, newest first (reverse stack order); stops at the first failure.</summary>
    public IReadOnlyList<UnloadResult> UnloadAll(TransitionOptions options)
    {
        RequireRoot("unload patches", "disabling them writes /sys/kernel/livepatch and delete_module(2) needs CAP_SYS_MODULE", null);
        using var hostLock = HostLock.Acquire(_paths, "unload --all", options.LockTimeout, options.Progress);
        var results = new List<UnloadResult>();
        foreach (var patch in _sysfs.Patches().Reverse())
        {
            var result = Unload(patch.Name, options);
            results.Add(result);
            if (!result.Unloaded)
                break;
        }
        return results;
    }

    /// <summary>What <c>list</c> shows: loaded patches in stack order, installed ones, and the running
    /// release (null when it cannot be read).</summary>
    public HostListing List()
    {
        string? release = null;
        try
        {
            release = RunningKernel.Read(_paths).Release;
        }
        catch (LivegraftException)
        {
            // Not a Linux host with procfs: the listing still shows what is installed.
        }
        var store = new PatchStore(_paths);
        var installed = store.List();
        return new HostListing(_sysfs.Patches(), installed, release, store.Leftovers())
        {
            AtBoot = [.. installed.Select(p => p.Release).Distinct(StringComparer.Ordinal).SelectMany(store.BootPlan)],
        };
    }

    /// <summary>The host's live patching state. When a transition is under way, waits up to
    /// <paramref name="settle"/> for it to end before calling it in-transition or stalled.</summary>
    public HostStatus Status(TimeSpan? settle = null)
    {
        var kernel = RunningKernel.Read(_paths);
        var deadline = Stopwatch.StartNew();
        var wait = settle ?? TimeSpan.FromSeconds(1);
        IReadOnlyList<LoadedPatch> patches;
        while (true)
        {
            patches = _sysfs.Patches();
            if (!patches.Any(p => p.Transition) || deadline.Elapsed >= wait)
                break;
            Thread.Sleep(100);
        }
        var inForce = patches.Where(p => p.Registered && p.Enabled).Select(p => p.Name).ToList();
        var effective = kernel.Release + string.Concat(inForce.Select(n => "+" + n));
        var transition = patches.FirstOrDefault(p => p.Transition);
        IReadOnlyList<BlockingTask> blockers = [];
        var verdict = inForce.Count == 0 ? PatchVerdict.None : PatchVerdict.Patched;
        if (transition is not null)
        {
            blockers = _tasks.Blockers(transition.Enabled ? 1 : 0, transition.FunctionNames, transition.Name);
            verdict = blockers.Any(b => b.Function is not null) ? PatchVerdict.Stalled : PatchVerdict.InTransition;
        }
        IReadOnlyList<Diagnostic> notes = [];
        if (transition is not null && !IsRoot)
        {
            // proc_pid_patch_state is mode 0400 and proc_pid_stack also needs CAP_SYS_ADMIN (fs/proc/base.c),
            // so only root sees every task; a stall may then show as in-transition.
            notes = [new Diagnostic("LG0506", Severity.Note,
                "not root: the patch state and kernel stack of other users' tasks are unreadable, so the tasks not yet switched " +
                "may be missing and a stalled transition shows as in-transition; run status as root to see them")];
        }
        var updates = Repository.UpdateRecord.Read(_paths, out var recordWarning);
        if (recordWarning is not null)
            notes = [.. notes, recordWarning];
        return new HostStatus(kernel, effective, patches, transition?.Name, blockers, verdict, _sysfs.Supported)
        {
            Diagnostics = notes,
            BootId = LivepatchSysfs.ReadText(_paths.BootId),
            BootSafety = new BootSafety(_paths).Report(),
            Kexec = new Kexec.KexecReboot(_paths).State(),
            Updates = updates,
        };
    }

    private readonly record struct FollowResult(bool Completed, bool Signalled, IReadOnlyList<BlockingTask> Blockers);

    /// <summary>Waits until <c>transition</c> reads 0 (or the patch's directory is gone, which is how an
    /// unpatched patch ends: klp_free_patch_async). Reports blockers every report interval.</summary>
    private FollowResult Follow(string name, int targetState, TransitionOptions options, bool allowSignal)
    {
        var dir = _paths.PatchDirectory(name);
        var clock = Stopwatch.StartNew();
        var lastReport = TimeSpan.Zero;
        var signalled = false;
        IReadOnlyList<BlockingTask> blockers = [];
        List<string> functions = [];
        while (true)
        {
            var transition = LivepatchSysfs.ReadFlag(Path.Combine(dir, "transition"));
            if (transition != true)
            {
                if (targetState == 0)
                    WaitGone(dir, TimeSpan.FromSeconds(10));
                return new FollowResult(true, signalled, []);
            }
            if (functions.Count == 0)
                functions = _sysfs.Find(name)?.FunctionNames.ToList() ?? [];
            var elapsed = clock.Elapsed;
            if (elapsed - lastReport >= options.ReportInterval || elapsed >= options.Timeout)
            {
                lastReport = elapsed;
                blockers = _tasks.Blockers(targetState, functions, name);
                if (elapsed >= options.ReportInterval)
                {
                    options.Progress?.Invoke($"{name}: {(targetState == 1 ? "patching" : "unpatching")} for {elapsed.TotalSeconds:0}s, " +
                        $"{blockers.Count} task(s) not switched" + (blockers.Count > 0 ? ": " + string.Join("; ", blockers.Take(8)) : ""));
                }
            }
            if (allowSignal && !signalled && elapsed >= options.Timeout / 2)
            {
                // 5.0 had a 'signal' attribute; newer kernels signal by themselves every 15 s (livepatch.rst).
                signalled = true;
                var signal = Path.Combine(dir, "signal");
                if (File.Exists(signal))
                {
                    options.Progress?.Invoke($"{name}: signalling tasks that have not switched");
                    TryWrite(signal, "1");
                }
            }
            if (elapsed >= options.Timeout)
                return new FollowResult(false, signalled, blockers);
            Thread.Sleep(options.PollInterval);
        }
    }

    private static void WaitGone(string dir, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (Directory.Exists(dir) && clock.Elapsed < timeout)
            Thread.Sleep(50);
    }

    /// <summary>After an atomic-replace patch completes, the kernel frees the patches it replaced but
    /// leaves their modules loaded (cumulative-patches.rst); remove them.</summary>
    private List<string> RemoveReplaced(HashSet<string> before, string name, List<Diagnostic> diagnostics)
    {
        var replaced = new List<string>();
        foreach (var old in before)
        {
            var dir = _paths.PatchDirectory(old);
            WaitGone(dir, TimeSpan.FromMilliseconds(Directory.Exists(dir) && LivepatchSysfs.ReadFlag(Path.Combine(dir, "enabled")) == false ? 2000 : 0));
            if (Directory.Exists(dir))
                continue;
            var error = RemoveModule(old);
            if (error is null)
                replaced.Add(old);
            else
                diagnostics.Add(error with { Severity = Severity.Warning, Message = $"{old} was replaced by {name} but its module stays loaded: {error.Message}" });
        }
        return replaced;
    }

    private static void FinitModule(string path, string name)
    {
        int errno;
        try
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
            errno = Libc.FinitModule((int)handle.DangerousGetHandle(), "", 0);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LivegraftException(ExitCode.InvalidInput, "LG0500", "cannot open module file: " + e.Message, path);
        }
        if (errno == 0)
            return;
        var why = errno switch
        {
            Libc.EEXIST => $"a module named {name} is already loaded",
            Libc.EPERM => "not permitted (module loading disabled, kernel lockdown, or missing CAP_SYS_MODULE)",
            Libc.ENOEXEC => "the kernel rejected the module (vermagic, symbol versions or format; see dmesg)",
            Libc.ENOKEY or Libc.EKEYREJECTED => "the module's signature was rejected (module signature enforcement)",
            Libc.EBUSY => "another live patch is in transition",
            Libc.EINVAL => "the live patch was refused (e.g. a patched function or object not found, or stacking rules; see dmesg)",
            _ => "load failed",
        };
        throw new LivegraftException(errno == Libc.EEXIST ? ExitCode.InvalidInput : ExitCode.HostFailure, "LG0509",
            $"finit_module failed: {why}: {Libc.Describe(errno)}{KernelSaid(name)}", path);
    }

    /// <summary>The kernel log's last lines about <paramref name="name"/> (its own messages, klp's and the
    /// module's load-time verification), so a refusal says why without a trip to dmesg.</summary>
    internal static string KernelSaid(string name)
    {
        var log = Libc.KernelLog();
        if (log is null)
            return "";
        var lines = log.Split('\n').TakeLast(200)
            .Where(l => l.Contains(name, StringComparison.Ordinal) && !l.Contains("tainting kernel", StringComparison.Ordinal))
            .Select(l => l[(l.IndexOf(']', StringComparison.Ordinal) + 1)..].Trim())
            .TakeLast(6).ToList();
        return lines.Count == 0 ? "" : "; the kernel said: " + string.Join(" | ", lines);
    }

    /// <summary>delete_module with O_NONBLOCK, retried while the module is briefly busy.</summary>
    private Diagnostic? RemoveModule(string name)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var errno = Libc.DeleteModule(name, Libc.O_NONBLOCK);
            if (errno == 0 || (errno == Libc.ENOENT && !Directory.Exists(_paths.ModuleDirectory(name))))
                return null;
            if (errno is not (Libc.EAGAIN or Libc.EBUSY) || clock.Elapsed > TimeSpan.FromSeconds(10))
                return new Diagnostic("LG0515", Severity.Error, $"delete_module({name}) failed: {Libc.Describe(errno)}");
            Thread.Sleep(100);
        }
    }

    private void WriteAttribute(string name, string attribute, string value)
    {
        var file = Path.Combine(_paths.PatchDirectory(name), attribute);
        var error = TryWrite(file, value);
        if (error is not null)
            throw new LivegraftException(ExitCode.HostFailure, "LG0516", $"cannot write {value} to {attribute}: {error}", file);
    }

    private static string? TryWrite(string file, string value)
    {
        try
        {
            // sysfs attributes take one write of the whole value; no truncation, no creation.
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 1);
            stream.Write(System.Text.Encoding.ASCII.GetBytes(value + "\n"));
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return e.Message;
        }
    }

    /// <summary>Refuses with LG0506 (exit 3) unless the caller is root; <paramref name="why"/> names what needs it.
    /// Mutating verbs call this before they write anything.</summary>
    internal static void RequireRoot(string what, string why, string? file)
    {
        if (!IsRoot)
            throw new LivegraftException(ExitCode.HostFailure, "LG0506", $"must be root to {what}: {why}; run it as root (e.g. with sudo)", file);
    }
}
