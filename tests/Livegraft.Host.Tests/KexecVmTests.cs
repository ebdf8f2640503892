using System.Text.Json;
using Livegraft.Kernel;
using Livegraft.Vm;

namespace Livegraft.Host.Tests;

/// <summary>
/// One guest for the kexec and boot-safety acceptance: booted on the reference kernel with a
/// persistent state disk at /var/lib/livegraft, and /boot (a second disk) holding 6.1.0-56-amd64
/// and 6.1.0-57-amd64, each with the session's initramfs as its initrd. The guest has no systemd, so
/// an init hook plays the boot units' part: <c>load-installed</c>, then <c>confirm-boot</c> in the
/// background. A case that leaves the guest on another kernel, with kexec disabled, or crashed gets
/// a fresh boot from the next <see cref="Reset"/>.
/// </summary>
public sealed class KexecVm : IDisposable
{
    /// <summary>The newer release the guest kexecs into.</summary>
    public const string NewRelease = "6.1.0-57-amd64";

    /// <summary>Healthy window the boot hook configures (short, so a case sees confirm-boot act).</summary>
    public const int HealthySeconds = 5;

    private static readonly string BootHook = $"""
        modprobe ext4
        mkdir -p /var/lib/livegraft
        if mount -t ext4 /dev/vda /var/lib/livegraft; then
            livegraft load-installed --healthy-after {HealthySeconds}s >/run/livegraft-boot.log 2>&1
            livegraft confirm-boot >/run/livegraft-confirm.log 2>&1 &
        fi
        true
        """;

    private readonly string _dir;
    private readonly VmSession _vm;

    public KexecVm()
    {
        var bin = TestPaths.NativeLivegraft;
        if (!File.Exists(bin))
            Assert.Fail($"no NativeAOT livegraft at {bin} (run make publish or set LIVEGRAFT_BIN)");
        var modules = BuiltModules.Get();
        KernelTarget.Reference.EnsureImage();
        var next = new KernelTarget(NewRelease);
        next.EnsureImage();
        _dir = Directory.CreateTempSubdirectory("livegraft-kexec-").FullName;
        var disk = Path.Combine(_dir, "state.img");
        DiskImage.CreateExt4(disk, 64);
        var options = new VmOptions(KernelTarget.Reference) { LivegraftBinary = bin, CommandTimeout = TimeSpan.FromSeconds(180) };
        options.Disks.Add(disk);
        options.BootImages.Add(next);
        foreach (var ko in new[] { "lg-crash.ko", "lg-second.ko" })
            options.Files.Add(new GuestFile(modules[ko], "/root/patches/" + ko, 0x1A4));
        options.ConfigureInitramfs = b => b.AddInitHook("50-livegraft", BootHook);
        _vm = VmSession.Start(options);
    }

    public VmSession Vm => _vm;

    /// <summary>Back to a fresh-enough guest: the reference kernel with kexec allowed, running (a crashed
    /// or kexec'd guest is booted again), nothing loaded, installed or quarantined.</summary>
    public void Reset()
    {
        if (!_vm.IsRunning || _vm.Run("[ \"$(uname -r)\" = " + KernelTarget.ReferenceRelease + " ] && [ \"$(cat /proc/sys/kernel/kexec_load_disabled)\" = 0 ]").ExitCode != 0)
            _vm.Reboot();
        _vm.RunChecked("while pidof livegraft >/dev/null; do sleep 0.2; done; livegraft unload --all >/dev/null 2>&1; " +
            "for p in lg_crash lg_second; do livegraft uninstall $p >/dev/null 2>&1; done; " +
            "rm -rf /var/lib/livegraft/boot-safety /var/lib/livegraft/kexec-reboot; sync");
    }

    public void Dispose()
    {
        _vm.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}

[CollectionDefinition("kexec-vm", DisableParallelization = true)]
public sealed class KexecVmCollection : ICollectionFixture<KexecVm>;

/// <summary>Acceptance of issue #13 in the VM: kexec into the newer kernel keeps the command line and
/// the disk; refusals reboot nothing; a patch that crashed the boot is quarantined.</summary>
[Collection("kexec-vm")]
public sealed class KexecVmTests
{
    private readonly KexecVm _host;

    public KexecVmTests(KexecVm host)
    {
        _host = host;
        host.Reset();
    }

    private VmSession Vm => _host.Vm;

    private string Sh(string command) => Vm.RunChecked(command).Trim();

