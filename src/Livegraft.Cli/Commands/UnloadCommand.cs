using System.CommandLine;
using Livegraft.Host;

namespace Livegraft.Cli.Commands;

/// <summary><c>livegraft unload NAME|--all [--timeout 60s] [--json]</c>.</summary>
internal static class UnloadCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var name = new Argument<string?>("name") { Description = "Patch (module) name.", Arity = ArgumentArity.ZeroOrOne };
        var all = new Option<bool>("--all") { Description = "Unload every live patch, newest first." };
        var timeout = LoadCommand.TimeoutOption("How long to wait for the unpatching transition before re-enabling the patch (default 60s).");
        var wait = LoadCommand.WaitOption();
        var json = Cli.JsonOption();
        var command = new Command("unload", "Disable a live patch, follow the reverse transition and remove its module.");
        command.Arguments.Add(name);
        command.Options.Add(all);
        command.Options.Add(timeout);
        command.Options.Add(wait);
        command.Options.Add(json);
        command.SetAction(parse =>
        {
            var asJson = parse.GetValue(json);
            var target = parse.GetValue(name);
            var everything = parse.GetValue(all);
            if ((target is null) == !everything)
            {
                Console.Error.WriteLine("livegraft: unload takes a patch name or --all (not both)");
                return (int)ExitCode.Usage;
            }
            return Cli.Guard(asJson, () =>
            {
                var options = LoadCommand.Options(parse.GetValue(timeout), parse.GetValue(wait));
                var manager = new LivepatchManager();
                // kbuild registers "foo-bar.ko" as foo_bar; accept either spelling.
                var results = everything ? manager.UnloadAll(options) : [manager.Unload(target!, options)];
                foreach (var d in results.SelectMany(r => r.Diagnostics))
                    Console.Error.WriteLine(d.ToString());
                if (asJson)
                    Cli.WriteJson(w => HostJson.Write(w, results));
                else
                {
                    foreach (var r in results)
                        Console.Out.WriteLine($"{r.Name}: {(r.Unloaded ? "unloaded" : "still loaded")}");
                }
                return results.All(r => r.Unloaded) ? (int)ExitCode.Success : (int)ExitCode.HostFailure;
            });
        });
        return command;
    }
}
