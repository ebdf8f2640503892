using Livegraft.Diff;
using Livegraft.Kernel;
using Livegraft.Kernel.Build;
using Livegraft.Vm;

namespace Livegraft.Cli.Tests;

/// <summary>
/// Every patch of tests/patches, for one kernel: built with the real pipeline (with only the target
/// release given: its packages are found and fetched by Livegraft), checked at build time against the
/// image, and loaded into one guest of that kernel shared by all cases: the check fails before
/// loading, passes while the patch is enabled (transition 0) and fails again after disabling and
/// unloading; <c>livegraft verify --running</c> and the module's own pre-patch check both find the
/// running code to be what the patch was built from. Refused patches must fail the build with the
/// expected diagnostic and leave no module. A kernel series whose source needs another hunk has its
/// variant in <c>tests/patches/&lt;series&gt;/</c>.
/// </summary>
public abstract class PatchesEndToEndTests(PatchGuest guest)
{
    private KernelTarget Target => guest.Target;

    /// <summary>The functions the build reports changed (over all units) are exactly the expected ones.</summary>
    private void AssertChanged(PatchCase c, BuildReport report)
    {
        var notes = report.Units.SelectMany(u => u.Diff.Notes).Select(n => n.Id).ToHashSet(StringComparer.Ordinal);
        foreach (var id in c.NotesFor(Target))
            Assert.True(notes.Contains(id), $"{c.Patch}: the build reported no {id} (notes: {string.Join(' ', notes)})");
        if (c.Changed is null)
            return;
        var changed = report.Units.SelectMany(u => u.Diff.ChangedFunctions).Distinct().Order(StringComparer.Ordinal).ToList();
        Assert.Equal(c.Changed.Order(StringComparer.Ordinal), changed);
    }

    [Theory]
    [MemberData(nameof(PatchCaseData.BuildOnly), MemberType = typeof(PatchCaseData))]
    public void PatchBuildsWithTheExpectedChanges(string patch)
    {
        using var dir = new TempDirectory();
        Build(Case(patch), dir);
    }

    /// <summary>Builds the case's patch into <paramref name="dir"/>, checks the changed functions and
    /// that build-time verification ran and matched every function.</summary>
    private BuildReport Build(PatchCase c, TempDirectory dir)
    {
        var report = PatchBuilder.Build(new BuildRequest(c.PatchPathFor(Target), new KernelTarget(Target.Release)) { OutputPath = dir.File("patch.ko") },
            Console.Error.WriteLine, TestContext.Current.CancellationToken);
        Assert.True(File.Exists(report.ModulePath));
        AssertChanged(c, report);
        Assert.NotNull(report.Verification);
        Assert.True(report.Verification.Ok);
        Assert.Equal(report.VerifiedAtLoad, report.Verification.Functions.Count);
        return report;
    }

    private static PatchCase Case(string patch) => PatchCase.All().Single(c => c.Patch == patch);

    private const string GuestHelpers = PatchTrial.GuestHelpers;

    [Theory]
    [MemberData(nameof(PatchCaseData.Loadable), MemberType = typeof(PatchCaseData))]
    public void PatchChangesTheRunningKernelAndReverts(string patch)
    {
        try
        {
            RunLoadCase(patch);
        }
        catch (LivegraftException e) when (e.Diagnostics.Any(d => d.Id == VmErrors.VmExited))
        {
            // A guest that dies (QEMU exits) is booted anew and the case runs once more, with the
            // first crash kept in the output: under TCG on a loaded machine a 6.12 guest has been seen
            // to oops on an int3 while ftrace patches text (docs/vm.md). A second death fails the case.
            Console.Error.WriteLine($"{patch}: the guest died; running the case once more on a fresh guest. The first crash:\n{e.Message}");
            RunLoadCase(patch);
        }
    }

