using System.Globalization;
using System.Text.RegularExpressions;
using Livegraft.Host.Native;

namespace Livegraft.Host.Repository;

/// <summary>A point to compare against: the time stamp of the last kernel log line and the taint mask.
/// Printed as <c>SECONDS:TAINT</c> (e.g. <c>12.345678:0</c>) and given back with <c>--since</c>.</summary>
/// <param name="LogTime">Seconds since boot of the newest kernel log record (printk time).</param>
/// <param name="Tainted">The taint mask.</param>
public sealed record HealthMark(decimal LogTime, ulong Tainted)
{
    /// <inheritdoc/>
    public override string ToString() => $"{LogTime.ToString("0.000000", CultureInfo.InvariantCulture)}:{Tainted.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Parses what <see cref="ToString"/> printed (LG0633 otherwise).</summary>
    public static HealthMark Parse(string text)
    {
        var parts = text.Split(':');
        if (parts.Length == 2 && decimal.TryParse(parts[0], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var t)
            && ulong.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var taint))
            return new HealthMark(t, taint);
        throw new LivegraftException(ExitCode.InvalidInput, FleetErrors.BadMark, $"bad baseline mark '{text}': expected SECONDS:TAINT as an earlier 'livegraft health' printed it");
    }
}

/// <summary>One health check's outcome.</summary>
/// <param name="Name"><c>transition</c>, <c>in-force</c>, <c>kernel-log</c> or <c>taint</c>.</param>
/// <param name="Ok">True when it passed (or was skipped).</param>
/// <param name="Detail">What was seen.</param>
/// <param name="Evidence">Offending kernel log lines, blockers, missing patches.</param>
public sealed record HealthCheckItem(string Name, bool Ok, string Detail, IReadOnlyList<string> Evidence);

/// <summary>What <c>livegraft health</c> found.</summary>
/// <param name="Mark">The mark for a later comparison (now).</param>
/// <param name="Since">The baseline compared against, if one was given.</param>
/// <param name="Checks">Every check, in order.</param>
/// <param name="Status">The host status the checks read.</param>
/// <param name="Diagnostics">One error per failed check.</param>
public sealed record HealthReport(HealthMark Mark, HealthMark? Since, IReadOnlyList<HealthCheckItem> Checks, HostStatus Status, IReadOnlyList<Diagnostic> Diagnostics)
{
    /// <summary>True when every check passed.</summary>
    public bool Healthy => Checks.All(c => c.Ok);
}

/// <summary>
/// The kernel side of a rollout's health check (docs/fleet.md, "Health checks"): no transition under
/// way or stalled, the expected patches in force, no Oops, BUG or WARNING in the kernel log and no
/// taint flag since a baseline mark other than K and those the loaded patch modules carry themselves
/// (O and E for an out-of-tree, unsigned module). The operator's own check command runs beside it.
/// </summary>
public static partial class HostHealth
{
    [GeneratedRegex(@"^(?:<\d+>)?\[\s*(\d+\.\d+)\]\s?(.*)$", RegexOptions.CultureInvariant)]
    private static partial Regex LogLine();

    // Whole words, case as the kernel prints them: "Oops: ...", "BUG: ...", "kernel BUG at", "WARNING: CPU: ...".
    [GeneratedRegex(@"(?<![A-Za-z])(Oops|BUG|WARNING)(?![A-Za-z])", RegexOptions.CultureInvariant)]
    private static partial Regex Alarm();

    private const ulong LivepatchTaint = 1UL << 15;

