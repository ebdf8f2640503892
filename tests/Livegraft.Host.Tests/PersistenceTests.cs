using Livegraft.Kernel;
using Livegraft.Vm;

namespace Livegraft.Host.Tests;

/// <summary>
/// Persistence across a reboot: a guest whose /var/lib/livegraft lives on a virtio ext4 disk
/// installs a patch, reboots, and finds it in force again; booted with <c>livegraft.enable=0</c> it
/// is kept but not loaded. The guest has no systemd, so an init hook plays the unit's part
/// (`livegraft load-installed`, early, before anything else runs).
/// </summary>
public sealed class PersistenceTests
{
    private const string BootHook = """
        modprobe virtio_pci 2>/dev/null; modprobe virtio_blk; modprobe ext4
        mkdir -p /var/lib/livegraft
        mount -t ext4 /dev/vda /var/lib/livegraft && livegraft load-installed >/run/livegraft-boot.log 2>&1
        true
        """;

    [Fact]
    public void InstalledPatchIsInForceAfterRebootUnlessDisabledOnTheCommandLine()
    {
        var bin = TestPaths.NativeLivegraft;
        if (!File.Exists(bin))
            Assert.Fail($"no NativeAOT livegraft at {bin} (run make publish or set LIVEGRAFT_BIN)");
        var modules = BuiltModules.Get();
        KernelTarget.Reference.EnsureImage();

        var dir = Directory.CreateTempSubdirectory("livegraft-persist-").FullName;
        try
        {
            var disk = Path.Combine(dir, "state.img");
            DiskImage.CreateExt4(disk, 64);
            VmOptions Options(string? parameters)
            {
                var o = new VmOptions(KernelTarget.Reference) { LivegraftBinary = bin, CommandTimeout = TimeSpan.FromSeconds(180), KernelParameters = parameters };
                o.Disks.Add(disk);
                foreach (var m in new[] { "virtio_pci", "virtio_blk", "ext4" })
                    o.Modules.Add(m);
                o.Files.Add(new GuestFile(modules["lg-second.ko"], "/root/lg-second.ko", 0x1A4));
                o.ConfigureInitramfs = b => b.AddInitHook("50-livegraft", BootHook);
                return o;
            }
            const string Enabled = "cat /sys/kernel/livepatch/lg_second/enabled 2>/dev/null || echo absent";
            var installed = $"ls /var/lib/livegraft/{KernelTarget.ReferenceRelease}";

            using (var vm = VmSession.Start(Options(null)))
            {
                Assert.Equal("absent", vm.RunChecked(Enabled).Trim());
                vm.RunChecked("livegraft install /root/lg-second.ko");
                Assert.Contains("lg_second.ko", vm.RunChecked(installed), StringComparison.Ordinal);
                Assert.Equal("absent", vm.RunChecked(Enabled).Trim()); // install keeps; it does not load
                vm.RunChecked("sync");
                vm.Reboot();
                Assert.Equal("1", vm.RunChecked(Enabled).Trim());
                Assert.Equal("0", vm.RunChecked("cat /sys/kernel/livepatch/lg_second/transition").Trim());
            }
            using (var vm = VmSession.Start(Options("livegraft.enable=0")))
            {
                Assert.Equal("absent", vm.RunChecked(Enabled).Trim());
                Assert.Contains("lg_second.ko", vm.RunChecked(installed), StringComparison.Ordinal);
                Assert.Contains("livegraft.enable=0", vm.RunChecked("cat /run/livegraft-boot.log"), StringComparison.Ordinal);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
