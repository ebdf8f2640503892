using System.CommandLine;
using Livegraft.Kernel;
using Livegraft.Kernel.Build;
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
        var kernel = new Option<string?>("--kernel") { Description = "Kernel image (vmlinuz or vmlinux) or release to check against (default: the module's livegraft_kernel release)." };
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
            var ko = parse.GetValue(module)!.FullName;
            var entries = VerifyTable.Read(ko);
            var k = parse.GetValue(kernel);
            string image;
            VerifyReport report;
            if (parse.GetValue(running))
            {
                image = "running kernel";
                report = RunningKernelCode.Verify(entries, out var notes);
                foreach (var n in notes)
                    Console.Error.WriteLine(new Diagnostic(VerifyErrors.NotCheckedHere, Severity.Note, n, ko));
            }
            else
                report = CheckImage(ko, entries, k, out image);
            if (parse.GetValue(json))
                Cli.WriteJson(w =>
                {
                    w.WriteStartObject();
                    w.WriteBoolean("ok", report.Ok);
                    w.WriteString("module", ko);
                    w.WriteString("image", image);
                    w.WriteNumber("averageMaskedBytes", Math.Round(report.AverageMaskedBytes, 1));
                    w.WriteStartArray("functions");
                    foreach (var f in report.Functions)
                    {
                        w.WriteStartObject();
                        w.WriteString("object", f.Object);
                        w.WriteString("name", f.Name);
                        w.WriteNumber("sympos", f.Sympos);
                        w.WriteString("role", f.Role.ToString().ToLowerInvariant());
                        w.WriteNumber("size", f.Size);
                        w.WriteNumber("maskedBytes", f.MaskedBytes);
                        if (f.Address is { } a)
                            w.WriteString("address", $"0x{a:x}");
                        w.WriteBoolean("ok", f.Ok);
                        if (f.FirstDifference is { } d)
                            w.WriteNumber("firstDifference", d);
                        if (f.Id is not null)
                            w.WriteString("id", f.Id);
                        if (f.Problem is not null)
                            w.WriteString("problem", f.Problem);
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                    w.WriteEndObject();
                });
            else
            {
                foreach (var f in report.Functions)
                    Console.WriteLine($"{f.Object}: {(f.Sympos == 0 ? f.Name : f.Name + "," + f.Sympos)}: {(f.Ok ? "ok" : "MISMATCH")} ({f.Role.ToString().ToLowerInvariant()}, {f.Size} bytes, {f.MaskedBytes} masked{(f.FirstDifference is { } d ? $", first difference at +0x{d:x}" : "")})");
                foreach (var f in report.Functions.Where(f => !f.Ok))
                    Console.Error.WriteLine(f.ToDiagnostic(ko));
            }
            return report.Ok ? 0 : (int)ExitCode.VerificationFailed;
        }));
        return command;
    }

    /// <summary>Checks against an image file, or the image of a release (the module's own by default).</summary>
    private static VerifyReport CheckImage(string ko, IReadOnlyList<FunctionExpectation> entries, string? kernel, out string image)
    {
        KernelTarget? target = null;
        if (kernel is not null && File.Exists(kernel))
            image = Path.GetFullPath(kernel);
        else
        {
            var release = kernel ?? (LivepatchModule.ReadInfo(ko).TryGetValue(LivepatchModule.InfoKernel, out var v) && v.Count > 0 ? v[0] : KernelTarget.ReferenceRelease);
            target = new KernelTarget(release);
            target.EnsureImage();
            image = target.KernelImage;
        }
        var path = image;
        var codes = new Dictionary<string, ITargetCode>(StringComparer.Ordinal);
        ITargetCode CodeOf(string obj) => codes.TryGetValue(obj, out var c) ? c : codes[obj] = obj == "vmlinux"
            ? ImageCode.Open(path)
            : new ModuleCode(PatchBuilder.FindModule(target ?? throw new LivegraftException(ExitCode.Usage, VerifyErrors.NoTable,
                $"object {obj} is a module: pass --kernel RELEASE so its .ko can be found"), obj));
        return RunPreVerifier.Check(entries, CodeOf);
    }
}
