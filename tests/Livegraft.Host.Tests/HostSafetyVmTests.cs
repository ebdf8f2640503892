using System.Text.Json;

namespace Livegraft.Host.Tests;

/// <summary>
/// Issue #15 on the real kernel: one operation at a time (two loads started together both succeed,
/// one after the other, either way round), a store that survives a SIGKILL at every step of an
/// install (the next <c>list</c> tells the truth and the next <c>install</c> completes), a kill in the
/// middle of a load, a full disk during an install, and an install that would drop a fix at the next boot.
/// </summary>
[Collection("vm")]
public sealed class HostSafetyVmTests : IDisposable
{
    private const string Patches = "/root/patches";
    private readonly HostVm _host;

    public HostSafetyVmTests(HostVm host)
    {
        _host = host;
        host.Reset();
    }

    public void Dispose()
    {
        if (_host.Error is null)
            _host.Reset();
    }

    private GuestResult Lg(string args) => _host.Livegraft(args);

    private string Sh(string command) => _host.Sh(command);

    private static string[] Names(JsonElement doc, string array = "patches") =>
        [.. doc.GetProperty(array).EnumerateArray().Select(p => p.GetProperty("name").GetString()!)];

    [Theory]
    [InlineData("lg-sample", "lg-second")]
    [InlineData("lg-second", "lg-sample")]
    public void Two_loads_started_together_both_succeed_one_after_the_other(string first, string second)
    {
        // Both start at once; whichever takes the host lock second waits for the first to finish.
        var output = Sh(
            $"livegraft load {Patches}/{first}.ko >/tmp/a.out 2>/tmp/a.err & a=$!; " +
            $"livegraft load {Patches}/{second}.ko >/tmp/b.out 2>/tmp/b.err & b=$!; " +
            "wait $a; echo a=$?; wait $b; echo b=$?; cat /tmp/a.err /tmp/b.err");
        Assert.Contains("a=0", output, StringComparison.Ordinal);
        Assert.Contains("b=0", output, StringComparison.Ordinal);
        Assert.Contains("waiting for 'livegraft load'", output, StringComparison.Ordinal);
        Assert.DoesNotContain("LG0508", output, StringComparison.Ordinal);
        Assert.Equal(["lg_sample", "lg_second"], Names(Lg("list").Json).Order());
        Assert.Equal("this has been live patched by lg_sample", Sh("cat /proc/cmdline"));
        Assert.Equal("version live patched by lg_second", Sh("cat /proc/version"));
    }

    [Fact]
    public void A_load_waits_for_a_transition_started_outside_livegraft()
    {
        // insmod outside Livegraft; the blocking fixture keeps its transition open until released.
        Sh($"insmod {Patches}/lg_fixture.ko");
        Sh("setsid sh -c 'cat /proc/lg_fixture > /tmp/blocked.out' </dev/null >/dev/null 2>&1 & sleep 1; true");
        Sh($"insmod {Patches}/lg-fixture-patch.ko");
        Assert.Equal("1", Sh("cat /sys/kernel/livepatch/lg_fixture_patch/transition"));
        var output = Sh($"(sleep 3; echo 1 > /proc/lg_fixture) & livegraft load {Patches}/lg-second.ko 2>&1; echo rc=$?");
        Assert.Contains("waiting for the transition of lg_fixture_patch to finish", output, StringComparison.Ordinal);
        Assert.Contains("rc=0", output, StringComparison.Ordinal);
        Assert.Equal("version live patched by lg_second", Sh("cat /proc/version"));
    }

