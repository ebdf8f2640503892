using System.CommandLine;
using Livegraft.Kernel;
using Livegraft.Kernel.Build;
using Livegraft.Kernel.Updates;
using Livegraft.Vm;

namespace Livegraft.Cli.Commands;

/// <summary><c>livegraft try FIX.patch --check CMD</c>: build, boot, and watch the check change.</summary>
internal static class TryCommand
{
    public static Command Create()
    {
        var patch = new Argument<FileInfo?>("FIX.patch") { Description = "Unified diff against the kernel source.", Arity = ArgumentArity.ZeroOrOne };
        var update = new Option<string?>("--update") { Description = "Try the live patch of a distro update (package=version, tarball or directory; see build --update) instead of a patch file." };
        var partial = new Option<bool>("--partial") { Description = "With --update: try what can be live patched, leaving the rest out." };
        var check = new Option<string>("--check") { Description = "Shell command run in the guest before loading, while loaded and after unloading.", Required = true };
        var kernel = new Option<string>("--kernel") { Description = "Target kernel release.", DefaultValueFactory = _ => KernelTarget.ReferenceRelease };
        var module = new Option<string[]>("--module") { Description = "Kernel module to load in the guest first (the patch's target)." };
        var json = Cli.JsonOption();
        var command = new Command("try", "Build a patch and try it live in a QEMU guest of its kernel.") { patch, update, partial, check, kernel, module, json };
        BuildCommand.AddSourceValidator(command, patch, update, partial);
        command.SetAction(parse => Cli.Guard(parse.GetValue(json), () =>
        {
            var target = new KernelTarget(parse.GetValue(kernel)!);
            var progress = Progress.ForStderr();
            var dir = Directory.CreateTempSubdirectory("livegraft-try-").FullName;
            try
            {
                var output = Path.Combine(dir, "patch.ko");
                BuildReport report;
                if (parse.GetValue(update) is { } spec)
                {
                    var updateReport = UpdateBuilder.Build(new UpdateRequest(spec, target) { Partial = parse.GetValue(partial), OutputPath = output }, progress.Report);
                    if (updateReport.Build is null)
                    {
                        progress.Done();
                        if (parse.GetValue(json))
                            Cli.WriteJson(updateReport.WriteJson);
                        else
                            BuildCommand.WriteText(updateReport);
                        return (int)updateReport.ExitCode;
                    }
                    report = updateReport.Build;
                }
                else
                    report = PatchBuilder.Build(new BuildRequest(parse.GetValue(patch)!.FullName, target) { OutputPath = output }, progress.Report);
                var result = PatchTrial.Run(target, report.ModulePath, report.ModuleName, parse.GetValue(check)!, parse.GetValue(module), progress.Report);
                progress.Done();
                if (parse.GetValue(json))
                    Cli.WriteJson(result.WriteJson);
                else
                {
                    foreach (var s in result.Steps)
                        Console.WriteLine($"{s.Stage,-7} exit {s.ExitCode}{(s.Output.Length > 0 ? ": " + s.Output.TrimEnd() : "")}");
                    if (!result.Loaded)
                        Console.WriteLine("load failed: " + result.LoadOutput.TrimEnd());
                    Console.WriteLine(result.BehavedAsExpected
                        ? "the check failed before, passed while patched, and failed again after unloading"
                        : "the check did not change as expected");
                }
                return (int)result.ExitCode;
            }
            finally
            {
                Directory.Delete(dir, recursive: true);
            }
        }));
        return command;
    }
}
