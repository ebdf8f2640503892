using System.Text.Json;
using Livegraft.Kernel;
using Livegraft.Kernel.Build;
using Livegraft.Vm;

namespace Livegraft.Cli.Tests;

/// <summary>
/// Run-pre verification end to end (docs/verify.md): a patch built from code that is not the
/// target's — the right source compiled with another flag, or an older release's source with the
/// target's config and headers — is refused at build time against the real image, and, built with
/// verification skipped, refused at load time inside a VM of the target — by <c>livegraft load</c>'s
/// check of the running code before the kernel sees the module, and by the module's own pre-patch
/// check when loaded behind livegraft's back: never enabled, no module left, the kernel as before.
/// </summary>
public class VerificationEndToEndTests
{
    /// <summary>An extra KCFLAGS flag changes cmdline_proc_show's prologue (a frame pointer the
    /// ORC-unwinder kernel does not have), with the same release string.</summary>
    [Fact]
    public void Patch_compiled_with_another_flag_is_refused_at_build_and_at_load()
    {
        var c = PatchCase.All().Single(p => p.Patch == "01-cmdline-string.patch");
        RefusedAtBuildAndLoad(c, KernelTarget.Reference, "-fno-omit-frame-pointer", "cmdline_proc_show");
    }

    /// <summary>do_task_stat differs between Debian's 6.1.176-1 and 6.1.192-2 sources; the same
    /// patch applies to both, and only the release the kernel was built from may be patched.</summary>
    [Fact]
    public void Patch_built_from_an_older_release_source_is_refused_at_build_and_at_load()
    {
        var c = PatchCase.All().Single(p => p.Patch == "stat-field.patch");
        var older = new KernelTarget(KernelTarget.ReferenceRelease) { SourceOverride = SourceSpec.Resolve("linux-source-6.1=6.1.176-1") };
        RefusedAtBuildAndLoad(c, older, null, "do_task_stat");
    }

    private static void RefusedAtBuildAndLoad(PatchCase c, KernelTarget target, string? kcflags, string function)
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDirectory();
        var output = dir.File("patch.ko");
        var request = new BuildRequest(c.PatchPath, target) { OutputPath = output, ExtraCflags = kcflags };
        var e = Assert.ThrowsAny<LivegraftException>(() => PatchBuilder.Build(request, cancellationToken: ct));
        var mismatch = Assert.Single(e.Diagnostics, d => d.Id == "LG0350");
        Assert.Contains($"'{function}'", mismatch.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));

        var report = PatchBuilder.Build(request with { SkipVerification = true }, cancellationToken: ct);
        Assert.Null(report.Verification);
        Assert.True(report.VerifiedAtLoad > 0);

        var options = new VmOptions(KernelTarget.Reference) { LivegraftBinary = NativeBinary.Path, CommandTimeout = TimeSpan.FromSeconds(120) };
        options.Files.Add(new GuestFile(report.ModulePath, "/root/patch.ko"));
        using var vm = VmSession.Start(options);
        Assert.NotEqual(0, vm.Run(c.Check).ExitCode);

        var tainted = vm.RunChecked("cat /proc/sys/kernel/tainted");

        // livegraft load checks the running code through /proc/kcore before finit_module: the kernel
        // never sees the module (not even the taint an unsigned module brings).
        var load = vm.Run("livegraft load /root/patch.ko --json 2>/dev/null");
        Assert.Equal(4, load.ExitCode);
        using (var doc = JsonDocument.Parse(load.Output))
        {
            Assert.False(doc.RootElement.GetProperty("ok").GetBoolean());
            var refusal = doc.RootElement.GetProperty("diagnostics").EnumerateArray().Single(d => d.GetProperty("id").GetString() == "LG0350");
            Assert.StartsWith($"vmlinux:{function}+0x", refusal.GetProperty("location").GetString(), StringComparison.Ordinal);
        }
        Assert.Equal(tainted, vm.RunChecked("cat /proc/sys/kernel/tainted"));
        AssertUntouched(vm, c, report.ModuleName);

        // The module's own pre-patch check (what protects a kernel in lockdown, or a module object
        // loaded after the patch): loaded behind livegraft's back, it refuses to be enabled.
        Assert.NotEqual(0, vm.Run("insmod /root/patch.ko").ExitCode);
        AssertUntouched(vm, c, report.ModuleName);
        var dmesg = vm.RunChecked("dmesg");
        Assert.Contains($"vmlinux: {function},0+0x", dmesg, StringComparison.Ordinal);
        Assert.Contains("refusing to patch", dmesg, StringComparison.Ordinal);
        Assert.DoesNotContain("BUG:", dmesg, StringComparison.Ordinal);
    }

    /// <summary>No patch registered, the module not loaded, the kernel still behaving as before.</summary>
    private static void AssertUntouched(VmSession vm, PatchCase c, string module)
    {
        Assert.Equal("", vm.RunChecked("ls /sys/kernel/livepatch").Trim());
        Assert.DoesNotContain(module, vm.RunChecked("cat /proc/modules"), StringComparison.Ordinal);
        Assert.NotEqual(0, vm.Run(c.Check).ExitCode);
    }
}
