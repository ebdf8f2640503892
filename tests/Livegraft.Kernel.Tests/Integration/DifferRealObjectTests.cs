using Livegraft.Diff;
using Livegraft.Kernel.Build;

namespace Livegraft.Kernel.Tests.Integration;

/// <summary>
/// Issue #11 on objects of the prepared reference tree, through the whole build (compile before and
/// after, diff, run-pre verification against the image, module link): the differ on real kernel
/// objects rather than fixtures. The patches are in Integration/patches and tests/patches.
/// </summary>
[Collection("kernel tree")]
public sealed class DifferRealObjectTests(KernelFixture fixture) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lg-real-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private BuildReport Build(string patch)
    {
        _ = fixture.Tree; // skips without the kernel packages
        var path = Path.Combine(AppContext.BaseDirectory, "patches", patch);
        var report = PatchBuilder.Build(new BuildRequest(path, KernelFixture.Target) { OutputPath = Path.Combine(_dir, "patch.ko") },
            cancellationToken: TestContext.Current.CancellationToken);
        Assert.True(File.Exists(report.ModulePath));
        Assert.True(report.Verification is { Ok: true }, "build-time verification must run and pass");
        return report;
    }

    private static List<string> Changed(BuildReport r) => [.. r.Units.SelectMany(u => u.Diff.ChangedFunctions).Order(StringComparer.Ordinal)];

    private static HashSet<string> Notes(BuildReport r) => [.. r.Units.SelectMany(u => u.Diff.Notes).Select(n => n.Id)];

    [Fact]
    public void C_AmbiguousReadOnlyObjectIsCopied()
    {
        // _acpi_module_name occurs 107 times in vmlinux: its copy cannot be pinned, the patch carries one.
        var r = Build("11-acpi-ambiguous-rodata.patch");
        Assert.Equal(["acpi_get_table"], Changed(r));
        Assert.Contains(DiffErrors.ReadOnlyCopied, Notes(r));
        Assert.Contains("_acpi_module_name", r.Units.Single().Diff.Included);
    }

    [Fact]
    public void C_SameNamedStaticLocalsArePairedByUse()
    {
        // rtnl_fdb_add has several NL_SET_ERR_MSG __msg statics: paired by the order it uses them, not refused.
        var r = Build("rtnetlink-msg.patch");
        Assert.Equal(["rtnl_fdb_add"], Changed(r));
        Assert.DoesNotContain(r.Units.SelectMany(u => u.Diff.Refusals), d => d.Id == DiffErrors.StaticLocal);
    }

    [Fact]
    public void D_AnIncludeOnlyChangesNothing()
    {
        // The drivers/base/core.c: 18 functions were reported changed by an added #include.
        _ = fixture.Tree;
        var path = Path.Combine(AppContext.BaseDirectory, "patches", "core-include-only.patch");
        var e = Assert.ThrowsAny<LivegraftException>(() => PatchBuilder.Build(new BuildRequest(path, KernelFixture.Target) { OutputPath = Path.Combine(_dir, "patch.ko") },
            cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal([DiffErrors.NothingChanged], e.Diagnostics.Select(d => d.Id));
        Assert.Empty(Directory.GetFiles(_dir));
    }

    [Fact]
    public void E_ForkPatchBindsTheWeakDefinitionByNameAndVerifies()
    {
        // fork.c's __weak arch_dup_task_struct is overridden by x86's: referenced by name, not
        // compared with the unit's default (run-pre used to refuse with LG0350).
        var r = Build("12-fork-weak.patch");
        Assert.Equal(["copy_process"], Changed(r));
        Assert.Contains(DiffErrors.WeakByName, Notes(r));
        Assert.Contains(r.Units.Single().Diff.KlpRelocations, k => k.SymbolName == ".klp.sym.vmlinux.arch_dup_task_struct,0");
        Assert.DoesNotContain(r.Verification!.Functions, f => f.Name == "arch_dup_task_struct");
    }

    [Fact]
    public void I_NewGlobalOfOneUnitResolvesFromAnother()
    {
        var r = Build("13-two-files.patch");
        var cmdline = r.Units.Single(u => u.Unit == "fs/proc/cmdline.o").Diff;
        var version = r.Units.Single(u => u.Unit == "fs/proc/version.o").Diff;
        Assert.Equal(["livegraft_two_files"], cmdline.NewFunctions);
        Assert.Equal(["version_proc_show"], version.ChangedFunctions);
        // An ordinary undefined symbol, resolved by the module link: no klp relocation, no LG0109.
        Assert.DoesNotContain(version.KlpRelocations, k => k.SymbolName.Contains("livegraft_two_files", StringComparison.Ordinal));
        Assert.Contains(version.Output!.SymbolTable!.Symbols, s => s.Name == "livegraft_two_files" && s.IsUndefined);
    }

    [Fact]
    public void J_NamespacedExportsOfADependencyAreKlpRelocations()
    {
        // ums-alauda calls usb-storage's USB_STORAGE exports. Since issue #10 an export of a module
        // the patched module depends on is a livepatch relocation against that module, which the
        // livepatch core resolves without a namespace check: nothing to import, nothing pinned.
        var r = Build("alauda-namespace.patch");
        var diff = r.Units.Single().Diff;
        Assert.Contains(diff.KlpRelocations, k => k.SymbolName.StartsWith(".klp.sym.usb_storage.", StringComparison.Ordinal));
        Assert.Empty(diff.ImportNamespaces);
        Assert.Empty(Livegraft.Symbols.ModuleInfo.Read(r.ModulePath).Depends);
    }

    [Fact]
    public void K_ModuleTracepointAndStaticCallDoNotRefuse()
    {
        // ext4_sync_fs's tracepoint is keyed in ext4 itself (LG0105 refused it); the added line
        // moves every __LINE__ below, which changes no other function.
        var r = Build("14-module-tracepoint.patch");
        Assert.Equal(["ext4_sync_fs"], Changed(r));
        Assert.Contains(DiffErrors.ModuleKeyDropped, Notes(r));
        Assert.Contains(DiffErrors.ModuleStaticCallDropped, Notes(r));
        Assert.Contains(DiffErrors.LineOnly, Notes(r));
        // ORC and other entries describing the new code refer to the copy, not to ext4's original.
        Assert.DoesNotContain(r.Units.Single().Diff.KlpRelocations, k => k.Section.StartsWith(".orc", StringComparison.Ordinal) && k.SymbolName.Contains("ext4_sync_fs", StringComparison.Ordinal));
    }
}
