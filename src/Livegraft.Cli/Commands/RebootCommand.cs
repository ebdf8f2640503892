using System.CommandLine;
using Livegraft.Host.Kexec;

namespace Livegraft.Cli.Commands;

/// <summary><c>livegraft reboot --kexec [--kernel RELEASE|IMAGE] [--initrd FILE] [--append TEXT] [--reuse-cmdline] [--dry-run] [--json]</c>.</summary>
internal static class RebootCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var kexec = new Option<bool>("--kexec") { Description = "Reboot through kexec: load the new kernel and jump to it without firmware (required; the only kind of reboot livegraft makes)." };
        var kernel = new Option<string?>("--kernel") { Description = "Release (its /boot/vmlinuz-RELEASE) or image path; default: the newest installed image of the running kernel's flavour." };
        var initrd = new Option<string?>("--initrd") { Description = "Initrd for the new kernel; default: /boot/initrd.img-RELEASE when it exists." };
        var append = new Option<string?>("--append") { Description = "The new kernel's command line (with --reuse-cmdline: appended to the running one)." };
        var reuse = new Option<bool>("--reuse-cmdline") { Description = "Start from the running kernel's command line (the default without --append)." };
        var dryRun = new Option<bool>("--dry-run") { Description = "Resolve and check everything; load nothing, reboot nothing." };
        var json = Cli.JsonOption();
        var command = new Command("reboot", "Fast reboot into another kernel with kexec_file_load, through an orderly shutdown.");
        foreach (var o in new Option[] { kexec, kernel, initrd, append, reuse, dryRun, json })
            command.Options.Add(o);
        command.Validators.Add(result =>
        {
            if (!result.GetValue(kexec))
                result.AddError("reboot needs --kexec (a firmware reboot is the init system's job: use systemctl reboot)");
        });
        command.SetAction(parse =>
        {
            var asJson = parse.GetValue(json);
            return Cli.Guard(asJson, () =>
            {
                var request = new KexecRequest
                {
                    Kernel = parse.GetValue(kernel),
                    Initrd = parse.GetValue(initrd),
                    Append = parse.GetValue(append),
                    ReuseCommandLine = parse.GetValue(reuse),
                    DryRun = parse.GetValue(dryRun),
                };
                var rendered = false;
                try
                {
                    new KexecReboot().Run(request, r =>
                    {
                        rendered = true;
                        Render(r, asJson);
                    }, line => Console.Error.WriteLine("livegraft: " + line));
                }
                catch (LivegraftException e) when (rendered)
                {
                    // The reboot itself failed after the result was printed: one document only, so the
                    // diagnostics go to stderr and the exit code says it (docs/kexec.md, step 9).
                    foreach (var d in e.Diagnostics)
                        Console.Error.WriteLine(d.ToString());
                    return (int)e.ExitCode;
                }
                return 0;
            });
        });
        return command;
    }

    /// <summary>Prints what was loaded (or would be, for a dry run).</summary>
    private static void Render(KexecResult r, bool asJson)
    {
        if (asJson)
        {
            Cli.WriteJson(w => KexecJson.Write(w, r));
            return;
        }
        var p = r.Plan;
        var method = Json.Kebab(p.Method.ToString());
        Console.Out.WriteLine($"{(r.DryRun ? "would load" : "loaded")} {p.Image.Path} ({p.Image.Release})" + (p.Initrd is null ? " without initrd" : $" with {p.Initrd}"));
        Console.Out.WriteLine($"command line: {p.CommandLine}");
        Console.Out.WriteLine(r.DryRun ? $"dry run: not rebooting ({method} would)" : $"rebooting {p.Running.Release} -> {p.Image.Release} ({method})");
    }
}
