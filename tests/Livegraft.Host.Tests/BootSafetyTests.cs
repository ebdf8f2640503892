using System.Text.Json;
using Livegraft.Host.Kexec;

namespace Livegraft.Host.Tests;

/// <summary>Boot markers and quarantines over a temporary store and /proc: which patches an ended boot
/// blames, when confirm-boot clears them, and install's --force. The crash itself happens in the VM
/// (<see cref="KexecVmTests"/>).</summary>
public sealed class BootSafetyTests
{
    private const string Release = BuiltModules.Release;

    private static TempTree Host()
    {
        var t = new TempTree();
        t.Write("proc/sys/kernel/osrelease", Release + "\n");
        t.Write("proc/cmdline", "console=ttyS0\n");
        t.Write("proc/sys/kernel/tainted", "0\n");
        Boot(t, "boot-a", uptime: 10);
        return t;
    }

    private static void Boot(TempTree t, string bootId, double uptime)
    {
        t.Write("proc/sys/kernel/random/boot_id", bootId + "\n");
        t.Write("proc/uptime", $"{uptime:0.00} 1.00\n");
    }

    private static InstalledPatch Patch(TempTree t, string name) =>
        new(Release, name, 1, Path.Combine(t.Paths.State, Release, $"0001-{name}.ko"), new string('a', 64));

    private static BootSafety Safety(TempTree t) => new(t.Paths) { RequireRoot = false };

    [Fact]
    public void ABootThatEndedWhileLoadingBlamesOnlyThePatchBeingLoaded()
    {
        using var t = Host();
        var s = Safety(t);
        s.MarkLoading(Patch(t, "good"), TimeSpan.FromSeconds(60), 0);
        s.MarkLoaded(Patch(t, "good"));
        s.MarkLoading(Patch(t, "bad"), TimeSpan.FromSeconds(60), 0);
        Assert.Equal(["bad", "good"], s.Report().Pending.Select(m => m.Name).Order());

        Boot(t, "boot-b", uptime: 5); // the machine died and came back
        var report = s.Report();
        Assert.Empty(report.Pending);
        var unsettled = Assert.Single(report.Quarantined);
        Assert.Equal(("bad", false), (unsettled.Name, unsettled.Settled));

        var found = s.SettlePreviousBoot(Release);
        Assert.Equal([KexecErrors.Quarantined, KexecErrors.MarkerReleased], found.Select(d => d.Id));
        var q = s.Quarantine(Release, "bad")!;
        Assert.Contains("being loaded", q.Reason, StringComparison.Ordinal);
        Assert.Equal("boot-a", q.BootId);
        Assert.Null(s.Quarantine(Release, "good"));
        var settled = Assert.Single(s.Report().Quarantined);
        Assert.Equal(("bad", true), (settled.Name, settled.Settled));
        Assert.Empty(s.SettlePreviousBoot(Release)); // settled once

        Assert.True(s.Lift(Release, "bad"));
        Assert.Empty(s.Report().Quarantined);
    }

    [Fact]
    public void ABootThatEndedBeforeTheHealthyWindowBlamesEveryPatchItLoaded()
    {
        using var t = Host();
        var s = Safety(t);
        foreach (var name in new[] { "one", "two" })
        {
            s.MarkLoading(Patch(t, name), TimeSpan.FromSeconds(60), 0);
            s.MarkLoaded(Patch(t, name));
        }
        Boot(t, "boot-b", uptime: 5);
        Assert.Equal([KexecErrors.Quarantined, KexecErrors.Quarantined], s.SettlePreviousBoot(Release).Select(d => d.Id));
        Assert.Contains("before it was confirmed healthy", s.Quarantine(Release, "two")!.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void ConfirmClearsMarkersOnceDueAndQuarantinesAfterAnOops()
    {
        using var t = Host();
        var s = Safety(t);
        s.MarkLoading(Patch(t, "p"), TimeSpan.FromSeconds(30), 0);
        s.MarkLoaded(Patch(t, "p"));
        var early = s.Confirm(wait: false);
        Assert.True(early.Healthy);
        Assert.Equal("p", Assert.Single(early.Waiting).Name);
        Assert.Single(s.Report().Pending);

        Boot(t, "boot-a", uptime: 41);
        var done = s.Confirm(wait: false);
        Assert.Equal("p", Assert.Single(done.Confirmed).Name);
        Assert.Empty(s.Report().Pending);
        Boot(t, "boot-b", uptime: 5);
        Assert.Empty(s.SettlePreviousBoot(Release)); // confirmed: the next boot blames nothing

        s.MarkLoading(Patch(t, "q"), TimeSpan.FromSeconds(1), 0);
        t.Write("proc/sys/kernel/tainted", (1 << 7 | 1 << 15).ToString(System.Globalization.CultureInfo.InvariantCulture) + "\n"); // D and K
        Boot(t, "boot-b", uptime: 50);
        var sick = s.Confirm(wait: false);
        Assert.False(sick.Healthy);
        Assert.Equal(ExitCode.HostFailure, sick.ExitCode);
        Assert.Equal(KexecErrors.Unhealthy, Assert.Single(sick.Diagnostics).Id);
        Assert.Contains("tainted D", s.Quarantine(Release, "q")!.Reason, StringComparison.Ordinal);
        using var doc = JsonDocument.Parse(Json.ToText(w => KexecJson.Write(w, sick)));
        Assert.Equal("q", doc.RootElement.GetProperty("quarantined")[0].GetProperty("name").GetString());
    }

    [Fact]
    public void AnOrderlyRebootConfirmsMarkersNotYetDue()
    {
        using var t = Host();
        var s = Safety(t);
        s.MarkLoading(Patch(t, "p"), TimeSpan.FromSeconds(600), 0);
        Assert.Single(s.Confirm(wait: false, orderlyReboot: true).Confirmed);
        Assert.Empty(s.Report().Pending);
    }

    [Fact]
    public void InstallRefusesTheQuarantinedBuildUnlessForcedAndUninstallLiftsIt()
    {
        var m = BuiltModules.Get();
        using var t = Host();
        Directory.CreateDirectory(Path.Combine(t.Root, "sys/kernel/livepatch"));
        var store = new PatchStore(t.Paths) { RequireRoot = false };
        var s = Safety(t);
        var installed = store.Install(m["lg-crash.ko"]);
        s.MarkLoading(installed, TimeSpan.FromSeconds(60), 0);
        Boot(t, "boot-b", uptime: 5);
        s.SettlePreviousBoot(Release);

        Assert.Equal(KexecErrors.InstallQuarantined, Assert.Throws<LivegraftException>(() => store.Install(m["lg-crash.ko"])).Diagnostics[0].Id);
        var notes = new List<string>();
        var again = store.Install(m["lg-crash.ko"], force: true, notes.Add);
        Assert.Contains(KexecErrors.QuarantineLifted, Assert.Single(notes), StringComparison.Ordinal);
        Assert.Null(s.Quarantine(Release, "lg_crash"));

        s.MarkLoading(again, TimeSpan.FromSeconds(60), 0);
        Boot(t, "boot-c", uptime: 5);
        s.SettlePreviousBoot(Release);
        store.Uninstall("lg_crash");
        Assert.Empty(s.Report().Quarantined);
    }
}
