namespace Livegraft.Vm;

/// <summary>Raw disk images for <see cref="VmOptions.Disks"/>: state that survives a guest reboot.</summary>
public static class DiskImage
{
    /// <summary>
    /// Creates a sparse raw image of <paramref name="sizeMiB"/> holding one ext4 file system (no
    /// partition table, so the guest mounts <c>/dev/vda</c> directly), optionally filled from a
    /// host directory with <c>mkfs.ext4 -d</c>. The guest needs virtio_pci, virtio_blk and ext4
    /// (with crc32c for metadata_csum); <see cref="VmSession"/> includes them whenever a disk is attached.
    /// </summary>
    public static void CreateExt4(string path, int sizeMiB = 64, string? populateFrom = null, string label = "livegraft")
    {
        if (sizeMiB < 8)
            throw new LivegraftException(ExitCode.InvalidInput, VmErrors.DiskImage, $"disk of {sizeMiB} MiB is too small for ext4 with a journal");
        using (var f = File.Create(path))
            f.SetLength((long)sizeMiB << 20);
        List<string> args = ["-q", "-F", "-L", label];
        if (populateFrom is not null)
            args.AddRange(["-d", populateFrom]);
        args.Add(path);
        var r = ProcessRunner.Run(new ProcessSpec(ProcessRunner.Find("mkfs.ext4"), args));
        if (r.ExitCode != 0)
        {
            File.Delete(path);
            throw new LivegraftException(ExitCode.HostFailure, VmErrors.DiskImage, $"mkfs.ext4 failed ({r.ExitCode}): {(r.Stderr + r.Stdout).Trim()} (install e2fsprogs)", path);
        }
    }
}
