using System.CommandLine;
using Livegraft.Kernel;
using Livegraft.Verify;

namespace Livegraft.Cli.Commands;

/// <summary><c>livegraft verify PATCH.ko [--kernel IMAGE]</c>: the module's embedded run-pre table
/// checked against a kernel image (docs/verify.md).</summary>
internal static class VerifyCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var module = new Argument<FileInfo>("PATCH.ko") { Description = "A livepatch module built by livegraft." };
        var kernel = new Option<string?>("--kernel") { Description = "Kernel image (vmlinuz or vmlinux) or release to check against (default: the module's livegraft.kernel_release)." };
        var running = new Option<bool>("--running") { Description = "Check against the running kernel (/proc/kallsyms and /proc/kcore; root) instead of an image." };
        var json = Cli.JsonOption();
        var command = new Command("verify", "Check that a patch module's expected code matches a kernel image or the running kernel (run-pre matching).") { module, kernel, running, json };
        command.Validators.Add(result =>
        {
            if (result.GetResult(running) is not null && result.GetResult(kernel) is not null)
                result.AddError("--running and --kernel exclude each other");
        });
        command.SetAction(parse => Cli.Guard(parse.GetValue(json), () =>
        {
            var result = ModuleVerification.Check(parse.GetValue(module)!.FullName, parse.GetValue(kernel), parse.GetValue(running), Progress.ForStderr().Report);
            foreach (var n in result.Notes)
                Console.Error.WriteLine(n);
            if (parse.GetValue(json))
                Cli.WriteJson(w => VerifyJson.Write(w, result.Report, result.Module, result.Image, result.Notes));
            else
            {
                foreach (var f in result.Report.Functions)
                    Console.WriteLine($"{f.Object}: {(f.Sympos == 0 ? f.Name : f.Name + "," + f.Sympos)}: {(f.Ok ? "ok" : "MISMATCH")} ({Json.Kebab(f.Role.ToString())}, {f.Size} bytes, {f.MaskedBytes} masked{(f.FirstDifference is { } d ? $", first difference at +0x{d:x}" : "")})");
                foreach (var f in result.Report.Functions.Where(f => !f.Ok))
                    Console.Error.WriteLine(f.ToDiagnostic(result.Module));
            }
            return (int)result.ExitCode;
        }));
        return command;
    }
}
