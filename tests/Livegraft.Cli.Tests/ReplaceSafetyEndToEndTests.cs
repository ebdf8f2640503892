using System.Text.Json;
using Livegraft.Kernel;
using Livegraft.Kernel.Build;
using Livegraft.Vm;

namespace Livegraft.Cli.Tests;

/// <summary>
/// Replace safety with real patches (issue #15): with the cmdline fix in force, an unrelated atomic
/// replace patch (the meminfo one, built alone) is refused naming <c>cmdline_proc_show</c> and the patch
/// it comes from; <c>--drop</c> lets it undo the fix; the same change built <c>--on-top-of</c> the cmdline
/// patch is cumulative over it and replaces it without a word, both fixes in force.
/// </summary>
public class ReplaceSafetyEndToEndTests
{
    [Fact]
    public void An_unrelated_replace_is_refused_a_cumulative_one_replaces_without_a_prompt()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDirectory();
        var cmdline = PatchCase.All().Single(c => c.Patch == "01-cmdline-string.patch");
        var meminfo = PatchCase.All().Single(c => c.Patch == "02-meminfo-static.patch");
        var first = PatchBuilder.Build(new BuildRequest(cmdline.PatchPath, KernelTarget.Reference) { OutputPath = dir.File("first.ko"), Name = "first" }, cancellationToken: ct);
        var alone = PatchBuilder.Build(new BuildRequest(meminfo.PatchPath, KernelTarget.Reference) { OutputPath = dir.File("alone.ko"), Name = "alone" }, cancellationToken: ct);
        var cumulative = PatchBuilder.Build(new BuildRequest(meminfo.PatchPath, KernelTarget.Reference)
        {
            OutputPath = dir.File("cumulative.ko"), Name = "cumulative", OnTopOf = [first.ModulePath], Fixes = "cmdline and meminfo",
        }, cancellationToken: ct);
        Assert.Equal(["cmdline_proc_show", "meminfo_proc_show"], cumulative.Objects.SelectMany(o => o.Functions).Select(f => f.OldName).Order());

        var options = new VmOptions(KernelTarget.Reference) { LivegraftBinary = NativeBinary.Path, CommandTimeout = TimeSpan.FromSeconds(120) };
        foreach (var ko in new[] { first, alone, cumulative })
            options.Files.Add(new GuestFile(ko.ModulePath, "/root/" + Path.GetFileName(ko.ModulePath)));
        using var vm = VmSession.Start(options);
        bool Holds(PatchCase c) => vm.Run(c.Check).ExitCode == 0;
        (int Exit, JsonElement Json) Lg(string args)
        {
            var r = vm.Run($"livegraft {args} --json 2>/dev/null");
            return (r.ExitCode, r.Output.Length == 0 ? default : JsonDocument.Parse(r.Output).RootElement.Clone());
        }

        Assert.Equal(0, Lg("load /root/first.ko").Exit);
        Assert.True(Holds(cmdline));

        var refused = Lg("load /root/alone.ko");
        Assert.Equal(2, refused.Exit);
        var why = Assert.Single(refused.Json.GetProperty("diagnostics").EnumerateArray());
        Assert.Equal("LG0542", why.GetProperty("id").GetString());
        Assert.Contains($"{first.ModuleName}'s fix of vmlinux:cmdline_proc_show", why.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.True(Holds(cmdline), "the refused load must leave the fix in force");
        Assert.False(Holds(meminfo));

        var replaced = Lg("load /root/cumulative.ko");
        Assert.Equal(0, replaced.Exit);
        Assert.Equal([first.ModuleName], replaced.Json.GetProperty("replaced").EnumerateArray().Select(e => e.GetString()));
        Assert.DoesNotContain(replaced.Json.GetProperty("diagnostics").EnumerateArray(), d => d.GetProperty("id").GetString() is "LG0542" or "LG0543");
        Assert.True(Holds(cmdline) && Holds(meminfo), "a cumulative patch carries both fixes");
        Assert.Contains("cmdline and meminfo", vm.RunChecked("livegraft info /root/cumulative.ko"), StringComparison.Ordinal);

        Assert.Equal(0, Lg($"unload {cumulative.ModuleName}").Exit);
        Assert.Equal(0, Lg("load /root/first.ko").Exit);
        var dropped = Lg("load /root/alone.ko --drop");
        Assert.Equal(0, dropped.Exit);
        Assert.Contains(dropped.Json.GetProperty("diagnostics").EnumerateArray(), d => d.GetProperty("id").GetString() == "LG0543");
        Assert.False(Holds(cmdline), "--drop undid the cmdline fix");
        Assert.True(Holds(meminfo));
        Assert.DoesNotContain("BUG:", vm.RunChecked("dmesg"), StringComparison.Ordinal);
    }
}
