using Livegraft.Kernel;

namespace Livegraft.Vm.Tests;

/// <summary>Boots that end badly, disks that outlive a boot, and cleanup.</summary>
public sealed class VmLifecycleTests
{
    public VmLifecycleTests() => KernelTarget.Reference.EnsureImage();

    [Fact]
    public void Disk_contents_survive_reboot_and_a_new_session()
    {
        var dir = Directory.CreateTempSubdirectory("livegraft-disk-test-").FullName;
        try
        {
            var seed = Path.Combine(dir, "seed");
            Directory.CreateDirectory(seed);
            File.WriteAllText(Path.Combine(seed, "from-host.txt"), "seeded\n");
            var disk = Path.Combine(dir, "disk.img");
            DiskImage.CreateExt4(disk, 32, seed);

            var options = new VmOptions(KernelTarget.Reference);
            options.Disks.Add(disk);
            string workDir;
            using (var vm = VmSession.Start(options))
            {
                workDir = Path.GetDirectoryName(vm.InitramfsPath)!;
                vm.RunChecked("mkdir -p /mnt/d && mount -t ext4 /dev/vda /mnt/d");
                Assert.Equal("seeded\n", vm.RunChecked("cat /mnt/d/from-host.txt"));
                vm.RunChecked("echo boot1 > /mnt/d/state && umount /mnt/d");

                vm.Reboot();
                vm.RunChecked("mkdir -p /mnt/d && mount -t ext4 /dev/vda /mnt/d");
                Assert.Equal("boot1\n", vm.RunChecked("cat /mnt/d/state"));
                vm.RunChecked("echo boot2 >> /mnt/d/state && umount /mnt/d");
                Assert.Equal(2, CountOf(vm.ConsoleLog, "@@LG-READY:"));
            }
            Assert.False(Directory.Exists(workDir));

            using (var vm = VmSession.Start(options))
            {
                vm.RunChecked("mkdir -p /mnt/d && mount -t ext4 -o ro /dev/vda /mnt/d");
                Assert.Equal("boot1\nboot2\n", vm.RunChecked("cat /mnt/d/state"));
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Boot_timeout_names_LG0701_and_leaves_nothing_behind()
    {
        var temp = Directory.CreateTempSubdirectory("livegraft-vm-timeout-test-").FullName;
        try
        {
            var options = new VmOptions(KernelTarget.Reference) { BootTimeout = TimeSpan.FromSeconds(1), TempDirectory = temp };
            var e = Assert.Throws<LivegraftException>(() => VmSession.Start(options));
            Assert.Equal("LG0701", e.Diagnostics[0].Id);
            Assert.Equal(ExitCode.HostFailure, e.ExitCode);
            Assert.Empty(Directory.GetFileSystemEntries(temp));
        }
        finally
        {
            Directory.Delete(temp, recursive: true);
        }
    }

    [Fact]
    public void Guest_that_dies_during_boot_gives_LG0702_with_the_console_tail()
    {
        // No such init: the kernel panics, panic=-1 reboots, -no-reboot turns that into an exit.
        var options = new VmOptions(KernelTarget.Reference) { KernelParameters = "rdinit=/no-such-init" };
        var e = Assert.Throws<LivegraftException>(() => VmSession.Start(options));
        Assert.Equal("LG0702", e.Diagnostics[0].Id);
        Assert.Contains("Kernel panic", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Panic_mid_command_and_power_off_end_the_session_with_LG0702_until_reboot()
    {
        using var vm = VmSession.Start(new VmOptions(KernelTarget.Reference));
        // sysrq 'c' calls panic(); panic=-1 and -no-reboot make QEMU exit at once.
        var crash = Assert.Throws<LivegraftException>(() => vm.Run("echo c > /proc/sysrq-trigger"));
        Assert.Equal("LG0702", crash.Diagnostics[0].Id);
        Assert.True(crash.Message.Contains("sysrq triggered crash", StringComparison.Ordinal), crash.Message);
        Assert.False(vm.IsRunning);

        vm.Reboot();
        Assert.Equal("up\n", vm.Run("echo up").Output);
        vm.PowerOff();
        Assert.False(vm.IsRunning);
        var e = Assert.Throws<LivegraftException>(() => vm.Run("true"));
        Assert.Equal("LG0702", e.Diagnostics[0].Id);
    }

    private static int CountOf(string text, string needle)
    {
        var n = 0;
        for (var i = text.IndexOf(needle, StringComparison.Ordinal); i >= 0; i = text.IndexOf(needle, i + 1, StringComparison.Ordinal))
            n++;
        return n;
    }
}