    /// <summary>Runs livegraft with --json, stderr to a file; returns the exit code and the one document.</summary>
    private (int Exit, JsonElement Json) Lg(string args)
    {
        var r = Vm.Run($"livegraft {args} --json 2>/tmp/lg.err");
        try
        {
            return (r.ExitCode, JsonDocument.Parse(r.Output).RootElement.Clone());
        }
        catch (JsonException e)
        {
            Assert.Fail($"livegraft {args}: stdout is not one JSON document ({e.Message}):\n{r.Output}\nstderr:\n{Vm.Run("cat /tmp/lg.err").Output}");
            throw;
        }
    }

    private static string Id(JsonElement doc) => doc.GetProperty("diagnostics")[0].GetProperty("id").GetString()!;

    [Fact]
    public void KexecBootsTheNewKernelWithTheSameCommandLineAndTheDiskIntact()
    {
        var cmdline = Sh("cat /proc/cmdline");
        var bootId = Sh("cat /proc/sys/kernel/random/boot_id");
        var token = Guid.NewGuid().ToString("N");
        Sh($"echo {token} > /var/lib/livegraft/keep.txt");

        var dry = Lg($"reboot --kexec --kernel {KexecVm.NewRelease} --dry-run");
        Assert.Equal(0, dry.Exit);
        Assert.Equal(KexecVm.NewRelease, dry.Json.GetProperty("kernel").GetProperty("release").GetString());
        Assert.Equal("/boot/vmlinuz-" + KexecVm.NewRelease, dry.Json.GetProperty("kernel").GetProperty("image").GetString());
        Assert.Equal("/boot/initrd.img-" + KexecVm.NewRelease, dry.Json.GetProperty("initrd").GetProperty("file").GetString());
        Assert.Equal(cmdline, dry.Json.GetProperty("commandLine").GetString());
        Assert.Equal("reboot-syscall", dry.Json.GetProperty("method").GetString());
        Assert.False(dry.Json.GetProperty("loaded").GetBoolean());
        Assert.Equal("0", Sh("cat /sys/kernel/kexec_loaded"));
        // Without --kernel: the newest installed image of the flavour.
        Assert.Equal(KexecVm.NewRelease, Lg("reboot --kexec --dry-run").Json.GetProperty("kernel").GetProperty("release").GetString());

        var r = Vm.RunRebooting($"livegraft reboot --kexec --kernel {KexecVm.NewRelease} --json >/var/lib/livegraft/reboot.json 2>/var/lib/livegraft/reboot.err");
        Assert.True(r.Rebooted, $"no reboot (exit {r.ExitCode}): {r.Output}\n{Vm.Run("cat /var/lib/livegraft/reboot.err").Output}");

        Assert.Equal(KexecVm.NewRelease, Sh("uname -r"));
        Assert.Equal(cmdline, Sh("cat /proc/cmdline"));
        Assert.NotEqual(bootId, Sh("cat /proc/sys/kernel/random/boot_id"));
        Assert.Equal(token, Sh("cat /var/lib/livegraft/keep.txt"));
        var printed = JsonDocument.Parse(Sh("cat /var/lib/livegraft/reboot.json")).RootElement;
        Assert.True(printed.GetProperty("loaded").GetBoolean());
        Assert.True(printed.GetProperty("rebooting").GetBoolean());
        Assert.Equal(bootId, printed.GetProperty("running").GetProperty("bootId").GetString());

        var status = Lg("status");
        Assert.Equal(KexecVm.NewRelease, status.Json.GetProperty("kernel").GetProperty("release").GetString());
        var last = status.Json.GetProperty("kexec").GetProperty("lastReboot");
        Assert.Equal((KernelTarget.ReferenceRelease, KexecVm.NewRelease), (last.GetProperty("fromRelease").GetString(), last.GetProperty("toRelease").GetString()));
        Assert.True(last.GetProperty("arrived").GetBoolean());
    }

