using System.Text.Json;
using Livegraft.Kernel;

namespace Livegraft.Host.Tests;

/// <summary>
/// A non-root caller in the guest (<see cref="HostVm.User"/>, through busybox <c>su</c>): every verb
/// that changes the kernel or the store is refused with LG0506 and exit 3 before it touches
/// anything; the read-only verbs show what root sees, and say what they cannot see.
/// </summary>
[Collection("vm")]
public sealed class NonRootTests : IDisposable
{
    private const string Patches = "/root/patches";
    private const string Fixture = "lg_fixture_patch";
    private readonly HostVm _host;

    public NonRootTests(HostVm host)
    {
        _host = host;
        host.Reset();
    }

    public void Dispose()
    {
        if (_host.Error is null)
            _host.Reset();
    }

    /// <summary>Runs <c>livegraft ARGS --json</c> as the unprivileged user, or as root.</summary>
    private GuestResult Lg(string args, bool asRoot = false) => _host.Livegraft(args, asUser: !asRoot);

    private string Sh(string command) => _host.Sh(command);

    /// <summary>Everything a mutating verb could change: the store and unit directory (with sizes),
    /// the livepatch sysfs tree with each patch's state, the loaded modules, /proc/cmdline.</summary>
    private string HostState() => Sh(
        "find /var/lib/livegraft /etc/systemd -exec ls -ld {} + 2>/dev/null | awk '{print $1, $5, $NF}'; echo --; " +
        "for d in /sys/kernel/livepatch/*; do [ -d \"$d\" ] && echo \"$d $(cat $d/enabled) $(cat $d/transition)\"; done; echo --; " +
        "cut -d' ' -f1 /proc/modules; echo --; cat /proc/cmdline");

