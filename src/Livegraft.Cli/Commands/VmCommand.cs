using System.CommandLine;
using Livegraft.Host;
using Livegraft.Kernel;
using Livegraft.Vm;

namespace Livegraft.Cli.Commands;

/// <summary><c>livegraft vm [--kernel RELEASE] [--file PATH]... [--module NAME]... [--disk IMG]... [--append PARAMS] [--timeout 120s] [--json] -- CMD</c>.</summary>
internal static class VmCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var command = new Argument<string[]>("command") { Description = "Shell command to run in the guest (put it after --).", Arity = ArgumentArity.OneOrMore };
        var kernel = new Option<string>("--kernel") { Description = "Kernel release to boot.", DefaultValueFactory = _ => KernelTarget.ReferenceRelease };
        var files = new Option<string[]>("--file") { Description = "Host file to copy into the command's working directory (/root); repeatable.", AllowMultipleArgumentsPerToken = false };
        var modules = new Option<string[]>("--module") { Description = "Kernel module to include, with its dependencies (modprobe it in the command); repeatable." };
        var disks = new Option<string[]>("--disk") { Description = "Raw disk image to attach as /dev/vda, /dev/vdb, ...; repeatable." };
        var append = new Option<string?>("--append") { Description = "Extra kernel command-line parameters." };
        var timeout = new Option<string>("--timeout") { Description = "Command timeout (default 120s); the guest kills the command then.", DefaultValueFactory = _ => "120s" };
        var consoleLog = new Option<string?>("--console-log") { Description = "Append the guest's whole console output to this file." };
        var json = Cli.JsonOption();
        var vm = new Command("vm", "Boot a throwaway QEMU guest of a kernel release, run one shell command in it, exit with its status.");
        vm.Arguments.Add(command);
        foreach (var o in new Option[] { kernel, files, modules, disks, append, timeout, consoleLog, json })
            vm.Options.Add(o);
        vm.SetAction(parse =>
        {
            var asJson = parse.GetValue(json);
            return Cli.Guard(asJson, () =>
            {
                var options = new VmOptions(new KernelTarget(parse.GetValue(kernel) ?? KernelTarget.ReferenceRelease))
                {
                    KernelParameters = parse.GetValue(append),
                    CommandTimeout = Duration.Parse(parse.GetValue(timeout) ?? "120s"),
                    ConsoleLogPath = parse.GetValue(consoleLog),
                };
                foreach (var f in parse.GetValue(files) ?? [])
                    options.Files.Add(new GuestFile(f, "/root/" + Path.GetFileName(f)));
                foreach (var m in parse.GetValue(modules) ?? [])
                    options.Modules.Add(m);
                foreach (var d in parse.GetValue(disks) ?? [])
                    options.Disks.Add(d);
                var run = VmRun.Run(options, string.Join(' ', parse.GetValue(command) ?? []), Progress);
                foreach (var d in run.Diagnostics)
                    Console.Error.WriteLine(d);
                if (asJson)
                    Cli.WriteJson(run.WriteJson);
                else
                {
                    Console.Out.Write(run.Result.Output);
                    Console.Out.Flush();
                }
                return run.ExitCode;
            });
        });
        return vm;
    }

    private static void Progress(string line) => Console.Error.WriteLine("livegraft: " + line);
}
