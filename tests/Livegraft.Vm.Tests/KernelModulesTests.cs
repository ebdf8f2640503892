using Livegraft.Kernel;

namespace Livegraft.Vm.Tests;

public sealed class KernelModulesTests
{
    private static readonly Lazy<KernelModules> Reference = new(() =>
    {
        KernelTarget.Reference.EnsureImage();
        return new KernelModules(KernelTarget.Reference.ModulesDirectory);
    });

    [Theory]
    [InlineData("dummy", "dummy")]
    // virtio itself depends on virtio_ring, so the ring loads first.
    [InlineData("virtio_blk", "virtio_ring virtio virtio_blk")]
    [InlineData("virtio-blk", "virtio_ring virtio virtio_blk")]
    [InlineData("virtio_pci", "virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio virtio_pci")]
    public void Resolves_hard_dependencies_in_load_order(string module, string expected) =>
        Assert.Equal(expected.Split(' '), Reference.Value.Resolve(module, includeSoft: false));

    [Fact]
    public void Ext4_pulls_its_crc32c_softdep()
    {
        var order = Reference.Value.Resolve("ext4");
        Assert.Equal("ext4", order[^1]);
        foreach (var m in new[] { "jbd2", "mbcache", "crc16", "crc32c_generic" })
            Assert.Contains(m, order);
        AssertTopological(Reference.Value, order);
    }

    [Theory]
    [InlineData("kernel/crypto/crc32c-intel.ko", "crc32c_intel")]
    [InlineData("kernel/fs/ext4/ext4.ko.xz", "ext4")]
    [InlineData("virtio-blk", "virtio_blk")]
    public void Names_normalise(string input, string expected) => Assert.Equal(expected, KernelModules.NameOf(input));

    [Fact]
    public void Missing_module_is_LG0704()
    {
        var e = Assert.Throws<LivegraftException>(() => Reference.Value.Resolve("no_such_module_xyz"));
        Assert.Equal("LG0704", e.Diagnostics[0].Id);
    }

    [Fact]
    public void Builtins_are_known()
    {
        // CONFIG_SERIAL_8250=y
        Assert.True(Reference.Value.IsBuiltin("8250"));
        Assert.Null(Reference.Value.FindPath("8250"));
    }

    [Fact]
    public void Uses_modules_dep_when_depmod_wrote_one()
    {
        var dir = Directory.CreateTempSubdirectory("livegraft-moddep-test-").FullName;
        try
        {
            foreach (var m in new[] { "kernel/a/top.ko", "kernel/b/mid-dle.ko", "kernel/c/base.ko" })
            {
                Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(dir, m))!);
                File.WriteAllBytes(Path.Combine(dir, m), []);
            }
            File.WriteAllText(Path.Combine(dir, "modules.dep"),
                "kernel/a/top.ko: kernel/b/mid-dle.ko kernel/c/base.ko\nkernel/b/mid-dle.ko: kernel/c/base.ko\nkernel/c/base.ko:\n");
            var modules = new KernelModules(dir);
            Assert.Equal(["base", "mid_dle", "top"], modules.Resolve("top", includeSoft: false));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Host_executable_libraries_come_from_ldd()
    {
        var libs = InitramfsBuilder.SharedLibraries("/usr/bin/xz");
        Assert.Contains(libs, l => l.EndsWith("/libc.so.6", StringComparison.Ordinal));
        Assert.Contains(libs, l => l.Contains("ld-linux-x86-64.so.2", StringComparison.Ordinal));
        Assert.Empty(InitramfsBuilder.SharedLibraries("/bin/busybox"));
    }

    private static void AssertTopological(KernelModules modules, IReadOnlyList<string> order)
    {
        for (var i = 0; i < order.Count; i++)
            foreach (var dep in modules.DirectDependencies(order[i]))
                Assert.True(order.Take(i).Contains(dep), $"{dep} must load before {order[i]}");
    }
}
