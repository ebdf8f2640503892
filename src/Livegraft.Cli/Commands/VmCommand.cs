using System.CommandLine;
using Livegraft.Host;
using Livegraft.Kernel;
using Livegraft.Vm;

namespace Livegraft.Cli.Commands;

/// <summary><c>livegraft vm [--kernel RELEASE] [--file PATH]... [--module NAME]... [--disk IMG]... [--ro-disk IMG]...
/// [--ssh-port PORT --authorized-key FILE...] [--cpus N] [--memory MIB] [--append PARAMS] [--timeout 120s] [--json] -- CMD</c>.</summary>
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
        var roDisks = new Option<string[]>("--ro-disk") { Description = "Raw disk image to attach read-only after the --disk ones; repeatable." };
        var ssh = new Option<int?>("--ssh-port") { Description = "Run an SSH server (dropbear) in the guest, reachable only at 127.0.0.1:PORT; the guest gets no other network." };
        var keys = new Option<string[]>("--authorized-key") { Description = "Public key file (authorized_keys lines) that may log in as root over --ssh-port; repeatable." };
        var cpus = new Option<int>("--cpus") { Description = "Guest CPUs (default 2; use 1 when several guests share a small machine).", DefaultValueFactory = _ => 2 };
        var memory = new Option<int>("--memory") { Description = "Guest memory in MiB (default 1024).", DefaultValueFactory = _ => 1024 };
        var append = new Option<string?>("--append") { Description = "Extra kernel command-line parameters." };
        var timeout = new Option<string>("--timeout") { Description = "Command timeout (default 120s); the guest kills the command then.", DefaultValueFactory = _ => "120s" };
        var consoleLog = new Option<string?>("--console-log") { Description = "Append the guest's whole console output to this file." };
        var json = Cli.JsonOption();
        var vm = new Command("vm", "Boot a throwaway QEMU guest of a kernel release, run one shell command in it, exit with its status.");
        vm.Arguments.Add(command);
        foreach (var o in new Option[] { kernel, files, modules, disks, roDisks, ssh, keys, cpus, memory, append, timeout, consoleLog, json })
            vm.Options.Add(o);
        vm.Validators.Add(result =>
        {
            if (result.GetValue(ssh) is not null && (result.GetValue(keys) ?? []).Length == 0)
                result.AddError("LG0840: --ssh-port needs at least one --authorized-key (root logs in with public keys only)");
        });
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
                    Cpus = parse.GetValue(cpus),
                    MemoryMiB = parse.GetValue(memory),
                };
                foreach (var f in parse.GetValue(files) ?? [])
                    options.Files.Add(new GuestFile(f, "/root/" + Path.GetFileName(f)));
                foreach (var m in parse.GetValue(modules) ?? [])
                    options.Modules.Add(m);
                foreach (var d in parse.GetValue(disks) ?? [])
                    options.Disks.Add(d);
                foreach (var d in parse.GetValue(roDisks) ?? [])
                    options.ReadOnlyDisks.Add(d);
                options.SshPort = parse.GetValue(ssh);
                foreach (var k in parse.GetValue(keys) ?? [])
                    options.AuthorizedKeys.Add(GuestSsh.ReadPublicKey(k));
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