    [Fact]
    public void AMissingImageOrKexecDisabledAtBootIsRefusedAndNothingReboots()
    {
        var bootId = Sh("cat /proc/sys/kernel/random/boot_id");
        var missing = Vm.RunRebooting("livegraft reboot --kexec --kernel 6.1.0-99-amd64 --json 2>/dev/null");
        Assert.False(missing.Rebooted);
        Assert.Equal(2, missing.ExitCode);
        Assert.Equal("LG0640", Id(JsonDocument.Parse(missing.Output).RootElement));
        Assert.Equal(bootId, Sh("cat /proc/sys/kernel/random/boot_id"));

        // Boot the reference kernel again, by kexec with a whole new command line (and so a fresh nonce),
        // with kexec disabled from the start: sysctl.kernel.kexec_load_disabled=1.
        var nonce = VmSession.NewNonce();
        var commandLine = Vm.KernelCommandLine(nonce) + " sysctl.kernel.kexec_load_disabled=1";
        var r = Vm.RunRebooting($"livegraft reboot --kexec --kernel {KernelTarget.ReferenceRelease} --append '{commandLine}' >/dev/null 2>&1", nonce);
        Assert.True(r.Rebooted, $"no reboot (exit {r.ExitCode}): {r.Output}");
        Assert.Equal(commandLine, Sh("cat /proc/cmdline"));
        Assert.Equal("1", Sh("cat /proc/sys/kernel/kexec_load_disabled"));
        var disabledBoot = Sh("cat /proc/sys/kernel/random/boot_id");

        var refused = Vm.RunRebooting($"livegraft reboot --kexec --kernel {KexecVm.NewRelease} --json 2>/tmp/lg.err");
        Assert.False(refused.Rebooted);
        Assert.Equal(3, refused.ExitCode);
        Assert.Equal("LG0645", Id(JsonDocument.Parse(refused.Output).RootElement));
        Assert.Contains("kexec_load_disabled", Sh("cat /tmp/lg.err"), StringComparison.Ordinal);
        Assert.Equal((KernelTarget.ReferenceRelease, disabledBoot, "0"),
            (Sh("uname -r"), Sh("cat /proc/sys/kernel/random/boot_id"), Sh("cat /sys/kernel/kexec_loaded")));
        var status = Lg("status").Json.GetProperty("kexec");
        Assert.True(status.GetProperty("loadDisabled").GetBoolean());
    }

    [Fact]
    public void APatchThatCrashedTheBootIsNotLoadedAgainUntilForced()
    {
        try
        {
            CrashedPatchIsQuarantined();
        }
        finally
        {
            // Never leave the crashing patch installed: the next boot of the shared guest would panic.
            if (Vm.IsRunning)
                Vm.Run("livegraft uninstall lg_crash >/dev/null 2>&1; sync");
        }
    }

    private void CrashedPatchIsQuarantined()
    {
        Sh("livegraft install /root/patches/lg-second.ko && livegraft install /root/patches/lg-crash.ko && sync");
        // The next boot's load-installed loads lg_second, then lg_crash, whose post_patch callback panics.
        var crash = Assert.Throws<LivegraftException>(() => Vm.Reboot());
        Assert.Equal("LG0702", crash.Diagnostics[0].Id);
        Assert.Contains("lg_crash: deliberate crash", Vm.ConsoleLog, StringComparison.Ordinal);

        Vm.Reboot();
        Assert.Equal("1", Sh("cat /sys/kernel/livepatch/lg_second/enabled"));
        Assert.Equal("absent", Sh("[ -e /sys/kernel/livepatch/lg_crash ] && echo present || echo absent"));
        var boot = Sh("cat /run/livegraft-boot.log");
        Assert.Contains("LG0655", boot, StringComparison.Ordinal);
        Assert.Contains("lg_crash: quarantined", boot, StringComparison.Ordinal);

        var status = Lg("status");
        var q = Assert.Single(status.Json.GetProperty("bootSafety").GetProperty("quarantined").EnumerateArray());
        Assert.Equal("lg_crash", q.GetProperty("name").GetString());
        Assert.Contains("being loaded", q.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.StartsWith("livegraft install --force /var/lib/livegraft/", q.GetProperty("retry").GetString(), StringComparison.Ordinal);
        Assert.Contains("quarantined: lg_crash", Sh("livegraft status"), StringComparison.Ordinal);

        // lg_second was loaded in the boot that crashed, but not blamed; this boot's marker clears
        // once it has stayed up for the healthy window (confirm-boot, started by the boot hook).
        var pending = "";
        for (var i = 0; i < 30; i++)
        {
            pending = Lg("status").Json.GetProperty("bootSafety").GetProperty("pending").ToString();
            if (pending == "[]")
                break;
            Thread.Sleep(1000);
        }
        Assert.Equal("[]", pending);
        Assert.Contains("boot confirmed healthy for lg_second", Sh("cat /run/livegraft-confirm.log"), StringComparison.Ordinal);

        var again = Lg("install /root/patches/lg-crash.ko");
        Assert.Equal((2, "LG0657"), (again.Exit, Id(again.Json)));
        Assert.Equal(0, Lg("install --force /root/patches/lg-crash.ko").Exit);
        Assert.Empty(Lg("status").Json.GetProperty("bootSafety").GetProperty("quarantined").EnumerateArray());
    }
}
