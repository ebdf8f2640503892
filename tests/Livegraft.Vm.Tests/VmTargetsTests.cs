using Livegraft.Kernel;

namespace Livegraft.Vm.Tests;

/// <summary>
/// Every supported release and flavour boots (docs/targets.md): the image is resolved and fetched
/// from the release string alone, the serial console comes up, the modules the guest needs are
/// there or built in (the cloud flavour has fewer drivers), and an attached ext4 disk mounts.
/// </summary>
public sealed class VmTargetsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("livegraft-vm-targets-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("6.1.0-56-amd64")]
    [InlineData("6.1.0-56-cloud-amd64")]
    [InlineData("6.12.117+deb12-amd64")]
    [InlineData("6.12.117+deb12-cloud-amd64")]
    public void TheReleaseBootsWithItsModulesAndADisk(string release)
    {
        var target = new KernelTarget(release);
        target.EnsureImage(Console.Error.WriteLine);
        var seed = Directory.CreateDirectory(Path.Combine(_dir, "seed")).FullName;
        File.WriteAllText(Path.Combine(seed, "hello"), release + "\n");
        var disk = Path.Combine(_dir, "disk.img");
        DiskImage.CreateExt4(disk, 32, seed);
        var options = new VmOptions(target) { CommandTimeout = TimeSpan.FromSeconds(60) };
        options.Modules.Add("binfmt_misc");
        options.Disks.Add(disk);
        using var vm = VmSession.Start(options, Console.Error.WriteLine);
        Assert.Equal(release, vm.RunChecked("uname -r").Trim());
        Assert.Equal(release, vm.RunChecked("mount -t ext4 /dev/vda /mnt && cat /mnt/hello && umount /mnt").Trim());
        vm.RunChecked("modprobe binfmt_misc && grep -q '^binfmt_misc ' /proc/modules");
        // The livepatch core is there (CONFIG_LIVEPATCH) and the running code can be read (/proc/kcore).
        vm.RunChecked("[ -d /sys/kernel/livepatch ] && [ -r /proc/kcore ]");
    }
}
