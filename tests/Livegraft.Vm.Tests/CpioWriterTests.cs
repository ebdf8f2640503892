using System.IO.Compression;
using System.Text;

namespace Livegraft.Vm.Tests;

public sealed class CpioWriterTests
{
    [Fact]
    public void Archive_lists_and_extracts_with_gnu_cpio()
    {
        using var ms = new MemoryStream();
        var w = new CpioWriter(ms);
        w.WriteDirectory("d");
        w.WriteFile("d/a.txt", "alpha\n"u8, 0x1A4);
        w.WriteFile("d/odd-length-name", "12345"u8, 0x1ED);
        w.WriteFile("d/empty", ReadOnlySpan<byte>.Empty);
        w.WriteSymlink("d/link", "a.txt");
        w.WriteCharDevice("d/console", 5, 1);
        w.WriteTrailer();
        Assert.Equal(0, ms.Length % 4);

        var dir = Directory.CreateTempSubdirectory("livegraft-cpio-test-").FullName;
        try
        {
            var archive = Path.Combine(dir, "a.cpio");
            File.WriteAllBytes(archive, ms.ToArray());
            var listing = Cpio(dir, "-itv", "-F", archive);
            Assert.Matches(@"(?m)^drwxr-xr-x .* d$", listing);
            Assert.Matches(@"(?m)^-rw-r--r-- .* 6 .* d/a\.txt$", listing);
            Assert.Matches(@"(?m)^-rwxr-xr-x .* 5 .* d/odd-length-name$", listing);
            Assert.Matches(@"(?m)^lrwxrwxrwx .* d/link -> a\.txt$", listing);
            Assert.Matches(@"(?m)^crw------- .* 5,\s+1 .* d/console$", listing);

            var outDir = Path.Combine(dir, "x");
            Directory.CreateDirectory(outDir);
            Cpio(outDir, "-id", "--no-absolute-filenames", "-F", archive, "d/a.txt", "d/odd-length-name", "d/empty", "d/link");
            Assert.Equal("alpha\n", File.ReadAllText(Path.Combine(outDir, "d/a.txt")));
            Assert.Equal("12345", File.ReadAllText(Path.Combine(outDir, "d/odd-length-name")));
            Assert.Equal(0, new FileInfo(Path.Combine(outDir, "d/empty")).Length);
            Assert.Equal("a.txt", new FileInfo(Path.Combine(outDir, "d/link")).LinkTarget);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Header_fields_follow_newc()
    {
        using var ms = new MemoryStream();
        var w = new CpioWriter(ms);
        w.WriteFile("abc", "xy"u8, 0x1A4);
        var header = Encoding.ASCII.GetString(ms.ToArray(), 0, 110);
        Assert.StartsWith("070701", header, StringComparison.Ordinal);
        Assert.Equal("000081a4", header.Substring(6 + 8, 8)); // c_mode: S_IFREG | 0644
        Assert.Equal("00000002", header.Substring(6 + 6 * 8, 8)); // c_filesize
        Assert.Equal("00000004", header.Substring(6 + 11 * 8, 8)); // c_namesize includes the NUL
        // 110 + 4 = 114 → padded to 116; data 2 → padded to 4.
        Assert.Equal(120, ms.Length);
    }

    [Fact]
    public void Initramfs_puts_parents_first_and_writes_module_indexes()
    {
        Livegraft.Kernel.KernelTarget.Reference.EnsureImage();
        var modules = new KernelModules(Livegraft.Kernel.KernelTarget.Reference.ModulesDirectory);
        var b = InitramfsBuilder.CreateDefault(modules);
        b.AddModule("virtio_blk");
        b.AddText("/opt/deep/dir/file.txt", "x");
        using var gz = new MemoryStream();
        b.WriteTo(gz);
        gz.Position = 0;
        using var cpio = new MemoryStream();
        using (var unzip = new GZipStream(gz, CompressionMode.Decompress))
            unzip.CopyTo(cpio);

        var names = ParseNames(cpio.ToArray());
        Assert.Equal("TRAILER!!!", names[^1]);
        for (var i = 0; i < names.Count - 1; i++)
        {
            var slash = names[i].LastIndexOf('/');
            if (slash > 0)
                Assert.Contains(names[i][..slash], names.Take(i));
        }
        foreach (var expected in new[] { "init", "bin/busybox", "bin/sh", "sbin/modprobe", "dev/console", "opt/deep/dir/file.txt",
                     "lib/modules/6.1.0-56-amd64/modules.dep", "lib/modules/6.1.0-56-amd64/kernel/drivers/block/virtio_blk.ko" })
            Assert.Contains(expected, names);
        var dep = ExtractFile(cpio.ToArray(), "lib/modules/6.1.0-56-amd64/modules.dep");
        Assert.Contains("kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n", dep, StringComparison.Ordinal);
    }

    /// <summary>A minimal newc reader: the test's own oracle for entry order.</summary>
    private static List<string> ParseNames(byte[] data) => Entries(data).Select(e => e.Name).ToList();

    private static string ExtractFile(byte[] data, string name) =>
        Encoding.UTF8.GetString(Entries(data).Single(e => e.Name == name).Data);

    private static IEnumerable<(string Name, byte[] Data)> Entries(byte[] data)
    {
        var pos = 0;
        while (true)
        {
            Assert.Equal("070701", Encoding.ASCII.GetString(data, pos, 6));
            int Field(int i) => Convert.ToInt32(Encoding.ASCII.GetString(data, pos + 6 + i * 8, 8), 16);
            var size = Field(6);
            var nameSize = Field(11);
            var name = Encoding.UTF8.GetString(data, pos + 110, nameSize - 1);
            var dataStart = (pos + 110 + nameSize + 3) & ~3;
            yield return (name, data.AsSpan(dataStart, size).ToArray());
            if (name == "TRAILER!!!")
                yield break;
            pos = (dataStart + size + 3) & ~3;
        }
    }

    private static string Cpio(string workDir, params string[] args)
    {
        var p = ProcessRunner.Run(new ProcessSpec("cpio", args) { WorkingDirectory = workDir });
        Assert.True(p.ExitCode == 0, $"cpio {string.Join(' ', args)}: {p.Stderr}");
        return p.Stdout;
    }
}
