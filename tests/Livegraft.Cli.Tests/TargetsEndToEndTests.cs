using System.Text.Json;
using Livegraft.Kernel;
using Livegraft.Kernel.Build;
using Livegraft.Vm;

namespace Livegraft.Cli.Tests;

/// <summary>
/// Targets other than the two main guests: the cloud flavour of both series (fewer drivers: the
/// serial console and what the guest needs are built in or shipped as modules), and an older 6.1
/// ABI release built from its own source whatever linux-source-6.1 this machine has installed.
/// </summary>
[Collection("patch guests")]
public sealed class TargetsEndToEndTests
{
    [Theory]
    [InlineData("6.1.0-56-cloud-amd64")]
    [InlineData("6.12.117+deb12-cloud-amd64")]
    public void TheCmdlineCaseLoadsOnTheCloudFlavour(string release)
    {
        var c = PatchCase.All().Single(p => p.Patch == "01-cmdline-string.patch");
        var target = new KernelTarget(release);
        using var dir = new TempDirectory();
        var report = PatchBuilder.Build(new BuildRequest(c.PatchPathFor(target), target) { OutputPath = dir.File("patch.ko") },
            Console.Error.WriteLine, TestContext.Current.CancellationToken);
        Assert.True(report.Verification?.Ok);
        var trial = PatchTrial.Run(target, report.ModulePath, report.ModuleName, c.Check, progress: Console.Error.WriteLine);
        Assert.True(trial.BehavedAsExpected, string.Join("\n", trial.Steps.Select(s => $"{s.Stage}: {s.ExitCode} {s.Output}")) + "\n" + trial.LoadOutput);
    }

    /// <summary>6.1.0-47-amd64 is Debian's 6.1.170-3; this machine's linux-source-6.1, if any, is
    /// another version (CI installs the newest before the suite): the tree must come from 6.1.170-3.</summary>
    [Fact]
    public void AnOlderAbiReleaseIsBuiltFromItsOwnSource()
    {
        const string release = "6.1.0-47-amd64";
        var installed = ProcessRunner.Run(new ProcessSpec("dpkg-query", ["-W", "-f=${Status} ${Version}", "linux-source-6.1"]), TestContext.Current.CancellationToken);
        var installedVersion = installed.ExitCode == 0 && installed.Stdout.StartsWith("install ok installed", StringComparison.Ordinal) ? installed.Stdout.Split(' ')[^1] : null;
        Console.Error.WriteLine($"installed linux-source-6.1: {installedVersion ?? "none"}");
        Assert.NotEqual("6.1.170-3", installedVersion);

        var c = PatchCase.All().Single(p => p.Patch == "01-cmdline-string.patch");
        using var dir = new TempDirectory();
        var ko = dir.File("patch.ko");
        var r = ProcessRunner.Run(new ProcessSpec(NativeBinary.Path, ["build", c.PatchPath, "--kernel", release, "-o", ko, "--json"]), TestContext.Current.CancellationToken);
        Assert.True(r.ExitCode == 0, r.Tail());
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal("linux-source-6.1=6.1.170-3", doc.RootElement.GetProperty("source").GetString());
        Assert.Equal(release, doc.RootElement.GetProperty("kernel").GetString());
        Assert.True(File.Exists(ko));

        var target = new KernelTarget(release);
        var tree = KernelTree.TryOpen(target);
        Assert.NotNull(tree);
        Assert.Equal("6.1.170-3", tree.Stamp["source-version"]);
        Assert.Equal("linux-source-6.1", tree.Stamp["source-package"]);
        Assert.Equal("6.1.170-3", target.Packages.Image.Version);
    }
}