    private void RunLoadCase(string patch)
    {
        var c = Case(patch);
        using var dir = new TempDirectory();
        var report = Build(c, dir);
        var name = report.ModuleName;
        // Exports of the patched module and of the modules it depends on are livepatch relocations:
        // the patch module depends on nothing (and pins nothing).
        Assert.Empty(Livegraft.Symbols.ModuleInfo.Read(report.ModulePath).Depends);
        guest.Reset(c.Module);
        var vm = guest.Vm;
        var ko = guest.Put(report.ModulePath, name);
        var scenarios = c.Module is null ? new[] { "" } : new[] { "module-first", "patch-first" };
        // The kernel log of the whole case: a check may clear it (dmesg -c) to look for its own lines.
        var kernelLog = new System.Text.StringBuilder();
        foreach (var scenario in scenarios)
        {
            if (scenario == "module-first")
                vm.RunChecked($"modprobe {c.Module}");
            AssertCheck(vm, c, expected: false, $"before loading{Label(scenario)}", kernelLog);
            if (scenario == "patch-first")
                vm.RunChecked(RemoveModuleAndDependencies(c.Module!)); // the check may have loaded it (mount)
            // livegraft load's check of the running code (/proc/kallsyms, /proc/kcore).
            var running = vm.Run($"livegraft verify --running {ko}");
            Assert.True(running.ExitCode == 0, $"{patch}: livegraft verify --running failed{Label(scenario)}:\n{running.Output}");
            var load = vm.Run($"{GuestHelpers}\nlp_load {ko} {name}");
            Assert.True(load.ExitCode == 0, $"loading {patch} failed: {load.Output}\n{vm.Run("dmesg | tail -30").Output}");
            if (scenario == "patch-first")
            {
                Assert.Equal("waiting", ObjectState(vm, name, c.Module!).State);
                vm.RunChecked($"modprobe {c.Module}");
                Assert.Equal("patched", ObjectState(vm, name, c.Module!).State);
                AssertPatched(vm, c, name, "when the module arrived after the patch", kernelLog);
                // Issue #10: the module and the modules it imports from come and go while the patch
                // stays: removable (the patch holds none of them), patched again each time, and no
                // stale relocation in the way (6.1 has the module clear them itself).
                for (var i = 1; i <= 3; i++)
                {
                    AssertCheck(vm, c, expected: true, $"while loaded, before reload {i}", kernelLog);
                    vm.RunChecked(RemoveModuleAndDependencies(c.Module!));
                    vm.RunChecked($"modprobe {c.Module}");
                    AssertPatched(vm, c, name, $"after reload {i}", kernelLog);
                }
            }
            AssertCheck(vm, c, expected: true, $"while loaded{Label(scenario)}", kernelLog);
            vm.RunChecked($"{GuestHelpers}\nlp_unload {name}");
            AssertCheck(vm, c, expected: false, $"after unloading{Label(scenario)}", kernelLog);
            vm.RunChecked(RemoveModuleAndDependencies(c.Module ?? ""));
            if (scenario == "patch-first")
            {
                // Without the patch the module still comes and goes as usual.
                vm.RunChecked($"modprobe {c.Module}");
                AssertCheck(vm, c, expected: false, "after unloading the patch, module reloaded", kernelLog);
                vm.RunChecked(RemoveModuleAndDependencies(c.Module!));
            }
        }
        var dmesg = kernelLog.Append(vm.Run("dmesg").Output).ToString();
        Assert.DoesNotContain("BUG:", dmesg, StringComparison.Ordinal);
        Assert.DoesNotContain("Oops", dmesg, StringComparison.Ordinal);
        // The module's own run-pre check passed for every object it patched.
        foreach (var o in report.Objects)
            Assert.Matches($@"livegraft: {name}: {LivepatchModule.KlpObjectName(o.Name)}: [1-9][0-9]* functions match the code the patch was built from", dmesg);
        Assert.DoesNotContain("refusing to patch", dmesg, StringComparison.Ordinal);
        Assert.DoesNotContain("invalid relocation", dmesg, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("refusing to load module", dmesg, StringComparison.Ordinal);
        if (patch.Contains("callbacks", StringComparison.Ordinal))
            foreach (var kind in new[] { "pre_patch", "post_patch", "pre_unpatch", "post_unpatch" })
                Assert.Contains($"livegraft-test: {kind} callback", dmesg, StringComparison.Ordinal);
        vm.RunChecked($"rm -f {ko}");
    }

    /// <summary>Issue #10: a patch whose run-pre expectations do not match the module (built from code
    /// compiled with another flag, verification skipped) loads while the module is absent, and then
    /// refuses the module each time it arrives, naming it and the function, instead of redirecting
    /// it; <c>livegraft status</c> says so; once the patch is gone the module loads normally.</summary>
    [Fact]
    public void ModuleWhoseCodeDiffersIsRefusedWhenItArrives()
    {
        var c = Case("06-module-binfmt-misc.patch");
        using var dir = new TempDirectory();
        var report = PatchBuilder.Build(new BuildRequest(c.PatchPathFor(Target), new KernelTarget(Target.Release))
        {
            OutputPath = dir.File("patch.ko"), ExtraCflags = "-fno-omit-frame-pointer", SkipVerification = true,
        }, Console.Error.WriteLine, TestContext.Current.CancellationToken);
        var name = report.ModuleName;
        guest.Reset(c.Module);
        var vm = guest.Vm;
        var ko = guest.Put(report.ModulePath, name);
        vm.RunChecked($"{GuestHelpers}\nlp_load {ko} {name}");
        for (var attempt = 1; attempt <= 2; attempt++)
        {
            var modprobe = vm.Run($"modprobe {c.Module}");
            Assert.True(modprobe.ExitCode != 0, $"attempt {attempt}: {c.Module} loaded although its code differs:\n{vm.Run("dmesg | tail -20").Output}");
            Assert.NotEqual(0, vm.Run($"grep -q '^{c.Module} ' /proc/modules").ExitCode);
            var dmesg = vm.RunChecked("dmesg -c");
            Assert.Contains($"livegraft: {name}: refusing to load module {c.Module}: bm_status_read,0+0x", dmesg, StringComparison.Ordinal);
            Assert.DoesNotContain("invalid relocation", dmesg, StringComparison.OrdinalIgnoreCase);
            var (state, reason) = ObjectState(vm, name, c.Module!);
            Assert.Equal("failed", state);
            Assert.Contains("bm_status_read", reason, StringComparison.Ordinal);
        }
        AssertCheck(vm, c, expected: false, "with the module refused");
        vm.RunChecked($"{GuestHelpers}\nlp_unload {name}");
        vm.RunChecked($"modprobe {c.Module}");
        AssertCheck(vm, c, expected: false, "after unloading the refusing patch");
        vm.RunChecked(RemoveModuleAndDependencies(c.Module!));
        vm.RunChecked($"rm -f {ko}");
    }

    /// <summary>An object's state and reason as <c>livegraft status --json</c> in the guest reports them.</summary>
    private static (string State, string Reason) ObjectState(VmSession vm, string patch, string obj)
    {
        var json = vm.RunChecked("livegraft status --json 2>/dev/null");
        using var doc = System.Text.Json.JsonDocument.Parse(json);
        var o = doc.RootElement.GetProperty("patches").EnumerateArray().Single(p => p.GetProperty("name").GetString() == patch)
            .GetProperty("objects").EnumerateArray().Single(x => x.GetProperty("name").GetString() == obj);
        return (o.GetProperty("state").GetString()!, o.TryGetProperty("reason", out var r) ? r.GetString() ?? "" : "");
    }

    /// <summary>A guest script that unmounts the module's filesystems and removes it and every
    /// module it depends on (modules.dep), which must all be removable: nothing else uses them in the
    /// guest, and the patch must not.</summary>
    private static string RemoveModuleAndDependencies(string module) => module.Length == 0 ? "true" : $$"""
        for m in $(awk '$3 == "{{module}}" { print $2 }' /proc/mounts); do umount $m || exit 1; done
        umount /proc/sys/fs/binfmt_misc 2>/dev/null
        deps=$(grep "/{{module}}.ko[^:]*:" /lib/modules/$(uname -r)/modules.dep | cut -d: -f2)
        for m in {{module}} $deps; do
            m=$(basename "$m"); m=${m%%.ko*}; m=$(echo "$m" | tr - _)
            if grep -q "^$m " /proc/modules; then rmmod "$m" || { grep "^$m " /proc/modules; exit 1; }; fi
        done
        """;

    /// <summary>The patch is enabled for the case's module object (klp's sysfs) and the check passes.</summary>
    private static void AssertPatched(VmSession vm, PatchCase c, string name, string when, System.Text.StringBuilder? kernelLog = null)
    {
        var patched = vm.Run($"cat /sys/kernel/livepatch/{name}/{c.Module}/patched");
        Assert.True(patched.Output.Trim() == "1", $"{c.Patch}: {c.Module} is not patched {when}: {patched.Output}\n{vm.Run("dmesg | tail -20").Output}");
        AssertCheck(vm, c, expected: true, when, kernelLog);
    }

    private static string Label(string scenario) => scenario.Length == 0 ? "" : $" ({scenario})";

    private static void AssertCheck(VmSession vm, PatchCase c, bool expected, string when, System.Text.StringBuilder? kernelLog = null)
    {
        kernelLog?.Append(vm.Run("dmesg").Output);
        var r = vm.Run(c.Check);
        Assert.True((r.ExitCode == 0) == expected, $"{c.Patch}: check {(expected ? "failed" : "passed")} {when}: {c.Check}\n{r.Output}");
    }

    [Theory]
    [MemberData(nameof(PatchCaseData.Refused), MemberType = typeof(PatchCaseData))]
    public void UnsafePatchIsRefusedWithItsReason(string patch)
    {
        var c = Case(patch);
        using var dir = new TempDirectory();
        var e = Assert.ThrowsAny<LivegraftException>(() => PatchBuilder.Build(new BuildRequest(c.PatchPathFor(Target), Target) { OutputPath = dir.File("patch.ko") }, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Contains(e.Diagnostics, d => d.Id == (c.Expectation == "nochange" ? DiffErrors.NothingChanged : c.RefusalId));
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }
}

/// <summary>The cases on the reference kernel, 6.1.0-56-amd64.</summary>
[Collection("patch guests")]
public sealed class PatchesOn61Tests(Guest61 guest) : PatchesEndToEndTests(guest), IClassFixture<Guest61>;

/// <summary>The cases on the 6.12 series, 6.12.117+deb12-amd64 (objtool at the vmlinux link, IBT,
/// call padding, savedcmd_ command files, 14-byte alt_instr), and its symbols.</summary>
[Collection("patch guests")]
public sealed class PatchesOn612Tests(Guest612 guest) : PatchesEndToEndTests(guest), IClassFixture<Guest612>
{
    /// <summary>The kallsyms tables Livegraft decodes from the 6.12 image (symbol lookup and sympos
    /// of every 6.12 build) are exactly what the booted kernel (nokaslr) lists in /proc/kallsyms.</summary>
    [Fact]
    public void SymbolsReadFromTheImageEqualTheGuestsKallsyms()
    {
        guest.Reset(null);
        var dump = guest.Vm.RunChecked("echo 0 > /proc/sys/kernel/kptr_restrict; grep -v '\\[' /proc/kallsyms | gzip -c | base64", TimeSpan.FromMinutes(5));
        using var dir = new TempDirectory();
        var path = dir.File("kallsyms.gz");
        File.WriteAllBytes(path, Convert.FromBase64String(string.Concat(dump.Split('\n', StringSplitOptions.TrimEntries))));
        var running = Livegraft.Symbols.KallsymsFile.Read(path).Symbols;
        var image = Livegraft.Symbols.KallsymsTables.ReadImage(guest.Target.KernelImage).Symbols;
        var result = Livegraft.Symbols.KallsymsComparison.Compare(image, running);
        Assert.True(result.IsEqual, $"{result.MismatchCount} of {result.ImageCount} differ:\n" + string.Join("\n", result.Mismatches));
        Assert.True(result.RunningCount > 100_000, $"only {result.RunningCount} symbols");
        Assert.Equal(image.Count, result.RunningCount);
    }
}

/// <summary>The cases of tests/patches/cases.txt by expectation, as theory data.</summary>
public static class PatchCaseData
{
    public static TheoryData<string> Loadable() => [.. PatchCase.All().Where(c => c.Expectation == "load").Select(c => c.Patch)];

    public static TheoryData<string> Refused() => [.. PatchCase.All().Where(c => c.Expectation is "refuse" or "nochange").Select(c => c.Patch)];

    public static TheoryData<string> BuildOnly() => [.. PatchCase.All().Where(c => c.Expectation == "build").Select(c => c.Patch)];
}

/// <summary>The end-to-end classes that boot guests run one after the other.</summary>
[CollectionDefinition("patch guests")]
public sealed class PatchGuestsCollection;
