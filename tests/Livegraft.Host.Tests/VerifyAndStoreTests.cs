using System.Text.Json;

namespace Livegraft.Host.Tests;

public class VerifyAndStoreTests
{
    /// <summary>A fake host tree: release, command line, an empty livepatch directory, the build id note when given.</summary>
    internal static TempTree Host(string release = BuiltModules.Release, string? buildId = null)
    {
        var t = new TempTree();
        t.Write("proc/sys/kernel/osrelease", release + "\n");
        t.Write("proc/cmdline", "console=ttyS0\n");
        Directory.CreateDirectory(Path.Combine(t.Root, "sys/kernel/livepatch"));
        if (buildId is not null)
        {
            var desc = Convert.FromHexString(buildId);
            var note = new byte[12 + 4 + desc.Length];
            BitConverter.TryWriteBytes(note.AsSpan(0), 4);
            BitConverter.TryWriteBytes(note.AsSpan(4), desc.Length);
            BitConverter.TryWriteBytes(note.AsSpan(8), 3);
            "GNU\0"u8.CopyTo(note.AsSpan(12));
            desc.CopyTo(note.AsSpan(16));
            t.Write("sys/kernel/notes", note);
        }
        return t;
    }

    [Fact]
    public void VerifyAcceptsAPatchForTheRunningRelease()
    {
        using var t = Host();
        var (ko, warnings) = new LivepatchManager(t.Paths).Verify(BuiltModules.Get()["lg-sample.ko"]);
        Assert.Equal("lg_sample", ko.Name);
        Assert.Empty(warnings);
    }

    [Fact]
    public void VerifyRefusesAnotherReleaseWithExit4()
    {
        using var t = Host("6.1.0-99-amd64");
        var e = Assert.Throws<LivegraftException>(() => new LivepatchManager(t.Paths).Verify(BuiltModules.Get()["lg-sample.ko"]));
        Assert.Equal("LG0503", e.Diagnostics[0].Id);
        Assert.Equal(ExitCode.VerificationFailed, e.ExitCode);
    }

    [Fact]
    public void VerifyChecksRecordedBuildId()
    {
        var ko = BuiltModules.Get()["lg-buildid.ko"];
        using (var good = Host(buildId: "00112233445566778899aabbccddeeff00112233"))
            Assert.Empty(new LivepatchManager(good.Paths).Verify(ko).Warnings);
        using (var bad = Host(buildId: "ffffffffffffffffffffffffffffffffffffffff"))
        {
            var e = Assert.Throws<LivegraftException>(() => new LivepatchManager(bad.Paths).Verify(ko));
            Assert.Equal("LG0504", e.Diagnostics[0].Id);
            Assert.Equal(ExitCode.VerificationFailed, e.ExitCode);
        }
        using (var unknown = Host())
            Assert.Equal("LG0504", Assert.Single(new LivepatchManager(unknown.Paths).Verify(ko).Warnings).Id);
    }

    [Fact]
    public void VerifyRefusesANonLivepatchModule()
    {
        using var t = Host();
        var e = Assert.Throws<LivegraftException>(() => new LivepatchManager(t.Paths).Verify(BuiltModules.Get()["lg_fixture.ko"]));
        Assert.Equal("LG0502", e.Diagnostics[0].Id);
        Assert.Equal(ExitCode.InvalidInput, e.ExitCode);
    }

