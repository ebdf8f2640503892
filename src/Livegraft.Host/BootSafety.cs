using System.Globalization;
using System.Text;
using Livegraft.Host.Kexec;

namespace Livegraft.Host;

/// <summary>A boot marker: <c>load-installed</c> was loading or had loaded this patch in boot <paramref name="BootId"/>,
/// and the system has not yet stayed up healthy for <paramref name="HealthyAfter"/> since.</summary>
/// <param name="Release">Kernel release (the store directory).</param>
/// <param name="Name">Patch name.</param>
/// <param name="State"><c>loading</c> (written before <c>finit_module</c>) or <c>loaded</c> (after the transition).</param>
/// <param name="BootId">The boot that wrote it.</param>
/// <param name="Sha256">The stored module's checksum.</param>
/// <param name="File">The stored module.</param>
/// <param name="Since">When it was written (UTC, ISO 8601).</param>
/// <param name="Uptime">Seconds since boot when it was written.</param>
/// <param name="HealthyAfter">How long the system must stay up and healthy after it.</param>
/// <param name="Tainted">The kernel's taint mask when it was written.</param>
public sealed record BootMarker(string Release, string Name, string State, string BootId, string Sha256, string File, string Since,
    double Uptime, TimeSpan HealthyAfter, ulong Tainted);

/// <summary>An installed patch that is not loaded at boot any more, and why.</summary>
/// <param name="Release">Kernel release.</param>
/// <param name="Name">Patch name.</param>
/// <param name="Sha256">Checksum of the build that was quarantined (another build lifts it).</param>
/// <param name="File">The stored module.</param>
/// <param name="Reason">Why, in words.</param>
/// <param name="BootId">The boot that ended with its marker set (or oopsed).</param>
/// <param name="Since">When that boot loaded it.</param>
/// <param name="Settled">False when the marker is still waiting for <c>load-installed</c> to turn it into a quarantine.</param>
public sealed record QuarantinedPatch(string Release, string Name, string Sha256, string File, string Reason, string BootId, string Since, bool Settled = true)
{
    /// <summary>The command that tries the patch again.</summary>
    public string Retry => $"livegraft install --force {File}";
}

/// <summary>Boot safety as <c>status</c> shows it.</summary>
/// <param name="Pending">Markers of this boot not yet confirmed.</param>
/// <param name="Quarantined">Patches that load-installed will not load, with the reason.</param>
public sealed record BootSafetyReport(IReadOnlyList<BootMarker> Pending, IReadOnlyList<QuarantinedPatch> Quarantined);

/// <summary>What <c>confirm-boot</c> did.</summary>
/// <param name="Healthy">False when the kernel oopsed or soft-locked up after the patches loaded.</param>
/// <param name="Confirmed">Markers cleared.</param>
/// <param name="Waiting">Markers not yet due (without waiting).</param>
/// <param name="Quarantined">Patches quarantined because the system was not healthy.</param>
/// <param name="Diagnostics">Why, when unhealthy.</param>
public sealed record BootConfirmation(bool Healthy, IReadOnlyList<BootMarker> Confirmed, IReadOnlyList<BootMarker> Waiting,
    IReadOnlyList<QuarantinedPatch> Quarantined, IReadOnlyList<Diagnostic> Diagnostics)
{
    /// <summary>0 when healthy, 3 otherwise.</summary>
    public ExitCode ExitCode => Healthy ? ExitCode.Success : ExitCode.HostFailure;
}

/// <summary>
/// Boot safety for installed patches (docs/kexec.md, "Boot safety"). Before <c>load-installed</c>
/// loads a patch it writes a marker to persistent storage,
/// <c>&lt;state&gt;/boot-safety/&lt;release&gt;/&lt;name&gt;.marker</c>, flushed with its directory;
/// <c>confirm-boot</c> clears the markers once the system has stayed up for the healthy window without
/// an oops. A marker left by an earlier boot means that boot ended (crashed, hung and was reset) before
/// its patches were confirmed: the next <c>load-installed</c> quarantines the patch
/// (<c>&lt;name&gt;.quarantine</c>) and does not load it until <c>install --force</c>. If the boot ended
/// while a patch was being loaded, only that one is blamed.
/// </summary>
public sealed class BootSafety
{
    /// <summary>How long a boot must stay up and healthy after loading, unless configured.</summary>
    public static readonly TimeSpan DefaultHealthyAfter = TimeSpan.FromSeconds(60);

