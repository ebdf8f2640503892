using Livegraft.Diff;
using Livegraft.Kernel;
using Livegraft.Kernel.Build;
using Livegraft.Vm;

namespace Livegraft.Cli.Tests;

/// <summary>
/// Every patch of tests/patches: built with the real pipeline for the reference kernel, loaded into a
/// fresh QEMU guest of that kernel, and its effect observed: the check fails before loading, passes
/// while the patch is enabled (transition 0), and fails again after disabling and unloading.
/// Refused patches must fail the build with the expected diagnostic and leave no module.
/// </summary>
public class PatchesEndToEndTests
{
    public static TheoryData<string> Loadable() => [.. PatchCase.All().Where(c => c.Expectation == "load").Select(c => c.Patch)];

    public static TheoryData<string> Refused() => [.. PatchCase.All().Where(c => c.Expectation is "refuse" or "nochange").Select(c => c.Patch)];

    public static TheoryData<string> BuildOnly() => [.. PatchCase.All().Where(c => c.Expectation == "build").Select(c => c.Patch)];

    /// <summary>The functions the build reports changed (over all units) are exactly the expected ones.</summary>
    private static void AssertChanged(PatchCase c, BuildReport report)
    {
        var notes = report.Units.SelectMany(u => u.Diff.Notes).Select(n => n.Id).ToHashSet(StringComparer.Ordinal);
        foreach (var id in c.Notes)
            Assert.True(notes.Contains(id), $"{c.Patch}: the build reported no {id} (notes: {string.Join(' ', notes)})");
        if (c.Changed is null)
            return;
        var changed = report.Units.SelectMany(u => u.Diff.ChangedFunctions).Distinct().Order(StringComparer.Ordinal).ToList();
        Assert.Equal(c.Changed.Order(StringComparer.Ordinal), changed);
    }

    [Theory]
    [MemberData(nameof(BuildOnly))]
    public void PatchBuildsWithTheExpectedChanges(string patch)
    {
        using var dir = new TempDirectory();
        Build(Case(patch), dir);
    }

    /// <summary>Builds the case's patch into <paramref name="dir"/> and checks the changed functions.</summary>
    private static BuildReport Build(PatchCase c, TempDirectory dir)
    {
        var report = PatchBuilder.Build(new BuildRequest(c.PatchPath, KernelTarget.Reference) { OutputPath = dir.File("patch.ko") }, cancellationToken: TestContext.Current.CancellationToken);
        Assert.True(File.Exists(report.ModulePath));
        AssertChanged(c, report);
        return report;
    }

    private static PatchCase Case(string patch) => PatchCase.All().Single(c => c.Patch == patch);

    private const string GuestHelpers = PatchTrial.GuestHelpers;

    [Theory]
    [MemberData(nameof(Loadable))]
    public void PatchChangesTheRunningKernelAndReverts(string patch)
    {
        var c = Case(patch);
        using var dir = new TempDirectory();
        var report = Build(c, dir);
        var name = report.ModuleName;
        var options = new VmOptions(KernelTarget.Reference) { CommandTimeout = TimeSpan.FromSeconds(120) };
        options.Files.Add(new GuestFile(report.ModulePath, "/root/patch.ko"));
        if (c.Module is not null)
            options.Modules.Add(c.Module);
        foreach (var m in c.Needs)
            options.Modules.Add(m);
        using var vm = VmSession.Start(options);
        vm.RunChecked(GuestHelpers.Replace("\r", "", StringComparison.Ordinal) + "\ntype lp_load >/dev/null");
        var scenarios = c.Module is null ? new[] { "" } : new[] { "module-first", "patch-first" };
        foreach (var scenario in scenarios)
        {
            if (scenario == "module-first")
                vm.RunChecked($"modprobe {c.Module}");
            AssertCheck(vm, c, expected: false, $"before loading{Label(scenario)}");
            var load = vm.Run($"{GuestHelpers}\nlp_load /root/patch.ko {name}");
            Assert.True(load.ExitCode == 0, $"loading {patch} failed: {load.Output}\n{vm.Run("dmesg | tail -30").Output}");
            if (scenario == "patch-first")
                vm.RunChecked($"modprobe {c.Module}");
            AssertCheck(vm, c, expected: true, $"while loaded{Label(scenario)}");
            vm.RunChecked($"{GuestHelpers}\nlp_unload {name}");
            AssertCheck(vm, c, expected: false, $"after unloading{Label(scenario)}");
            if (scenario == "module-first")
                vm.RunChecked($"for m in $(awk '$3 == \"{c.Module}\" {{ print $2 }}' /proc/mounts); do umount $m; done; rmmod {c.Module}");
        }
        var dmesg = vm.Run("dmesg").Output;
        Assert.DoesNotContain("BUG:", dmesg, StringComparison.Ordinal);
        Assert.DoesNotContain("Oops", dmesg, StringComparison.Ordinal);
        if (patch.Contains("callbacks", StringComparison.Ordinal))
            foreach (var kind in new[] { "pre_patch", "post_patch", "pre_unpatch", "post_unpatch" })
                Assert.Contains($"livegraft-test: {kind} callback", dmesg, StringComparison.Ordinal);
    }

    private static string Label(string scenario) => scenario.Length == 0 ? "" : $" ({scenario})";

    private static void AssertCheck(VmSession vm, PatchCase c, bool expected, string when)
    {
        var r = vm.Run(c.Check);
        Assert.True((r.ExitCode == 0) == expected, $"{c.Patch}: check {(expected ? "failed" : "passed")} {when}: {c.Check}\n{r.Output}");
    }

    [Theory]
    [MemberData(nameof(Refused))]
    public void UnsafePatchIsRefusedWithItsReason(string patch)
    {
        var c = Case(patch);
        using var dir = new TempDirectory();
        var e = Assert.Throws<LivegraftException>(() => PatchBuilder.Build(new BuildRequest(c.PatchPath, KernelTarget.Reference) { OutputPath = dir.File("patch.ko") }, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Contains(e.Diagnostics, d => d.Id == (c.Expectation == "nochange" ? DiffErrors.NothingChanged : c.RefusalId));
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }
}
