using System.Text.Json;
using Livegraft.Kernel;
using Livegraft.Kernel.Updates;
using Livegraft.Vm;

namespace Livegraft.Cli.Tests;

/// <summary>
/// <c>build --update</c> (issue #14) on a small crafted update of the reference kernel's source: a
/// hard-linked copy of its tree with a safe change (/proc/cmdline), a struct layout change in a header
/// (<c>struct seq_file</c>), a changed initialised global (kernel/sys.c, refused by the differ), a file
/// this configuration does not build (ext2) and a documentation change. All or nothing refuses it and
/// writes nothing; <c>--partial</c> writes the safe part, which loads in the VM with the fix in force.
/// </summary>
public class UpdateEndToEndTests
{
    [Fact]
    public void A_struct_layout_change_refuses_the_update_and_partial_loads_the_rest()
    {
        var ct = TestContext.Current.CancellationToken;
        var target = KernelTarget.Reference;
        var tree = KernelTree.Ensure(target, cancellationToken: ct);
        // Beside the tree (hard links need the same file system); every changed file is replaced,
        // never written through its link, so the tree itself is untouched.
        var update = Path.Combine(target.CacheDirectory, $"test-update-{Environment.ProcessId}-{Random.Shared.Next():x8}");
        using var dir = new TempDirectory();
        try
        {
            using (tree.Lock(cancellationToken: ct))
            {
                tree.RecoverJournal();
                ProcessRunner.RunChecked(new ProcessSpec("cp", ["-al", tree.Root, update]), CoreErrors.CannotRun, "copying the tree", cancellationToken: ct);
            }
            Edit(update, "fs/proc/cmdline.c", "\tseq_putc(m, '\\n');", "\tseq_puts(m, \" livegraft=update\");\n\tseq_putc(m, '\\n');");
            Edit(update, "include/linux/seq_file.h", "\tsize_t pad_until;", "\tsize_t pad_until;\n\tsize_t livegraft_extra;");
            Edit(update, "kernel/sys.c", "int overflowuid = DEFAULT_OVERFLOWUID;", "int overflowuid = DEFAULT_OVERFLOWUID + 1;");
            Edit(update, "fs/ext2/super.c", "#include <linux/module.h>", "#include <linux/module.h>\n/* livegraft: not built here */");
            Edit(update, "Documentation/filesystems/proc.rst", "The /proc Filesystem", "The /proc Filesystem (livegraft)");

            var output = dir.File("whole.ko");
            var whole = UpdateBuilder.Build(new UpdateRequest(update, target) { OutputPath = output }, cancellationToken: ct);
            Assert.Equal(ExitCode.InvalidInput, whole.ExitCode);
            Assert.Null(whole.Build);
            Assert.False(File.Exists(output), "all or nothing writes nothing");
            Assert.Contains(whole.Diagnostics, d => d.Id == KernelErrors.UpdateNeedsReboot);
            UpdateFile Of(UpdateReport r, string path) => Assert.Single(r.Files, f => f.Path == path);
            var header = Of(whole, "include/linux/seq_file.h");
            Assert.Equal(FileOutcome.Refused, header.Outcome);
            var layout = Assert.Single(header.Diagnostics);
            Assert.Equal(KernelErrors.StructLayoutChanged, layout.Id);
            Assert.Contains("struct seq_file", layout.Message, StringComparison.Ordinal);
            var sys = Of(whole, "kernel/sys.c");
            Assert.Equal(FileOutcome.Refused, sys.Outcome);
            Assert.Contains(sys.Diagnostics, d => d.Id == Diff.DiffErrors.DataChanged);
            Assert.Equal(FileOutcome.Patched, Of(whole, "fs/proc/cmdline.c").Outcome);
            Assert.Equal(FileOutcome.NotBuilt, Of(whole, "fs/ext2/super.c").Outcome);
            Assert.Equal(FileOutcome.Ignored, Of(whole, "Documentation/filesystems/proc.rst").Outcome);
            Assert.Equal(["include/linux/seq_file.h", "kernel/sys.c"], whole.NeedReboot.Select(f => f.Path).Order(StringComparer.Ordinal));

            // --partial, through the command line as an operator runs it.
            var ko = dir.File("partial.ko");
            var cli = ProcessRunner.Run(new ProcessSpec(NativeBinary.Path, ["build", "--update", update, "--partial", "--name", "update-test", "-o", ko, "--json"]), ct);
            Assert.True(cli.ExitCode == 0, cli.Stderr);
            var json = JsonDocument.Parse(cli.Stdout).RootElement;
            Assert.Equal(ko, json.GetProperty("module").GetString());
            Assert.Contains(json.GetProperty("diagnostics").EnumerateArray(), d => d.GetProperty("id").GetString() == KernelErrors.UpdatePartial);
            Assert.Equal(["include/linux/seq_file.h", "kernel/sys.c"], json.GetProperty("needReboot").EnumerateArray().Select(e => e.GetString()));
            var patched = Assert.Single(json.GetProperty("functions").EnumerateArray(), f => f.GetProperty("outcome").GetString() == "patched");
            Assert.Equal("cmdline_proc_show", patched.GetProperty("name").GetString());
            var module = json.GetProperty("moduleName").GetString()!;

            var options = new VmOptions(target) { LivegraftBinary = NativeBinary.Path, CommandTimeout = TimeSpan.FromSeconds(120) };
            options.Files.Add(new GuestFile(ko, "/root/update.ko"));
            using var vm = VmSession.Start(options);
            const string check = "grep -q livegraft=update /proc/cmdline";
            Assert.NotEqual(0, vm.Run(check).ExitCode);
            vm.RunChecked("livegraft load /root/update.ko");
            Assert.Equal(0, vm.Run(check).ExitCode);
            Assert.Contains(module, vm.RunChecked("livegraft list"), StringComparison.Ordinal);
            vm.RunChecked($"livegraft unload {module}");
            Assert.NotEqual(0, vm.Run(check).ExitCode);
            Assert.DoesNotContain("BUG:", vm.RunChecked("dmesg"), StringComparison.Ordinal);
        }
        finally
        {
            if (Directory.Exists(update))
                Directory.Delete(update, recursive: true);
        }
    }

