using System.Text;
using System.Text.Json;
using Livegraft.Kernel;
using Livegraft.Vm;

namespace Livegraft.Host.Tests;

/// <summary>
/// Boots the reference kernel once with the NativeAOT <c>livegraft</c> and the fixture modules in
/// /root/patches. Needs <c>make publish</c> (or <c>LIVEGRAFT_BIN</c>), kernel headers and QEMU;
/// a test using the VM fails when any is missing.
/// </summary>
public sealed class HostVm : IDisposable
{
    /// <summary>An unprivileged account in the guest (uid and gid 1000) for the non-root tests.</summary>
    public const string User = "lgop";

    private readonly VmSession? _vm;

    public HostVm()
    {
        var bin = TestPaths.NativeLivegraft;
        if (!File.Exists(bin))
        {
            Error = $"no NativeAOT livegraft at {bin} (run make publish or set LIVEGRAFT_BIN)";
            return;
        }
        Modules = BuiltModules.Get();
        try
        {
            KernelTarget.Reference.EnsureImage();
            var options = new VmOptions(KernelTarget.Reference)
            {
                LivegraftBinary = bin,
                CommandTimeout = TimeSpan.FromSeconds(180),
                ConfigureInitramfs = b => b.AddUser(User, 1000, 1000),
            };
            foreach (var ko in Directory.GetFiles(Modules.Directory, "*.ko"))
                options.Files.Add(new GuestFile(ko, "/root/patches/" + Path.GetFileName(ko), 0x1A4));
            _vm = VmSession.Start(options);
        }
        catch (LivegraftException e)
        {
            Error = "cannot boot the test VM: " + e.Message;
        }
    }

    public string? Error { get; }

    public BuiltModules? Modules { get; }

    /// <summary>The session; a VM that did not boot fails the test (VM tests are never skipped).</summary>
    public VmSession Vm => _vm ?? throw new InvalidOperationException(Error ?? "no VM");

    /// <summary>Back to a clean guest between tests: no livegraft running, no patch loaded or
    /// installed, the blocking fixture module released and removed.</summary>
    public void Reset() => Vm.Run("echo 1 > /proc/lg_fixture 2>/dev/null; while pidof livegraft >/dev/null; do sleep 0.2; done; " +
        "livegraft unload --all >/dev/null 2>&1; rmmod lg_fixture 2>/dev/null; " +
        "for p in lg_sample lg_second lg_replace; do livegraft uninstall $p >/dev/null 2>&1; done; " +
        "rm -rf /var/lib/livegraft/*; true");

    public void Dispose() => _vm?.Dispose();

    /// <summary>Runs <c>livegraft ARGS --json</c> in the guest (as root, or as <see cref="User"/>) and returns
    /// its exit code, its one JSON document (default when it printed none) and its stderr.</summary>
    public GuestResult Livegraft(string args, bool asUser = false)
    {
        const string Err = "/tmp/lg.err";
        var command = $"livegraft {args} --json 2>{Err}";
        if (asUser)
            command = $"su -s /bin/sh -c '{command}' {User}";
        var r = Vm.Run($"rm -f {Err}; {command}; rc=$?; echo @@ERR@@; cat {Err}; exit $rc");
        var split = r.Output.Split("@@ERR@@");
        var stdout = split[0].Trim();
        var stderr = split.Length > 1 ? split[1].Trim() : "";
        JsonElement json = default;
        if (stdout.Length > 0)
        {
            try
            {
                json = JsonDocument.Parse(stdout).RootElement.Clone();
            }
            catch (JsonException e)
            {
                Assert.Fail($"livegraft {args}: stdout is not one JSON document ({e.Message}):\n{stdout}\nstderr:\n{stderr}");
            }
        }
        return new GuestResult(r.ExitCode, json, stderr);
    }

    /// <summary>Runs a guest shell command that must succeed; returns its trimmed output.</summary>
    public string Sh(string command) => Vm.RunChecked(command).Trim();

