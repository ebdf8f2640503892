namespace Livegraft.Host;

/// <summary>How a load ended.</summary>
public enum LoadOutcome
{
    /// <summary>The transition completed: every task runs the new code.</summary>
    Patched,
    /// <summary>The transition was forced with the <c>force</c> attribute after the timeout.</summary>
    Forced,
    /// <summary>The transition stalled; it was reversed and the module removed.</summary>
    Reverted,
    /// <summary>The transition stalled and could not be reversed either; the patch is still in transition.</summary>
    Stuck,
}

/// <summary>Tuning for following a transition.</summary>
public sealed record TransitionOptions
{
    /// <summary>How long to wait for a transition before reverting (or forcing).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Force the transition after the timeout instead of reverting (livepatch.rst: the patch module
    /// can then never be removed).</summary>
    public bool Force { get; init; }

    /// <summary>How often to look at <c>transition</c>.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>How often to report tasks that have not switched.</summary>
    public TimeSpan ReportInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Receives human progress lines (for stderr).</summary>
    public Action<string>? Progress { get; init; }

    /// <summary>How long to wait for another Livegraft operation (the host lock) or a transition
    /// started outside Livegraft before giving up (LG0540).</summary>
    public TimeSpan LockTimeout { get; init; } = HostLock.DefaultTimeout;

    /// <summary>Let an atomic replace patch drop fixes in force that it does not carry (LG0543);
    /// without it such a load is refused (LG0542).</summary>
    public bool Drop { get; init; }

    /// <summary>Patches whose fixes an atomic replace may drop without <see cref="Drop"/>: those a
    /// repository update manages, whose index declares the new patch cumulative over them.</summary>
    public IReadOnlySet<string> MayDrop { get; init; } = new HashSet<string>(StringComparer.Ordinal);
}

/// <summary>What <c>load</c> did.</summary>
/// <param name="Name">Module name.</param>
/// <param name="File">The module file.</param>
/// <param name="Sha256">SHA-256 of the file.</param>
/// <param name="Outcome">How it ended.</param>
/// <param name="Elapsed">Time from finit_module to the end of the transition (or of the revert).</param>
/// <param name="Signalled">True when the <c>signal</c> attribute was written.</param>
/// <param name="Blockers">Tasks that had not switched when last looked at (empty when patched).</param>
/// <param name="Replaced">Modules of patches this atomic-replace patch superseded, removed after the transition.</param>
/// <param name="Diagnostics">Warnings, and the error when the load did not succeed.</param>
public sealed record LoadResult(string Name, string File, string Sha256, LoadOutcome Outcome, TimeSpan Elapsed, bool Signalled,
    IReadOnlyList<BlockingTask> Blockers, IReadOnlyList<string> Replaced, IReadOnlyList<Diagnostic> Diagnostics)
{
    /// <summary>The exit code the command ends with: 0 when patched (or forced), 3 otherwise.</summary>
    public ExitCode ExitCode => Outcome is LoadOutcome.Patched or LoadOutcome.Forced ? ExitCode.Success : ExitCode.HostFailure;
}

/// <summary>What <c>unload</c> did for one patch.</summary>
/// <param name="Name">Module name.</param>
/// <param name="Unloaded">True when the module is gone.</param>
/// <param name="Elapsed">Time taken.</param>
/// <param name="Blockers">Tasks that kept the unpatching transition from completing.</param>
/// <param name="Diagnostics">Warnings, and the error when it failed.</param>
public sealed record UnloadResult(string Name, bool Unloaded, TimeSpan Elapsed, IReadOnlyList<BlockingTask> Blockers, IReadOnlyList<Diagnostic> Diagnostics);

/// <summary>Overall state of live patching on the host.</summary>
public enum PatchVerdict
{
    /// <summary>No patch in force.</summary>
    None,
    /// <summary>Patches in force, no transition.</summary>
    Patched,
    /// <summary>A transition is under way and tasks are still switching.</summary>
    InTransition,
    /// <summary>A transition is held up by tasks sleeping in patched functions.</summary>
    Stalled,
}

/// <summary>What <c>status</c> reports.</summary>
/// <param name="Kernel">The running kernel.</param>
/// <param name="EffectiveVersion">Release plus the patches in force, e.g. <c>6.1.0-56-amd64+lg_fix1</c>.</param>
/// <param name="Patches">Loaded livepatch modules in stack order.</param>
/// <param name="TransitionPatch">The patch in transition, if any.</param>
/// <param name="Blockers">Tasks not yet switched in that transition.</param>
/// <param name="Verdict">The summary.</param>
/// <param name="LivepatchSupported">True when <c>/sys/kernel/livepatch</c> exists.</param>
public sealed record HostStatus(RunningKernel Kernel, string EffectiveVersion, IReadOnlyList<LoadedPatch> Patches, string? TransitionPatch,
    IReadOnlyList<BlockingTask> Blockers, PatchVerdict Verdict, bool LivepatchSupported)
{
    /// <summary>Notes on what could not be seen (a non-root caller during a transition).</summary>
    public IReadOnlyList<Diagnostic> Diagnostics { get; init; } = [];

    /// <summary>The running boot's id (<c>/proc/sys/kernel/random/boot_id</c>): it changes at every boot, kexec included.</summary>
    public string? BootId { get; init; }

    /// <summary>Boot safety: this boot's unconfirmed markers and the quarantined patches.</summary>
    public BootSafetyReport BootSafety { get; init; } = new([], []);

    /// <summary>kexec facilities and the last kexec reboot.</summary>
    public Kexec.KexecState? Kexec { get; init; }

    /// <summary>What <c>update</c> recorded: repository versions and fixes of the patches, the last check (docs/fleet.md).</summary>
    public Repository.UpdateRecord Updates { get; init; } = Repository.UpdateRecord.Empty;
}

/// <summary>What <c>list</c> shows.</summary>
/// <param name="Loaded">Loaded patches in stack order.</param>
/// <param name="Installed">Installed patches of every release.</param>
/// <param name="RunningRelease">The running kernel's release, when known.</param>
/// <param name="Leftovers">What an interrupted operation left in the store (the next install, uninstall
/// or load-installed removes it).</param>
public sealed record HostListing(IReadOnlyList<LoadedPatch> Loaded, IReadOnlyList<InstalledPatch> Installed, string? RunningRelease,
    IReadOnlyList<Diagnostic> Leftovers)
{
    /// <summary>What the next boot of each release does with its installed patches (<see cref="PatchStore.BootPlan"/>).</summary>
    public IReadOnlyList<BootPlanEntry> AtBoot { get; init; } = [];
}
