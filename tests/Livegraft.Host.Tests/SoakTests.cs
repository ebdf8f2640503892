using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Livegraft.Host.Tests;

/// <summary>
/// The soak (issue #15, <c>bench/soak</c>): load/unload cycles of two patches, one on vmlinux
/// (lg_sample) and one on a module (lg_fixture_patch on lg_fixture), under a busy workload in the
/// guest, with <c>SIGKILL</c> of <c>livegraft</c> at random moments in some cycles (a load, an
/// unload, an install or an uninstall killed part-way). After every cycle: no oops, BUG or WARNING
/// in the kernel log, taint only K/O/E, no leftover patch module, a consistent store, and the patch
/// state expected. CI runs a short soak (<c>SOAK_CYCLES</c>, default 12); <c>bench/soak/run</c> a long one.
/// </summary>
[Collection("vm")]
public sealed class SoakTests : IDisposable
{
    private const string Patches = "/root/patches";
    private readonly HostVm _host;

    public SoakTests(HostVm host)
    {
        _host = host;
        host.Reset();
    }

    public void Dispose()
    {
        if (_host.Error is null)
        {
            _host.Vm.Run("kill $(cat /tmp/soak-load.pids 2>/dev/null) 2>/dev/null; rm -f /tmp/soak-load.pids; true");
            _host.Reset();
        }
    }

    private string Sh(string command) => _host.Sh(command);

    [Fact]
    public void Load_unload_cycles_with_kills_leave_a_healthy_kernel_and_a_consistent_store()
    {
        var cycles = int.TryParse(Environment.GetEnvironmentVariable("SOAK_CYCLES"), CultureInfo.InvariantCulture, out var n) ? n : 12;
        var seed = int.TryParse(Environment.GetEnvironmentVariable("SOAK_SEED"), CultureInfo.InvariantCulture, out var s) ? s : 1;
        var random = new Random(seed);
        var failures = new List<string>();
        var clock = Stopwatch.StartNew();

        Sh($"insmod {Patches}/lg_fixture.ko && echo 1 > /proc/lg_fixture");
        // The workload: readers of both patched paths and a CPU burner, in their own sessions.
        Sh("for w in 1 2; do setsid sh -c 'while :; do cat /proc/cmdline /proc/lg_fixture >/dev/null; done' </dev/null >/dev/null 2>&1 & echo $! >> /tmp/soak-load.pids; done; " +
            "setsid sh -c 'while :; do :; done' </dev/null >/dev/null 2>&1 & echo $! >> /tmp/soak-load.pids; true");
        var baseline = int.Parse(Sh("dmesg | wc -l"), CultureInfo.InvariantCulture);
        var kills = 0;
        var done = 0;
        for (var cycle = 1; cycle <= cycles; cycle++)
        {
            var kill = random.Next(3) == 0;
            var verb = random.Next(5) switch
            {
                0 => $"load {Patches}/lg-sample.ko",
                1 => $"load {Patches}/lg-fixture-patch.ko",
                2 => $"install {Patches}/lg-sample.ko",
                3 => "uninstall lg_sample",
                _ => "unload --all",
            };
            try
            {
                if (kill)
                {
                    // A livegraft killed at a random moment of its work, with the other patch in force.
                    kills++;
                    Sh($"livegraft load {Patches}/lg-sample.ko >/dev/null 2>&1; livegraft {verb} >/dev/null 2>&1 & pid=$!; " +
                        $"usleep {random.Next(0, 1_500_000)}; kill -9 $pid 2>/dev/null; wait $pid; true");
                    // Whatever it left, the next operations report and repair it.
                    Sh("livegraft unload --all >/dev/null");
                }
                // The cycle: both patches in force and observed, the store used and emptied, both removed.
                Sh($"livegraft load {Patches}/lg-sample.ko >/dev/null && livegraft load {Patches}/lg-fixture-patch.ko >/dev/null");
                Expect(cycle, "cmdline patched", Sh("cat /proc/cmdline") == "this has been live patched by lg_sample", failures);
                Expect(cycle, "module patched", Sh("cat /proc/lg_fixture") == "value 2", failures);
                Sh($"livegraft install {Patches}/lg-sample.ko >/dev/null && livegraft uninstall lg_sample >/dev/null");
                Sh("livegraft unload --all >/dev/null");
                Check(cycle, baseline, failures);
                done++;
            }
            catch (LivegraftException e)
            {
                failures.Add($"cycle {cycle} ({(kill ? "after a killed " + verb : "no kill")}): {e.Message}");
                _host.Vm.Run("livegraft unload --all >/dev/null 2>&1; true");
            }
        }
        var report = new StringBuilder()
            .Append(CultureInfo.InvariantCulture, $"soak: {done}/{cycles} cycles done, {kills} with a livegraft killed, {failures.Count} failures, ")
            .Append(CultureInfo.InvariantCulture, $"{clock.Elapsed.TotalSeconds / Math.Max(1, cycles):0.0} s per cycle (seed {seed})\n");
        foreach (var f in failures)
            report.Append("  ").Append(f).Append('\n');
        if (Environment.GetEnvironmentVariable("SOAK_REPORT") is { Length: > 0 } path)
            File.WriteAllText(path, report.ToString());
        TestContext.Current.SendDiagnosticMessage(report.ToString());
        Assert.True(failures.Count == 0, report.ToString());
    }

    private static void Expect(int cycle, string what, bool ok, List<string> failures)
    {
        if (!ok)
            failures.Add($"cycle {cycle}: {what}: not as expected");
    }

    /// <summary>The health of the guest after a cycle: kernel log, taint, modules, sysfs, store.</summary>
    private void Check(int cycle, int baseline, List<string> failures)
    {
        var log = Sh($"dmesg | tail -n +{baseline + 1}");
        foreach (var bad in new[] { "Oops", "BUG:", "WARNING:", "general protection fault" })
            if (log.Contains(bad, StringComparison.Ordinal))
                failures.Add($"cycle {cycle}: kernel log has '{bad}':\n{log}");
        var taint = ulong.Parse(Sh("cat /proc/sys/kernel/tainted"), CultureInfo.InvariantCulture);
        const ulong allowed = (1UL << 12) | (1UL << 13) | (1UL << 15); // O, E, K
        if ((taint & ~allowed) != 0)
            failures.Add($"cycle {cycle}: taint {taint} has more than K/O/E");
        var modules = Sh("cut -d' ' -f1 /proc/modules | grep -v '^lg_fixture$' | tr '\\n' ' '");
        if (modules.Length > 0)
            failures.Add($"cycle {cycle}: modules left: {modules}");
        if (Sh("ls /sys/kernel/livepatch | tr '\\n' ' '") is { Length: > 0 } registered)
            failures.Add($"cycle {cycle}: patches left registered: {registered}");
        var store = Sh("find /var/lib/livegraft -name '*.ko*' -o -name '*.tmp-*' 2>/dev/null | tr '\\n' ' '");
        if (store.Length > 0)
            failures.Add($"cycle {cycle}: store not empty after uninstall: {store}");
    }
}
