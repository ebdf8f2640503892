using System.CommandLine;
using Livegraft.Host;
using Livegraft.Host.Kexec;

namespace Livegraft.Cli.Commands;

/// <summary><c>livegraft confirm-boot [--no-wait] [--json]</c>: clears this boot's boot-safety markers once the healthy window has passed.</summary>
internal static class ConfirmBootCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var noWait = new Option<bool>("--no-wait") { Description = "Confirm only the markers already due; do not wait for the others." };
        var json = Cli.JsonOption();
        var command = new Command("confirm-boot", "After load-installed: wait for the healthy window, then clear the boot markers (or quarantine the patches if the kernel oopsed).");
        command.Options.Add(noWait);
        command.Options.Add(json);
        command.SetAction(parse =>
        {
            var asJson = parse.GetValue(json);
            return Cli.Guard(asJson, () =>
            {
                var c = new BootSafety().Confirm(!parse.GetValue(noWait), line => Console.Error.WriteLine("livegraft: " + line));
                foreach (var d in c.Diagnostics)
                    Console.Error.WriteLine(d.ToString());
                if (asJson)
                    Cli.WriteJson(w => KexecJson.Write(w, c));
                else
                {
                    foreach (var m in c.Confirmed)
                        Console.Out.WriteLine($"{m.Name}: confirmed");
                    foreach (var m in c.Waiting)
                        Console.Out.WriteLine($"{m.Name}: not yet due");
                    foreach (var q in c.Quarantined)
                        Console.Out.WriteLine($"{q.Name}: quarantined");
                }
                return (int)c.ExitCode;
            });
        });
        return command;
    }
}