    [Fact]
    public void InstallStoresAtomicallyWithSidecarAndEnablesTheUnit()
    {
        var m = BuiltModules.Get();
        using var t = Host();
        var store = new PatchStore(t.Paths) { RequireRoot = false, ExecutablePath = "/usr/bin/livegraft" };
        var first = store.Install(m["lg-sample.ko"]);
        var second = store.Install(m["lg-second.ko"]);
        Assert.Equal(BuiltModules.Release, first.Release);
        Assert.Equal(Path.Combine(t.Paths.State, BuiltModules.Release, "0001-lg_sample.ko"), first.Path);
        Assert.Equal(File.ReadAllBytes(m["lg-sample.ko"]), File.ReadAllBytes(first.Path));
        Assert.Equal($"{first.Sha256}  0001-lg_sample.ko\n", File.ReadAllText(first.Path + ".sha256"));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(first.Path)!, "*.tmp-*"));
        Assert.Equal(["lg_sample", "lg_second"], store.List(BuiltModules.Release).Select(p => p.Name));

        var unit = File.ReadAllText(store.UnitPath);
        Assert.Contains("DefaultDependencies=no", unit);
        Assert.Contains("Before=network-pre.target", unit);
        Assert.Contains("After=local-fs.target", unit);
        Assert.Contains("ConditionKernelCommandLine=!livegraft.enable=0", unit);
        Assert.Contains("ExecStart=/usr/bin/livegraft load-installed", unit);
        Assert.Equal("../livegraft.service", new FileInfo(store.WantsLink).LinkTarget);

        // Reinstalling moves the patch to the end of the order.
        store.Install(m["lg-sample.ko"]);
        Assert.Equal(["lg_second", "lg_sample"], store.List(BuiltModules.Release).Select(p => p.Name));
        Assert.Equal(3, store.List()[^1].Sequence);

        PatchStore.VerifyChecksum(store.List()[0]);
        File.AppendAllText(store.List()[0].Path, "tampered");
        Assert.Equal("LG0530", Assert.Throws<LivegraftException>(() => PatchStore.VerifyChecksum(store.List()[0])).Diagnostics[0].Id);

        Assert.Equal("LG0532", Assert.Throws<LivegraftException>(() => store.Uninstall("nope")).Diagnostics[0].Id);
        store.Uninstall("lg_second");
        Assert.True(File.Exists(store.UnitPath));
        store.Uninstall("lg_sample");
        Assert.Empty(store.List());
        Assert.False(File.Exists(store.UnitPath));
        Assert.False(new FileInfo(store.WantsLink).Exists || new FileInfo(store.WantsLink).LinkTarget is not null);
    }

    [Fact]
    public void InstallKeepsPatchesForOtherReleasesApart()
    {
        var m = BuiltModules.Get();
        using var t = Host("6.1.0-99-amd64");
        var store = new PatchStore(t.Paths) { RequireRoot = false };
        var p = store.Install(m["lg-sample.ko"]);
        Assert.Equal(BuiltModules.Release, p.Release);
        // The running kernel is another release: nothing to load.
        Assert.Empty(store.LoadInstalled(new LivepatchManager(t.Paths), new TransitionOptions()));

        using var doc = JsonDocument.Parse(HostParsingTests.Json(w => HostJson.WriteList(w, [], store.List(), "6.1.0-99-amd64")));
        var installed = doc.RootElement.GetProperty("installed")[0];
        Assert.Equal("lg_sample", installed.GetProperty("name").GetString());
        Assert.False(installed.GetProperty("forRunningKernel").GetBoolean());

        // What the next boot of that release loads (list --json's atBoot, which the fleet's kexec path
        // expects in force after the reboot): a later atomic replace patch that carries lg_sample's fix
        // supersedes it.
        store.Install(m["lg-replace.ko"]);
        var plan = store.BootPlan(BuiltModules.Release);
        Assert.Equal([("lg_sample", "superseded", "lg_replace"), ("lg_replace", "load", null)], plan.Select(e => (e.Patch.Name, e.AtBoot, e.SupersededBy)));
        using var listed = JsonDocument.Parse(HostParsingTests.Json(w => HostJson.WriteList(w, [], store.List(), "6.1.0-99-amd64", plan)));
        Assert.Equal(["superseded", "load"], listed.RootElement.GetProperty("installed").EnumerateArray().Select(e => e.GetProperty("atBoot").GetString()));
        Assert.Equal("lg_replace", listed.RootElement.GetProperty("installed")[0].GetProperty("supersededBy").GetString());
    }

    [Fact]
    public void LoadInstalledHonoursTheKernelCommandLine()
    {
        var m = BuiltModules.Get();
        using var t = Host();
        t.Write("proc/cmdline", "console=ttyS0 livegraft.enable=0\n");
        var store = new PatchStore(t.Paths) { RequireRoot = false };
        store.Install(m["lg-sample.ko"]);
        Assert.Empty(store.LoadInstalled(new LivepatchManager(t.Paths), new TransitionOptions()));
    }

    [Fact]
    public void LoadInstalledRefusesATamperedPatch()
    {
        var m = BuiltModules.Get();
        using var t = Host();
        var store = new PatchStore(t.Paths) { RequireRoot = false };
        var p = store.Install(m["lg-sample.ko"]);
        File.AppendAllText(p.Path, "x");
        var r = Assert.Single(store.LoadInstalled(new LivepatchManager(t.Paths), new TransitionOptions()));
        Assert.Equal(BootAction.Failed, r.Action);
        Assert.Equal("LG0530", r.Diagnostics[0].Id);
    }

    [Fact]
    public void InfoJsonHasStableFields()
    {
        var ko = KernelModuleFile.Read(BuiltModules.Get()["lg-replace.ko"]);
        using var doc = JsonDocument.Parse(HostParsingTests.Json(w => HostJson.Write(w, ko)));
        var root = doc.RootElement;
        Assert.Equal("lg_replace", root.GetProperty("name").GetString());
        Assert.True(root.GetProperty("livepatch").GetBoolean());
        Assert.True(root.GetProperty("replace").GetBoolean());
        Assert.Equal(BuiltModules.Release, root.GetProperty("kernelRelease").GetString());
        Assert.Equal("Y", root.GetProperty("livegraft").GetProperty("replace").GetString());
        Assert.Equal(0, root.GetProperty("klpRelocationCount").GetInt32());
    }
}
