using Livegraft.Kernel;

namespace Livegraft.Vm;

/// <summary>One step of a trial: the check's outcome at a point in the patch's life.</summary>
/// <param name="Stage"><c>before</c>, <c>loaded</c> or <c>after</c>.</param>
/// <param name="ExitCode">The check's exit status.</param>
/// <param name="Output">What it printed.</param>
public sealed record TrialStep(string Stage, int ExitCode, string Output);

/// <summary>What <see cref="PatchTrial.Run"/> observed.</summary>
public sealed record TrialResult(string ModuleName, IReadOnlyList<TrialStep> Steps, string LoadOutput, string UnloadOutput, bool Loaded, bool Unloaded, TimeSpan BootTime)
{
    /// <summary>True when the check failed before loading, passed while loaded and failed after unloading.</summary>
    public bool BehavedAsExpected =>
        Loaded && Unloaded && Steps.Count == 3 && Steps[0].ExitCode != 0 && Steps[1].ExitCode == 0 && Steps[2].ExitCode != 0;

    /// <summary>How <c>livegraft try</c> ends: success when the check behaved, invalid input when the
    /// patch loaded but did not change the check as expected, host failure when it did not load.</summary>
    public ExitCode ExitCode => BehavedAsExpected ? ExitCode.Success : Loaded ? ExitCode.InvalidInput : ExitCode.HostFailure;

    /// <summary>The <c>--json</c> document.</summary>
    public void WriteJson(System.Text.Json.Utf8JsonWriter w)
    {
        w.WriteStartObject();
        Json.WriteOutcome(w, ExitCode);
        w.WriteString("module", ModuleName);
        w.WriteBoolean("loaded", Loaded);
        w.WriteBoolean("unloaded", Unloaded);
        w.WriteNumber("bootSeconds", Math.Round(BootTime.TotalSeconds, 1));
        w.WriteStartArray("checks");
        foreach (var s in Steps)
        {
            w.WriteStartObject();
            w.WriteString("stage", s.Stage);
            w.WriteNumber("exitCode", s.ExitCode);
            w.WriteString("output", s.Output);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }
}

/// <summary>
/// Tries a built livepatch module in a fresh guest of its kernel: runs a check before loading,
/// while the patch is enabled (transition complete) and after disabling and unloading it. Loading
/// goes through the kernel's own interfaces (insmod, /sys/kernel/livepatch) so the trial does not
/// depend on the host tooling under test.
/// </summary>
public static class PatchTrial
{
    /// <summary>Guest shell helpers: load and wait for the transition, disable and unload.</summary>
    public const string GuestHelpers = """
        lp_wait() { i=0; while [ "$(cat /sys/kernel/livepatch/$1/transition)" != 0 ]; do i=$((i+1)); [ $i -gt 600 ] && return 1; sleep 0.1; done; }
        lp_load() { insmod "$1" || return 1; lp_wait "$2" && [ "$(cat /sys/kernel/livepatch/$2/enabled)" = 1 ]; }
        lp_unload() { echo 0 > /sys/kernel/livepatch/$1/enabled && lp_wait "$1" && i=0; while [ -d /sys/kernel/livepatch/$1 ] && [ $i -lt 100 ]; do i=$((i+1)); sleep 0.1; done; rmmod "$1"; }
        """;

    /// <summary>Boots <paramref name="target"/>, and runs <paramref name="check"/> around loading <paramref name="modulePath"/>.</summary>
    public static TrialResult Run(KernelTarget target, string modulePath, string moduleName, string check,
        IEnumerable<string>? modules = null, Action<string>? progress = null)
    {
        var options = new VmOptions(target) { CommandTimeout = TimeSpan.FromSeconds(120) };
        options.Files.Add(new GuestFile(modulePath, "/root/patch.ko"));
        foreach (var m in modules ?? [])
            options.Modules.Add(m);
        using var vm = VmSession.Start(options, progress);
        var steps = new List<TrialStep>();
        void Check(string stage)
        {
            progress?.Invoke($"check {stage}");
            var r = vm.Run(check);
            steps.Add(new TrialStep(stage, r.ExitCode, r.Output));
        }
        Check("before");
        progress?.Invoke($"loading {moduleName}");
        var load = vm.Run($"{GuestHelpers}\nlp_load /root/patch.ko {moduleName}");
        if (load.ExitCode != 0)
            return new TrialResult(moduleName, steps, load.Output + vm.Run("dmesg | tail -20").Output, "", false, false, vm.BootTime);
        Check("loaded");
        progress?.Invoke($"unloading {moduleName}");
        var unload = vm.Run($"{GuestHelpers}\nlp_unload {moduleName}");
        Check("after");
        return new TrialResult(moduleName, steps, load.Output, unload.Output, true, unload.ExitCode == 0, vm.BootTime);
    }
}