    /// <summary>Taint bits that make a boot unhealthy when they appear after a load: D (oops, BUG) and L (soft lockup).</summary>
    public const ulong UnhealthyTaints = (1UL << 7) | (1UL << 14);

    private const string MarkerSuffix = ".marker";
    private const string QuarantineSuffix = ".quarantine";
    private readonly HostPaths _paths;

    /// <summary>Over the given roots.</summary>
    public BootSafety(HostPaths? paths = null) => _paths = paths ?? HostPaths.Default;

    /// <summary>Checked before <see cref="Confirm"/> changes anything; tests over a temporary tree turn it off.</summary>
    internal bool RequireRoot { get; init; } = true;

    /// <summary>Root of the markers and quarantines.</summary>
    public string Root => Path.Combine(_paths.State, "boot-safety");

    /// <summary>The current boot id ("" when procfs does not have it).</summary>
    public string CurrentBootId => LivepatchSysfs.ReadText(_paths.BootId) ?? "";

    /// <summary>Seconds since boot.</summary>
    public double Uptime => LivepatchSysfs.ReadText(_paths.Uptime)?.Split(' ')[0] is { } s &&
        double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var u) ? u : 0;

    /// <summary>
    /// Turns the markers an earlier boot left for <paramref name="release"/> into quarantines: the ones in
    /// state <c>loading</c> when there are any (the others are released, a note each), else every one.
    /// Returns the notes and warnings. Called by <c>load-installed</c> before it loads anything.
    /// </summary>
    internal IReadOnlyList<Diagnostic> SettlePreviousBoot(string release)
    {
        var bootId = CurrentBootId;
        var (blamed, released) = Classify(Markers(release).Where(m => m.BootId != bootId).ToList());
        var diagnostics = new List<Diagnostic>();
        foreach (var q in blamed)
        {
            WriteQuarantine(q);
            Remove(MarkerPath(q.Release, q.Name));
            diagnostics.Add(new Diagnostic(KexecErrors.Quarantined, Severity.Warning, $"{q.Name} quarantined: {q.Reason}", q.File));
        }
        foreach (var m in released)
        {
            Remove(MarkerPath(m.Release, m.Name));
            diagnostics.Add(new Diagnostic(KexecErrors.MarkerReleased, Severity.Note,
                $"{m.Name}: not blamed for the end of boot {m.BootId}, which ended while {string.Join(", ", blamed.Select(b => b.Name))} was being loaded", m.File));
        }
        return diagnostics;
    }

    /// <summary>The quarantine of one patch, if any.</summary>
    public QuarantinedPatch? Quarantine(string release, string name)
    {
        var v = KeyValues.Read(QuarantinePath(release, name));
        if (v is null)
            return null;
        string Get(string key) => v.TryGetValue(key, out var s) ? s : "";
        return new QuarantinedPatch(release, name, Get("sha256"), Get("file"), Get("reason"), Get("boot_id"), Get("since"));
    }

    /// <summary>Writes the <c>loading</c> marker durably before a load; LG0658 when it cannot be written
    /// (then the patch must not be loaded: a crash would go unnoticed).</summary>
    internal void MarkLoading(InstalledPatch patch, TimeSpan healthyAfter, ulong tainted) =>
        WriteMarker(new BootMarker(patch.Release, patch.Name, "loading", CurrentBootId, patch.Sha256, patch.Path,
            DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture), Uptime, healthyAfter, tainted));

    /// <summary>Moves a marker to <c>loaded</c> after the transition completed (best effort: <c>loading</c> is the stricter state).</summary>
    internal void MarkLoaded(InstalledPatch patch)
    {
        var m = Markers(patch.Release).FirstOrDefault(m => m.Name == patch.Name);
        if (m is null)
            return;
        try
        {
            WriteMarker(m with { State = "loaded" });
        }
        catch (LivegraftException)
        {
        }
    }

    /// <summary>Drops a patch's marker (its load failed cleanly: nothing of it is in the kernel).</summary>
    internal void Clear(InstalledPatch patch) => Remove(MarkerPath(patch.Release, patch.Name));

    /// <summary>Drops a patch's quarantine and marker; true when it was quarantined.</summary>
    internal bool Lift(string release, string name)
    {
        var had = File.Exists(QuarantinePath(release, name));
        Remove(QuarantinePath(release, name));
        Remove(MarkerPath(release, name));
        return had;
    }

    /// <summary>
    /// Confirms this boot's markers for the running release: waits (when <paramref name="wait"/>) until
    /// each has been up for its healthy window, then clears them if no oops or soft lockup (taint D, L)
    /// appeared since it was written; otherwise quarantines those patches at once (LG0659). Without
    /// waiting, markers not yet due are left and listed as waiting. <paramref name="orderlyReboot"/>
    /// (<c>reboot --kexec</c>, just before going down) counts every marker as due: a system healthy
    /// enough to reboot in order is not evidence against its patches.
    /// </summary>
    public BootConfirmation Confirm(bool wait, Action<string>? progress = null, bool orderlyReboot = false)
    {
        if (RequireRoot)
            LivepatchManager.RequireRoot("confirm the boot", $"the markers under {Root} belong to root", null);
        var release = RunningKernel.Read(_paths).Release;
        var bootId = CurrentBootId;
        var markers = Markers(release).Where(m => m.BootId == bootId).ToList();
        if (markers.Count == 0)
            return new BootConfirmation(true, [], [], [], []);
        var due = markers.Max(m => m.Uptime + m.HealthyAfter.TotalSeconds);
        var now = Uptime;
        if (now < due && wait && !orderlyReboot)
        {
            progress?.Invoke($"waiting {due - now:0} s for the healthy window of {string.Join(", ", markers.Select(m => m.Name))}");
            Thread.Sleep(TimeSpan.FromSeconds(due - now));
            markers = Markers(release).Where(m => m.BootId == bootId).ToList();
        }
        var ready = markers.Where(m => orderlyReboot || Uptime >= m.Uptime + m.HealthyAfter.TotalSeconds).ToList();
        var waiting = markers.Except(ready).ToList();
        var tainted = RunningKernel.Read(_paths).Tainted;
        var sick = ready.Where(m => (tainted & ~m.Tainted & UnhealthyTaints) != 0).ToList();
        var diagnostics = new List<Diagnostic>();
        var quarantined = new List<QuarantinedPatch>();
        foreach (var m in sick)
        {
            var letters = TaintFlag.Letters(tainted & ~m.Tainted & UnhealthyTaints);
            var q = new QuarantinedPatch(m.Release, m.Name, m.Sha256, m.File,
                $"the kernel became tainted {letters} ({string.Join(", ", TaintFlag.Decode(tainted & ~m.Tainted & UnhealthyTaints).Select(f => f.Description))}) after it was loaded",
                m.BootId, m.Since);
            WriteQuarantine(q);
            Remove(MarkerPath(m.Release, m.Name));
            quarantined.Add(q);
            diagnostics.Add(new Diagnostic(KexecErrors.Unhealthy, Severity.Error,
                $"{m.Name} quarantined: {q.Reason}; it stays loaded in this boot and is not loaded at the next (unload it with 'livegraft unload {m.Name}')", m.File));
        }
        var confirmed = ready.Except(sick).ToList();
        foreach (var m in confirmed)
            Remove(MarkerPath(m.Release, m.Name));
        if (confirmed.Count > 0)
            progress?.Invoke($"boot confirmed healthy for {string.Join(", ", confirmed.Select(m => m.Name))}");
        return new BootConfirmation(sick.Count == 0, confirmed, waiting, quarantined, diagnostics);
    }

    /// <summary>Every release's pending markers and quarantines (those an earlier boot left but
    /// load-installed has not settled yet included, with <see cref="QuarantinedPatch.Settled"/> false).</summary>
    public BootSafetyReport Report()
    {
        if (!Directory.Exists(Root))
            return new BootSafetyReport([], []);
        var bootId = CurrentBootId;
        var pending = new List<BootMarker>();
        var quarantined = new List<QuarantinedPatch>();
        foreach (var dir in Directory.GetDirectories(Root).Order(StringComparer.Ordinal))
        {
            var release = Path.GetFileName(dir);
            var markers = Markers(release);
            pending.AddRange(markers.Where(m => m.BootId == bootId));
            foreach (var file in Directory.GetFiles(dir, "*" + QuarantineSuffix).Order(StringComparer.Ordinal))
                quarantined.Add(Quarantine(release, Path.GetFileName(file)[..^QuarantineSuffix.Length])!);
            quarantined.AddRange(Classify(markers.Where(m => m.BootId != bootId).ToList()).Blamed.Select(q => q with { Settled = false }));
        }
        return new BootSafetyReport(pending, quarantined);
    }

    /// <summary>Markers an earlier boot left: blame the ones caught loading, if any, else all of them.</summary>
    private static (List<QuarantinedPatch> Blamed, List<BootMarker> Released) Classify(List<BootMarker> old)
    {
        var loading = old.Where(m => m.State == "loading").ToList();
        var blamed = loading.Count > 0 ? loading : old;
        var quarantines = blamed.Select(m => new QuarantinedPatch(m.Release, m.Name, m.Sha256, m.File, m.State == "loading"
            ? $"the boot that loaded it ({m.BootId}, {m.Since}) ended while it was being loaded"
            : $"the boot that loaded it ({m.BootId}, {m.Since}) ended within {m.HealthyAfter.TotalSeconds:0} s of loading it, before it was confirmed healthy",
            m.BootId, m.Since)).ToList();
        return (quarantines, old.Except(blamed).ToList());
    }

    private List<BootMarker> Markers(string release)
    {
        var dir = Path.Combine(Root, release);
        if (!Directory.Exists(dir))
            return [];
        var markers = new List<BootMarker>();
        foreach (var file in Directory.GetFiles(dir, "*" + MarkerSuffix).Order(StringComparer.Ordinal))
        {
            var v = KeyValues.Read(file);
            if (v is null)
                continue;
            string Get(string key) => v.TryGetValue(key, out var s) ? s : "";
            double Number(string key) => double.TryParse(Get(key), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : 0;
            markers.Add(new BootMarker(release, Path.GetFileName(file)[..^MarkerSuffix.Length], Get("state"), Get("boot_id"), Get("sha256"),
                Get("file"), Get("since"), Number("uptime"), TimeSpan.FromSeconds(Number("healthy_after")),
                ulong.TryParse(Get("tainted"), NumberStyles.None, CultureInfo.InvariantCulture, out var t) ? t : 0));
        }
        return markers;
    }

    private void WriteMarker(BootMarker m)
    {
        var text = string.Create(CultureInfo.InvariantCulture,
            $"state={m.State}\nboot_id={m.BootId}\nsha256={m.Sha256}\nfile={m.File}\nsince={m.Since}\nuptime={m.Uptime:0.00}\nhealthy_after={m.HealthyAfter.TotalSeconds:0.###}\ntainted={m.Tainted}\n");
        try
        {
            Write(MarkerPath(m.Release, m.Name), text);
        }
        catch (LivegraftException e)
        {
            throw new LivegraftException(ExitCode.HostFailure, KexecErrors.MarkerNotWritten,
                $"cannot write the boot marker of {m.Name}, so it is not loaded (a crash during its load would go unnoticed): {e.Diagnostics[0].Message}", MarkerPath(m.Release, m.Name));
        }
    }

    private void WriteQuarantine(QuarantinedPatch q) => Write(QuarantinePath(q.Release, q.Name),
        $"sha256={q.Sha256}\nfile={q.File}\nreason={q.Reason}\nboot_id={q.BootId}\nsince={q.Since}\n");

    private static void Write(string path, string text)
    {
        var dir = Path.GetDirectoryName(path)!;
        try
        {
            if (!Directory.Exists(dir))
            {
                // New directories must reach the disk too, or the marker inside them may not.
                Directory.CreateDirectory(dir);
                Native.Libc.FsyncDirectory(Path.GetDirectoryName(dir)!);
                Native.Libc.FsyncDirectory(Path.GetDirectoryName(Path.GetDirectoryName(dir)!)!);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LivegraftException(ExitCode.HostFailure, "LG0534", "cannot write: " + e.Message, path);
        }
        PatchStore.WriteAtomic(path, Encoding.UTF8.GetBytes(text));
    }

    /// <summary>Deletes a file if it is there (File.Delete throws when the directory is missing).</summary>
    private static void Remove(string path)
    {
        if (File.Exists(path))
            File.Delete(path);
    }

    private string MarkerPath(string release, string name) => Path.Combine(Root, release, name + MarkerSuffix);

    private string QuarantinePath(string release, string name) => Path.Combine(Root, release, name + QuarantineSuffix);
}
