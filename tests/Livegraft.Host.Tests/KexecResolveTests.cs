using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Livegraft.Host.Kexec;
using Livegraft.Kernel;

namespace Livegraft.Host.Tests;

/// <summary>Resolving a kexec reboot over a temporary /boot and /proc: images, flavours, initrd and
/// command line, and the refusals that come before anything is loaded. The load and the reboot
/// themselves run in the VM (<see cref="KexecVmTests"/>).</summary>
public sealed class KexecResolveTests
{
    private const string Running = "6.1.0-56-amd64";

    /// <summary>The first 4 KiB of an x86-64 bzImage whose setup header names <paramref name="release"/>
    /// (Documentation/x86/boot.rst: boot_flag, "HdrS", protocol 2.15, kernel_version, xloadflags).</summary>
    internal static byte[] FakeImage(string release, ushort protocol = 0x020F, ushort xloadflags = 0x3)
    {
        var image = new byte[4096];
        image[0x1F1] = 4;
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(0x1FE), 0xAA55);
        "HdrS"u8.CopyTo(image.AsSpan(0x202));
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(0x206), protocol);
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(0x20E), 0x200);
        image[0x211] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(0x236), xloadflags);
        Encoding.ASCII.GetBytes(release + " (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian\0").CopyTo(image.AsSpan(0x400));
        return image;
    }

    private static TempTree Host(string cmdline = "BOOT_IMAGE=/boot/vmlinuz-6.1.0-56-amd64 root=/dev/vda1 ro quiet", params string[] images)
    {
        var t = new TempTree();
        t.Write("proc/sys/kernel/osrelease", Running + "\n");
        t.Write("proc/cmdline", cmdline + "\n");
        t.Write("proc/sys/kernel/random/boot_id", "11111111-2222-3333-4444-555555555555\n");
        t.Write("proc/1/comm", "init\n");
        t.Write("sys/kernel/kexec_loaded", "0\n");
        t.Write("proc/sys/kernel/kexec_load_disabled", "0\n");
        foreach (var release in images)
        {
            t.Write($"boot/vmlinuz-{release}", FakeImage(release));
            t.Write($"boot/initrd.img-{release}", "initrd");
        }
        return t;
    }

    private static HostPaths Paths(TempTree t) => t.Paths with { Boot = Path.Combine(t.Root, "boot") };

    private static string Refusal(TempTree t, KexecRequest request) =>
        Assert.Throws<LivegraftException>(() => new KexecReboot(Paths(t)).Resolve(request)).Diagnostics[0].Id;

    [Theory]
    [InlineData("6.1.0-56-amd64", "amd64")]
    [InlineData("6.1.0-57-cloud-amd64", "cloud-amd64")]
    [InlineData("6.1.0-57-rt-amd64", "rt-amd64")]
    [InlineData("5.15.0-91-generic", "generic")]
    [InlineData("6.18.44-fc-v669", "fc-v669")]
    [InlineData("6.1.0", "")]
    public void FlavourIsTheReleaseWithoutVersionAndAbi(string release, string flavour) =>
        Assert.Equal(flavour, KernelRelease.Flavour(release));

    [Fact]
    public void ReleasesOrderByVersionThenAbi()
    {
        string[] sorted = ["6.1.0-9-amd64", "6.1.0-10-amd64", "6.1.0-56-amd64", "6.1.0-57-amd64", "6.10.0-1-amd64"];
        Assert.Equal(sorted, sorted.Reverse().Order(Comparer<string>.Create(KernelRelease.Compare)));
    }

    [Fact]
    public void TheReferenceImageHeaderNamesItsRelease()
    {
        KernelTarget.Reference.EnsureImage();
        var image = BootImage.Read(KernelTarget.Reference.KernelImage);
        Assert.Equal(KernelTarget.ReferenceRelease, image.Release);
        Assert.StartsWith(KernelTarget.ReferenceRelease + " (debian-kernel@lists.debian.org)", image.Version, StringComparison.Ordinal);
    }

    [Fact]
    public void DefaultIsTheNewestImageOfTheRunningFlavourWithItsInitrdAndTheRunningCommandLine()
    {
        using var t = Host(images: ["6.1.0-56-amd64", "6.1.0-57-amd64", "6.1.0-58-cloud-amd64", "6.1.0-9-amd64"]);
        var plan = new KexecReboot(Paths(t)).Resolve(new KexecRequest());
        Assert.Equal("6.1.0-57-amd64", plan.Image.Release);
        Assert.Equal(Path.Combine(t.Root, "boot", "initrd.img-6.1.0-57-amd64"), plan.Initrd);
        Assert.Equal(CommandLineSource.Running, plan.Source);
        // The bootloader's BOOT_IMAGE= follows the new release; the rest is the running command line.
        Assert.Equal("BOOT_IMAGE=/boot/vmlinuz-6.1.0-57-amd64 root=/dev/vda1 ro quiet", plan.CommandLine);
        Assert.Equal(RebootMethod.RebootSyscall, plan.Method);
        Assert.Empty(plan.Diagnostics);
    }

    [Fact]
    public void CommandLineIsGivenReusedOrBoth()
    {
        using var t = Host("console=ttyS0 quiet", "6.1.0-57-amd64");
        var kexec = new KexecReboot(Paths(t));
        Assert.Equal("console=ttyS0 quiet", kexec.Resolve(new KexecRequest { ReuseCommandLine = true }).CommandLine);
        var given = kexec.Resolve(new KexecRequest { Append = "console=ttyS1" });
        Assert.Equal(("console=ttyS1", CommandLineSource.Given), (given.CommandLine, given.Source));
        var both = kexec.Resolve(new KexecRequest { Append = "sysctl.kernel.kexec_load_disabled=1", ReuseCommandLine = true });
        Assert.Equal(("console=ttyS0 quiet sysctl.kernel.kexec_load_disabled=1", CommandLineSource.RunningAppended), (both.CommandLine, both.Source));
        Assert.Equal(KexecErrors.BadCommandLine, Refusal(t, new KexecRequest { Append = new string('x', 2048) }));
        Assert.Equal(KexecErrors.BadCommandLine, Refusal(t, new KexecRequest { Append = "a\nb" }));
    }

    [Fact]
    public void ReleaseOrPathMustExistBeABzImageOfTheFlavourAndBeWhatItsNameSays()
    {
        using var t = Host(images: ["6.1.0-57-amd64"]);
        Assert.Equal(KexecErrors.ImageMissing, Refusal(t, new KexecRequest { Kernel = "6.1.0-99-amd64" }));
        Assert.Equal(KexecErrors.ImageMissing, Refusal(t, new KexecRequest { Kernel = Path.Combine(t.Root, "nope", "vmlinuz") }));
        var cloud = t.Write("other/vmlinuz-6.1.0-57-cloud-amd64", FakeImage("6.1.0-57-cloud-amd64"));
        Assert.Equal(KexecErrors.FlavourMismatch, Refusal(t, new KexecRequest { Kernel = cloud }));
        var renamed = t.Write("other/vmlinuz-6.1.0-58-amd64", FakeImage("6.1.0-57-amd64"));
        Assert.Equal(KexecErrors.ReleaseMismatch, Refusal(t, new KexecRequest { Kernel = renamed }));
        t.Write("boot/vmlinuz-6.1.0-59-amd64", FakeImage("6.1.0-57-amd64"));
        Assert.Equal(KexecErrors.ReleaseMismatch, Refusal(t, new KexecRequest { Kernel = "6.1.0-59-amd64" }));
        var text = t.Write("other/notes.txt", "not a kernel");
        Assert.Equal(KexecErrors.NotBootable, Refusal(t, new KexecRequest { Kernel = text }));
        var old = t.Write("other/old-kernel", FakeImage("6.1.0-57-amd64", protocol: 0x020A));
        Assert.Equal(KexecErrors.NotBootable, Refusal(t, new KexecRequest { Kernel = old }));
        var i386 = t.Write("other/i386-kernel", FakeImage("6.1.0-57-686", xloadflags: 0));
        Assert.Equal(KexecErrors.NotBootable, Refusal(t, new KexecRequest { Kernel = i386 }));
        Assert.Equal(KexecErrors.InitrdMissing, Refusal(t, new KexecRequest { Initrd = Path.Combine(t.Root, "none.img") }));

        // A path to a good image of the flavour, without an initrd beside it: a warning, no refusal.
        var plain = t.Write("other/bzImage", FakeImage("6.1.0-60-amd64"));
        var plan = new KexecReboot(Paths(t)).Resolve(new KexecRequest { Kernel = plain });
        Assert.Null(plan.Initrd);
        Assert.Equal(KexecErrors.NoInitrd, Assert.Single(plan.Diagnostics).Id);
    }

    [Fact]
    public void NoImageOfTheFlavourIsRefused()
    {
        using var t = Host(images: ["6.1.0-58-cloud-amd64"]);
        Assert.Equal(KexecErrors.NoImageOfFlavour, Refusal(t, new KexecRequest()));
    }

    [Fact]
    public void DryRunRefusesAKernelWithoutKexecOrWithKexecDisabledAndWritesOneDocument()
    {
        using var t = Host(images: ["6.1.0-57-amd64"]);
        var kexec = new KexecReboot(Paths(t)) { RequireRoot = false };
        var rendered = new List<KexecResult>();
        var result = kexec.Run(new KexecRequest { DryRun = true }, rendered.Add);
        Assert.Same(result, Assert.Single(rendered));
        Assert.False(result.Loaded);
        Assert.False(result.Rebooting);
        using var doc = JsonDocument.Parse(Json.ToText(w => KexecJson.Write(w, result)));
        Assert.Equal("6.1.0-57-amd64", doc.RootElement.GetProperty("kernel").GetProperty("release").GetString());
        Assert.Equal("amd64", doc.RootElement.GetProperty("running").GetProperty("flavour").GetString());
        Assert.Equal("reboot-syscall", doc.RootElement.GetProperty("method").GetString());

        File.WriteAllText(Path.Combine(t.Root, "proc/sys/kernel/kexec_load_disabled"), "1\n");
        Assert.Equal(KexecErrors.KexecDisabled,
            Assert.Throws<LivegraftException>(() => kexec.Run(new KexecRequest { DryRun = true }, _ => Assert.Fail("rendered"))).Diagnostics[0].Id);
        File.Delete(Path.Combine(t.Root, "sys/kernel/kexec_loaded"));
        Assert.Equal(KexecErrors.NoKexecSupport,
            Assert.Throws<LivegraftException>(() => kexec.Run(new KexecRequest { DryRun = true }, _ => Assert.Fail("rendered"))).Diagnostics[0].Id);
    }
}