    /// <summary>
    /// Debian's 6.1.192-2 is one ext4 fix (fs/ext4/mballoc.c, ext4 a module) on top of 6.1.192-1,
    /// which 6.1.0-55-amd64 runs: the update, named only by its package version, becomes a patch
    /// that loads on 6.1.0-55 with the changed functions in force in ext4, before and after ext4
    /// itself is loaded, and an ext4 file system on a RAM disk is used while it is.
    /// </summary>
    [Fact]
    public void Debian_6_1_192_2_builds_for_6_1_0_55_and_is_in_force_in_ext4()
    {
        var ct = TestContext.Current.CancellationToken;
        var target = new KernelTarget("6.1.0-55-amd64");
        using var dir = new TempDirectory();
        var ko = dir.File("update.ko");
        var cli = ProcessRunner.Run(new ProcessSpec(NativeBinary.Path,
            ["build", "--update", "linux-source-6.1=6.1.192-2", "--kernel", target.Release, "-o", ko, "--json"]), ct);
        Assert.True(cli.ExitCode == 0, cli.Stderr + cli.Stdout);
        var json = JsonDocument.Parse(cli.Stdout).RootElement;
        var mballoc = Assert.Single(json.GetProperty("files").EnumerateArray(), f => f.GetProperty("outcome").GetString() != "ignored");
        Assert.Equal("fs/ext4/mballoc.c", mballoc.GetProperty("path").GetString());
        Assert.Equal("patched", mballoc.GetProperty("outcome").GetString());
        var functions = json.GetProperty("functions").EnumerateArray().ToList();
        Assert.NotEmpty(functions);
        Assert.All(functions, f =>
        {
            Assert.Equal("ext4", f.GetProperty("object").GetString());
            Assert.Equal("patched", f.GetProperty("outcome").GetString());
        });
        var module = json.GetProperty("moduleName").GetString()!;

        target.EnsureImage();
        var options = new VmOptions(target) { LivegraftBinary = NativeBinary.Path, CommandTimeout = TimeSpan.FromSeconds(120) };
        options.Files.Add(new GuestFile(ko, "/root/update.ko"));
        options.Modules.Add("ext4");
        options.Modules.Add("brd");
        using var vm = VmSession.Start(options);
        Assert.Equal(target.Release, vm.RunChecked("uname -r").Trim());
        // Loaded before ext4: the object waits for it, and ext4 arrives patched.
        vm.RunChecked("livegraft load /root/update.ko");
        var sysfs = $"/sys/kernel/livepatch/{module}";
        vm.RunChecked($"! grep -q '^ext4 ' /proc/modules && grep -qx 0 {sysfs}/ext4/patched && grep -qx 1 {sysfs}/enabled");
        vm.RunChecked("modprobe ext4");
        vm.RunChecked($"grep -qx 1 {sysfs}/ext4/patched && grep -qx 0 {sysfs}/transition");
        vm.RunChecked("modprobe brd rd_nr=1 rd_size=8192 && mke2fs -q /dev/ram0 && mkdir -p /mnt/e && mount -t ext4 /dev/ram0 /mnt/e");
        foreach (var f in functions)
            vm.RunChecked($"ls -d {sysfs}/ext4/{f.GetProperty("name").GetString()},*");
        // The allocator (and the buddy cache the fix is about) at work on the patched module (busybox
        // makes an ext2 file system; the ext4 driver mounts it with mballoc doing the allocation).
        vm.RunChecked("for i in 1 2 3 4 5 6 7 8; do dd if=/dev/zero of=/mnt/e/f$i bs=64k count=16 2>/dev/null; done; sync; rm /mnt/e/f2 /mnt/e/f5; sync; echo 3 > /proc/sys/vm/drop_caches; dd if=/dev/zero of=/mnt/e/g bs=64k count=40 2>/dev/null; sync");
        vm.RunChecked("umount /mnt/e");
        vm.RunChecked($"livegraft unload {module}");
        var dmesg = vm.RunChecked("dmesg");
        Assert.DoesNotContain("BUG:", dmesg, StringComparison.Ordinal);
        Assert.DoesNotContain("WARNING:", dmesg, StringComparison.Ordinal);
        Assert.Matches($@"livegraft: {module}: ext4: [1-9][0-9]* functions match the code the patch was built from", dmesg);
    }

    /// <summary>Replaces <paramref name="from"/> (which must occur) in a file of the copy, writing a new
    /// file rather than through the hard link.</summary>
    private static void Edit(string root, string path, string from, string to)
    {
        var full = Path.Combine(root, path);
        var text = File.ReadAllText(full, System.Text.Encoding.Latin1);
        Assert.Contains(from, text, StringComparison.Ordinal);
        File.Delete(full);
        File.WriteAllText(full, text.Replace(from, to, StringComparison.Ordinal), System.Text.Encoding.Latin1);
    }
}