    /// <summary>Runs the checks; <paramref name="since"/> null checks only the transition and expected patches
    /// and returns the mark to compare against later.</summary>
    public static HealthReport Check(HostPaths? paths, HealthMark? since, IReadOnlyList<string> expect, TimeSpan settle)
    {
        paths ??= HostPaths.Default;
        var status = new LivepatchManager(paths).Status(settle);
        var log = Libc.KernelLog();
        var records = log is null ? [] : Parse(log);
        var mark = new HealthMark(records.Count == 0 ? 0 : records[^1].Time, status.Kernel.Tainted);
        var checks = new List<HealthCheckItem>();
        var diagnostics = new List<Diagnostic>();

        if (status.TransitionPatch is not null)
        {
            var blockers = status.Blockers.Select(b => b.ToString()).ToList();
            checks.Add(new HealthCheckItem("transition", false, $"{status.TransitionPatch} is {Json.Kebab(status.Verdict.ToString())} after {settle.TotalSeconds:0} s", blockers));
            diagnostics.Add(new Diagnostic(FleetErrors.NotInForce, Severity.Error, $"the transition of {status.TransitionPatch} has not completed" + (blockers.Count > 0 ? ": " + string.Join("; ", blockers) : "")));
        }
        else
            checks.Add(new HealthCheckItem("transition", true, "no transition under way", []));

        var inForce = status.Patches.Where(p => p.Registered && p.Enabled).Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        var missing = expect.Select(n => n.Replace('-', '_')).Where(n => !inForce.Contains(n)).ToList();
        checks.Add(missing.Count == 0
            ? new HealthCheckItem("in-force", true, expect.Count == 0 ? "no patch expected" : "in force: " + string.Join(", ", expect), [])
            : new HealthCheckItem("in-force", false, "not in force: " + string.Join(", ", missing), missing));
        if (missing.Count > 0)
            diagnostics.Add(new Diagnostic(FleetErrors.NotInForce, Severity.Error, $"expected in force but not: {string.Join(", ", missing)}"));

        if (since is null)
        {
            checks.Add(new HealthCheckItem("kernel-log", true, "no baseline given; not compared", []));
            checks.Add(new HealthCheckItem("taint", true, "no baseline given; not compared", []));
        }
        else
        {
            if (log is null)
            {
                checks.Add(new HealthCheckItem("kernel-log", false, "the kernel log is unreadable (dmesg_restrict; run as root)", []));
                diagnostics.Add(new Diagnostic(FleetErrors.KernelLogError, Severity.Error, "cannot read the kernel log to compare it with the baseline"));
            }
            else
            {
                var alarms = records.Where(r => r.Time > since.LogTime && Alarm().IsMatch(r.Text)).Select(r => $"[{r.Time:0.000000}] {r.Text}").ToList();
                checks.Add(new HealthCheckItem("kernel-log", alarms.Count == 0,
                    alarms.Count == 0 ? $"no Oops, BUG or WARNING since {since.LogTime:0.000000} s" : $"{alarms.Count} Oops/BUG/WARNING line(s) since {since.LogTime:0.000000} s", alarms.Take(20).ToList()));
                if (alarms.Count > 0)
                    diagnostics.Add(new Diagnostic(FleetErrors.KernelLogError, Severity.Error, $"the kernel logged {alarms[0]}" + (alarms.Count > 1 ? $" (and {alarms.Count - 1} more)" : "")));
            }
            // Expected: K, and what the patch modules carry themselves (/sys/module/<name>/taint: an
            // out-of-tree, unsigned livepatch module also brings O and E when it loads).
            var expected = LivepatchTaint;
            foreach (var letter in status.Patches.SelectMany(p => p.Taint))
                expected |= TaintFlag.All.Where(f => f.Letter == letter).Aggregate(0UL, (m, f) => m | (1UL << f.Bit));
            var fresh = status.Kernel.Tainted & ~since.Tainted & ~expected;
            var flags = TaintFlag.Decode(fresh);
            checks.Add(new HealthCheckItem("taint", fresh == 0,
                fresh == 0 ? $"no new taint besides K and the patch modules' own (now '{status.Kernel.TaintLetters}')" : $"new taint: {TaintFlag.Letters(fresh)}",
                flags.Select(f => $"{f.Letter}: {f.Description}").ToList()));
            if (fresh != 0)
                diagnostics.Add(new Diagnostic(FleetErrors.NewTaint, Severity.Error,
                    $"the kernel gained taint {TaintFlag.Letters(fresh)} ({string.Join(", ", flags.Select(f => f.Description))}) since the baseline"));
        }
        return new HealthReport(mark, since, checks, status, diagnostics);
    }

    private readonly record struct LogRecord(decimal Time, string Text);

    /// <summary>Kernel log lines with their printk time stamps; lines without one (continuations) keep the previous time.</summary>
    private static List<LogRecord> Parse(string log)
    {
        var records = new List<LogRecord>();
        var last = 0m;
        foreach (var line in log.Split('\n'))
        {
            if (line.Length == 0)
                continue;
            var m = LogLine().Match(line);
            if (m.Success && decimal.TryParse(m.Groups[1].Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var t))
            {
                last = t;
                records.Add(new LogRecord(t, m.Groups[2].Value));
            }
            else
                records.Add(new LogRecord(last, line));
        }
        return records;
    }
}