    /// <summary>Fails unless <paramref name="r"/> ended with <paramref name="expected"/>, showing what it printed.</summary>
    public static void AssertExit(int expected, GuestResult r) =>
        Assert.True(r.Exit == expected, $"exit {r.Exit}, expected {expected}\nstdout: {(r.Json.ValueKind == JsonValueKind.Undefined ? "" : r.Json.ToString())}\nstderr: {r.Stderr}");
}

/// <summary>What one guest <c>livegraft</c> command did.</summary>
public readonly record struct GuestResult(int Exit, JsonElement Json, string Stderr);

[CollectionDefinition("vm", DisableParallelization = true)]
public sealed class VmCollection : ICollectionFixture<HostVm>;

/// <summary>Acceptance of load, list, status, unload, install and their refusals on the real kernel.</summary>
[Collection("vm")]
public sealed class VmHostTests : IDisposable
{
    private const string Patches = "/root/patches";
    private readonly HostVm _host;

    public VmHostTests(HostVm host)
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

    private static void AssertExit(int expected, GuestResult r) => HostVm.AssertExit(expected, r);

    private string Sh(string command) => _host.Sh(command);

    private static string[] Names(JsonElement doc) =>
        doc.GetProperty("patches").EnumerateArray().Select(p => p.GetProperty("name").GetString()!).ToArray();

    private static string FirstDiagnostic(JsonElement doc) => doc.GetProperty("diagnostics")[0].GetProperty("id").GetString()!;

    private string LoadedModules() => Sh("cut -d' ' -f1 /proc/modules | grep '^lg' || true");

    [Fact]
    public void LoadListStatusUnload()
    {
        var original = Sh("cat /proc/cmdline");
        var load = Lg($"load {Patches}/lg-sample.ko");
        AssertExit(0, load);
        Assert.Equal("patched", load.Json.GetProperty("outcome").GetString());
        Assert.Equal("lg_sample", load.Json.GetProperty("name").GetString());
        Assert.Equal("this has been live patched by lg_sample", Sh("cat /proc/cmdline"));

        var list = Lg("list");
        AssertExit(0, list);
        var patch = Assert.Single(list.Json.GetProperty("patches").EnumerateArray());
        Assert.True(patch.GetProperty("enabled").GetBoolean());
        Assert.False(patch.GetProperty("transition").GetBoolean());
        var obj = Assert.Single(patch.GetProperty("objects").EnumerateArray());
        Assert.Equal("vmlinux", obj.GetProperty("name").GetString());
        Assert.True(obj.GetProperty("patched").GetBoolean());
        var fn = Assert.Single(obj.GetProperty("functions").EnumerateArray());
        Assert.Equal("cmdline_proc_show", fn.GetProperty("name").GetString());
        Assert.Equal(1, fn.GetProperty("sympos").GetInt32());

        var status = Lg("status");
        AssertExit(0, status);
        Assert.Equal("patched", status.Json.GetProperty("verdict").GetString());
        Assert.Equal(KernelTarget.ReferenceRelease + "+lg_sample", status.Json.GetProperty("effectiveVersion").GetString());
        Assert.Contains("K", status.Json.GetProperty("kernel").GetProperty("taintLetters").GetString());
        Assert.Contains("E", status.Json.GetProperty("kernel").GetProperty("taintLetters").GetString());
        Assert.Matches("^[0-9a-f]{40}$", status.Json.GetProperty("kernel").GetProperty("buildId").GetString());

        var unload = Lg("unload lg-sample");
        AssertExit(0, unload);
        Assert.True(unload.Json.GetProperty("patches")[0].GetProperty("unloaded").GetBoolean());
        Assert.Equal(original, Sh("cat /proc/cmdline"));
        Assert.Empty(Names(Lg("list").Json));
        Assert.Equal("", LoadedModules());
        Assert.Equal("none", Lg("status").Json.GetProperty("verdict").GetString());
    }