    private static void AssertRefusedAsNotRoot(GuestResult r)
    {
        Assert.True(r.Exit == 3, $"exit {r.Exit}, expected 3\nstdout: {r.Json}\nstderr: {r.Stderr}");
        Assert.False(r.Json.GetProperty("ok").GetBoolean());
        Assert.Equal(3, r.Json.GetProperty("exitCode").GetInt32());
        var d = Assert.Single(r.Json.GetProperty("diagnostics").EnumerateArray());
        Assert.Equal("LG0506", d.GetProperty("id").GetString());
        Assert.Equal("error", d.GetProperty("severity").GetString());
        Assert.Contains("error LG0506", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void TheGuestUserIsNotRoot() =>
        Assert.Equal("1000", Sh($"su -s /bin/sh -c 'id -u' {HostVm.User}"));

    [Fact]
    public void LoadAndInstallAreRefusedBeforeAnythingIsTouched()
    {
        var before = HostState();
        AssertRefusedAsNotRoot(Lg($"load {Patches}/lg-sample.ko"));
        AssertRefusedAsNotRoot(Lg($"load {Patches}/lg-sample.ko --force --timeout 1s"));
        AssertRefusedAsNotRoot(Lg($"install {Patches}/lg-sample.ko"));
        AssertRefusedAsNotRoot(Lg("load-installed"));
        Assert.Equal(before, HostState());
        Assert.Equal("", Sh("ls -A /sys/kernel/livepatch"));
        Assert.Equal("", Sh("lsmod | grep -E '^(lg|livepatch)' || true"));
        Assert.Equal("", Sh("find / -xdev -name '*.tmp-*' 2>/dev/null | grep -v ^/proc || true"));
    }

    [Fact]
    public void UnloadAndUninstallAreRefusedAndThePatchStaysInForce()
    {
        Sh($"livegraft load {Patches}/lg-sample.ko && livegraft install {Patches}/lg-second.ko");
        var before = HostState();
        Assert.Contains("/sys/kernel/livepatch/lg_sample 1 0", before, StringComparison.Ordinal);
        AssertRefusedAsNotRoot(Lg("unload lg_sample"));
        AssertRefusedAsNotRoot(Lg("unload lg_nothing"));
        AssertRefusedAsNotRoot(Lg("unload --all"));
        AssertRefusedAsNotRoot(Lg("uninstall lg_second"));
        Assert.Equal(before, HostState());
        Assert.Equal("this has been live patched by lg_sample", Sh("cat /proc/cmdline"));
    }

    [Fact]
    public void ReadOnlyVerbsShowWhatRootSees()
    {
        Sh($"livegraft load {Patches}/lg-sample.ko && livegraft install {Patches}/lg-second.ko");

        var list = Lg("list");
        Assert.Equal(0, list.Exit);
        Assert.Equal(Lg("list", asRoot: true).Json.ToString(), list.Json.ToString());
        Assert.Equal("lg_sample", Assert.Single(list.Json.GetProperty("patches").EnumerateArray()).GetProperty("name").GetString());
        var installed = Assert.Single(list.Json.GetProperty("installed").EnumerateArray());
        Assert.Equal("lg_second", installed.GetProperty("name").GetString());
        Assert.True(installed.GetProperty("forRunningKernel").GetBoolean());

        var status = Lg("status");
        Assert.Equal(0, status.Exit);
        Assert.Equal(Lg("status", asRoot: true).Json.ToString(), status.Json.ToString());
        Assert.Equal("patched", status.Json.GetProperty("verdict").GetString());
        Assert.Equal(KernelTarget.ReferenceRelease + "+lg_sample", status.Json.GetProperty("effectiveVersion").GetString());
        Assert.Matches("^[0-9a-f]{40}$", status.Json.GetProperty("kernel").GetProperty("buildId").GetString());
        Assert.Empty(status.Json.GetProperty("diagnostics").EnumerateArray());
        Assert.Equal("", status.Stderr);

        var info = Lg($"info {Patches}/lg-sample.ko");
        Assert.Equal(0, info.Exit);
        Assert.Equal(Lg($"info {Patches}/lg-sample.ko", asRoot: true).Json.ToString(), info.Json.ToString());
        Assert.Equal("lg_sample", info.Json.GetProperty("name").GetString());
        Assert.True(info.Json.GetProperty("livepatch").GetBoolean());
    }

    [Fact]
    public void StatusDuringAStalledTransitionSaysWhatANonRootCallerCannotSee()
    {
        Sh($"insmod {Patches}/lg_fixture.ko");
        Sh("setsid sh -c 'cat /proc/lg_fixture > /tmp/blocked.out' </dev/null >/dev/null 2>&1 & sleep 1; true");
        // Root loads in the background; the reader asleep in fixture_block() holds the transition.
        Sh($"setsid sh -c 'livegraft load {Patches}/lg-fixture-patch.ko --timeout 120s --json >/tmp/bg-load.json 2>/tmp/bg-load.err' " +
            "</dev/null >/dev/null 2>&1 & " +
            $"for i in $(seq 100); do [ \"$(cat /sys/kernel/livepatch/{Fixture}/transition 2>/dev/null)\" = 1 ] && exit 0; sleep 0.2; done; exit 1");

        var asRoot = Lg("status", asRoot: true);
        Assert.Equal("stalled", asRoot.Json.GetProperty("verdict").GetString());
        Assert.Empty(asRoot.Json.GetProperty("diagnostics").EnumerateArray());

        // patch_state is 0400 and /proc/PID/stack needs CAP_SYS_ADMIN: the blocked root task is invisible.
        var user = Lg("status");
        Assert.Equal(0, user.Exit);
        Assert.Equal(Fixture, user.Json.GetProperty("transitionPatch").GetString());
        Assert.Equal("in-transition", user.Json.GetProperty("verdict").GetString());
        Assert.DoesNotContain(user.Json.GetProperty("blockers").EnumerateArray(), b => b.GetProperty("comm").GetString() == "cat");
        var note = Assert.Single(user.Json.GetProperty("diagnostics").EnumerateArray());
        Assert.Equal("LG0506", note.GetProperty("id").GetString());
        Assert.Equal("note", note.GetProperty("severity").GetString());
        Assert.Contains("note LG0506", user.Stderr, StringComparison.Ordinal);
        Assert.Equal(0, Lg("list").Exit);

        Sh("echo 1 > /proc/lg_fixture; for i in $(seq 150); do pidof livegraft >/dev/null || exit 0; sleep 0.2; done; exit 1");
        var load = JsonDocument.Parse(Sh("cat /tmp/bg-load.json")).RootElement;
        Assert.Equal("patched", load.GetProperty("outcome").GetString());
    }
}