    [Theory]
    [InlineData("install:locked", null)]
    [InlineData("install:sidecar", "a checksum without its module")]
    [InlineData("install:module", "an older copy of lg_sample")]
    [InlineData("install:replaced", null)]
    public void An_install_killed_at_any_step_leaves_a_store_that_list_reports_and_install_completes(string step, string? leftover)
    {
        AssertInstalled(Lg($"install {Patches}/lg-second.ko"));
        // Install lg-sample, then install it again and kill that second install at the step.
        Sh($"livegraft install {Patches}/lg-sample.ko >/dev/null");
        var killed = Sh(
            $"rm -f /run/livegraft/paused; LIVEGRAFT_TEST_PAUSE_AT={step} livegraft install {Patches}/lg-sample.ko >/dev/null 2>&1 & pid=$!; " +
            "i=0; while [ ! -s /run/livegraft/paused ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; " +
            "cat /run/livegraft/paused; kill -9 $pid; wait $pid; echo rc=$?");
        Assert.Contains(step, killed, StringComparison.Ordinal);
        Assert.Contains("rc=137", killed, StringComparison.Ordinal);

        // list: each name once, in order, whatever the interrupted install left behind, which it names.
        var list = Lg("list");
        HostVm.AssertExit(0, list);
        Assert.Equal(["lg_second", "lg_sample"], Names(list.Json, "installed"));
        if (leftover is null)
            Assert.DoesNotContain("LG0544", list.Stderr, StringComparison.Ordinal);
        else
            Assert.Contains(leftover, list.Stderr, StringComparison.Ordinal);

        // The next install repairs the store and completes: one copy of each, nothing left over.
        var again = Lg($"install {Patches}/lg-sample.ko");
        AssertInstalled(again);
        Assert.Equal(["lg_second", "lg_sample"], Names(Lg("list").Json, "installed"));
        var files = Sh("ls /var/lib/livegraft/$(uname -r)");
        Assert.Equal(2, files.Split('\n').Count(f => f.EndsWith(".ko", StringComparison.Ordinal)));
        Assert.Equal(2, files.Split('\n').Count(f => f.EndsWith(".ko.sha256", StringComparison.Ordinal)));
        Assert.DoesNotContain(".tmp-", files, StringComparison.Ordinal);
        Assert.Equal("", Sh("find /var/lib/livegraft -name '*.tmp-*'"));
    }

    private static void AssertInstalled(GuestResult r) => HostVm.AssertExit(0, r);

    [Fact]
    public void A_load_killed_after_the_kernel_took_the_module_leaves_the_patch_consistent()
    {
        var killed = Sh(
            $"rm -f /run/livegraft/paused; LIVEGRAFT_TEST_PAUSE_AT=load:loaded livegraft load {Patches}/lg-second.ko >/dev/null 2>&1 & pid=$!; " +
            "i=0; while [ ! -s /run/livegraft/paused ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; kill -9 $pid; wait $pid; echo rc=$?");
        Assert.Contains("rc=137", killed, StringComparison.Ordinal);
        // The kernel finishes the transition by itself; the next commands see a patch in force and the lock free.
        var status = Lg("status");
        HostVm.AssertExit(0, status);
        Assert.Equal("patched", status.Json.GetProperty("verdict").GetString());
        Assert.Equal("version live patched by lg_second", Sh("cat /proc/version"));
        HostVm.AssertExit(0, Lg("unload lg_second"));
        HostVm.AssertExit(0, Lg($"load {Patches}/lg-second.ko"));
    }

    [Fact]
    public void An_install_on_a_full_disk_names_the_path_and_leaves_nothing_half_written()
    {
        Sh("mkdir -p /var/lib/livegraft && mount -t tmpfs -o size=64k tmpfs /var/lib/livegraft && dd if=/dev/zero of=/var/lib/livegraft/fill bs=1k count=64 2>/dev/null; true");
        try
        {
            var r = Lg($"install {Patches}/lg-sample.ko");
            HostVm.AssertExit(3, r);
            var d = r.Json.GetProperty("diagnostics")[0];
            Assert.Equal("LG0534", d.GetProperty("id").GetString());
            Assert.Contains("/var/lib/livegraft/", d.GetProperty("file").GetString(), StringComparison.Ordinal);
            Assert.Contains("No space left on device", d.GetProperty("message").GetString(), StringComparison.Ordinal);
            Assert.Equal("/var/lib/livegraft/fill", Sh("find /var/lib/livegraft -type f"));
        }
        finally
        {
            Sh("umount /var/lib/livegraft");
        }
    }

    [Fact]
    public void Installing_a_replace_patch_that_would_drop_an_installed_fix_at_boot_is_refused()
    {
        HostVm.AssertExit(0, Lg($"install {Patches}/lg-second.ko"));
        var r = Lg($"install {Patches}/lg-replace.ko");
        HostVm.AssertExit(2, r);
        Assert.Equal("LG0542", r.Json.GetProperty("diagnostics")[0].GetProperty("id").GetString());
        Assert.Contains("lg_second", r.Json.GetProperty("diagnostics")[0].GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(["lg_second"], Names(Lg("list").Json, "installed"));
        HostVm.AssertExit(0, Lg($"install {Patches}/lg-replace.ko --drop"));
        Assert.Equal(["lg_replace"], Names(Lg("list").Json, "installed"));
    }
}