    [Fact]
    public void StackedPatchesUnloadInReverseOrder()
    {
        AssertExit(0, Lg($"load {Patches}/lg-sample.ko"));
        AssertExit(0, Lg($"load {Patches}/lg-second.ko"));
        Assert.Equal("version live patched by lg_second", Sh("cat /proc/version"));
        Assert.Equal(["lg_sample", "lg_second"], Names(Lg("list").Json));
        Assert.Equal(KernelTarget.ReferenceRelease + "+lg_sample+lg_second", Lg("status").Json.GetProperty("effectiveVersion").GetString());

        var unload = Lg("unload --all");
        AssertExit(0, unload);
        Assert.Equal(["lg_second", "lg_sample"], Names(unload.Json));
        Assert.Equal("", LoadedModules());
        Assert.StartsWith("Linux version", Sh("cat /proc/version"));
    }

    [Fact]
    public void ReplaceThatWouldDropAFixIsRefusedNamingItThenDropDoesIt()
    {
        AssertExit(0, Lg($"load {Patches}/lg-sample.ko"));
        AssertExit(0, Lg($"load {Patches}/lg-second.ko"));
        // lg_replace carries cmdline_proc_show (lg_sample's fix) but not lg_second's version_proc_show.
        var refused = Lg($"load {Patches}/lg-replace.ko");
        AssertExit(2, refused);
        var d = Assert.Single(refused.Json.GetProperty("diagnostics").EnumerateArray());
        Assert.Equal("LG0542", d.GetProperty("id").GetString());
        Assert.Contains("lg_second's fix of vmlinux:version_proc_show", d.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(["lg_sample", "lg_second"], Names(Lg("list").Json));
        Assert.Equal("version live patched by lg_second", Sh("cat /proc/version"));

        var load = Lg($"load {Patches}/lg-replace.ko --drop");
        AssertExit(0, load);
        Assert.Contains(load.Json.GetProperty("diagnostics").EnumerateArray(), x => x.GetProperty("id").GetString() == "LG0543");
        Assert.Equal(["lg_sample", "lg_second"], load.Json.GetProperty("replaced").EnumerateArray().Select(e => e.GetString()).Order());
        Assert.Equal(["lg_replace"], Names(Lg("list").Json));
        Assert.Equal("lg_replace", LoadedModules());
        Assert.Equal("cmdline replaced by lg_replace", Sh("cat /proc/cmdline"));
        // The replace patch does not carry lg_second's change, so /proc/version is the original again.
        Assert.StartsWith("Linux version", Sh("cat /proc/version"));
        AssertExit(0, Lg("unload lg_replace"));
    }

    [Fact]
    public void StalledTransitionIsReportedRevertedThenSucceedsOnceTheBlockerWakes()
    {
        Sh($"insmod {Patches}/lg_fixture.ko");
        // A reader asleep in fixture_block(), in its own session so it outlives this command.
        Sh("setsid sh -c 'cat /proc/lg_fixture > /tmp/blocked.out' </dev/null >/dev/null 2>&1 & sleep 1; true");
        var load = Lg($"load {Patches}/lg-fixture-patch.ko --timeout 4s");
        AssertExit(3, load);
        Assert.Equal("reverted", load.Json.GetProperty("outcome").GetString());
        Assert.Equal("LG0510", load.Json.GetProperty("diagnostics").EnumerateArray().Last().GetProperty("id").GetString());
        var blocker = load.Json.GetProperty("blockers").EnumerateArray().Single(b => b.GetProperty("function").GetString() == "fixture_block");
        Assert.Equal("cat", blocker.GetProperty("comm").GetString());
        Assert.Contains("fixture_block", load.Stderr);
        // Reverted and removed; the system still works.
        Assert.Equal("lg_fixture", LoadedModules());
        Assert.Empty(Names(Lg("list").Json));
        Assert.Equal("none", Lg("status").Json.GetProperty("verdict").GetString());
        Assert.Equal("", Sh("cat /tmp/blocked.out"));

        Sh("echo 1 > /proc/lg_fixture; sleep 1");
        Assert.Equal("value 1", Sh("cat /tmp/blocked.out"));
        var again = Lg($"load {Patches}/lg-fixture-patch.ko --timeout 20s");
        AssertExit(0, again);
        Assert.Equal("value 2", Sh("cat /proc/lg_fixture"));
        AssertExit(0, Lg("unload lg_fixture_patch"));
        Assert.Equal("value 1", Sh("cat /proc/lg_fixture"));
    }

    [Fact]
    public void WrongKernelIsRefusedWithExit4BeforeLoading()
    {
        var bytes = File.ReadAllBytes(_host.Modules!["lg-sample.ko"]);
        var from = Encoding.ASCII.GetBytes(KernelTarget.ReferenceRelease);
        var to = Encoding.ASCII.GetBytes("6.1.0-99-amd64");
        Assert.Equal(from.Length, to.Length);
        var replaced = 0;
        for (var i = bytes.AsSpan().IndexOf(from); i >= 0; i = bytes.AsSpan().IndexOf(from))
        {
            to.CopyTo(bytes, i);
            replaced++;
        }
        Assert.True(replaced >= 1);
        _host.Vm.PutFile("/root/wrong-kernel.ko", bytes);

        var wrong = Lg("load /root/wrong-kernel.ko");
        AssertExit(4, wrong);
        Assert.Equal("LG0503", FirstDiagnostic(wrong.Json));
        var buildId = Lg($"load {Patches}/lg-buildid.ko");
        AssertExit(4, buildId);
        Assert.Equal("LG0504", FirstDiagnostic(buildId.Json));
        Assert.Equal("", LoadedModules());
    }

    [Fact]
    public void BadInputsGiveClearErrorsAndLoadNothing()
    {
        _host.Vm.PutFile("/root/truncated.ko", File.ReadAllBytes(_host.Modules!["lg-sample.ko"])[..2000]);
        var truncated = Lg("load /root/truncated.ko");
        AssertExit(2, truncated);
        Assert.Equal("LG0501", FirstDiagnostic(truncated.Json));
        Assert.Contains("/root/truncated.ko", truncated.Stderr);

        var plain = Lg($"load {Patches}/lg_fixture.ko");
        AssertExit(2, plain);
        Assert.Equal("LG0502", FirstDiagnostic(plain.Json));

        var missing = Lg("load /root/nope.ko");
        AssertExit(2, missing);
        Assert.Equal("LG0500", FirstDiagnostic(missing.Json));

        var unknown = Lg("unload lg_nothing");
        AssertExit(2, unknown);
        Assert.Equal("LG0512", FirstDiagnostic(unknown.Json));
        Assert.Equal("", LoadedModules());
    }

    [Fact]
    public void InstalledPatchesLoadInInstallOrder()
    {
        AssertExit(0, Lg($"install {Patches}/lg-second.ko"));
        AssertExit(0, Lg($"install {Patches}/lg-sample.ko"));
        Assert.Equal("../livegraft.service", Sh("readlink /etc/systemd/system/sysinit.target.wants/livegraft.service"));
        Assert.Contains("load-installed", Sh("cat /etc/systemd/system/livegraft.service"));
        Assert.Equal("0001-lg_second.ko\n0001-lg_second.ko.sha256\n0002-lg_sample.ko\n0002-lg_sample.ko.sha256",
            Sh($"ls -1 /var/lib/livegraft/{KernelTarget.ReferenceRelease}"));

        var boot = Lg("load-installed");
        AssertExit(0, boot);
        Assert.Equal(["lg_second", "lg_sample"], Names(boot.Json));
        var list = Lg("list").Json;
        Assert.Equal(["lg_second", "lg_sample"], Names(list));
        Assert.Equal(2, list.GetProperty("installed").GetArrayLength());
        // Idempotent: a second run finds them loaded.
        Assert.All(Lg("load-installed").Json.GetProperty("patches").EnumerateArray(), p => Assert.Equal("already-loaded", p.GetProperty("action").GetString()));

        AssertExit(0, Lg("unload --all"));
        AssertExit(0, Lg("uninstall lg_second"));
        AssertExit(0, Lg("uninstall lg_sample"));
        Assert.Equal("gone", Sh("[ -e /etc/systemd/system/livegraft.service ] && echo present || echo gone"));
    }
}
