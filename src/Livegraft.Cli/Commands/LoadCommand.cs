using System.CommandLine;
using Livegraft.Host;

namespace Livegraft.Cli.Commands;

/// <summary><c>livegraft load PATCH.ko [--timeout 60s] [--force] [--json]</c>.</summary>
internal static class LoadCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var file = new Argument<string>("patch") { Description = "Livepatch module (.ko) built for the running kernel." };
        var timeout = TimeoutOption("How long to wait for the transition before reverting it (default 60s).");
        var force = new Option<bool>("--force") { Description = "After the timeout, force the transition instead of reverting (dangerous: the module can never be removed)." };
        var drop = new Option<bool>("--drop") { Description = "Let an atomic replace patch undo fixes in force that it does not carry (refused without it)." };
        var wait = WaitOption();
        var json = Cli.JsonOption();
        var command = new Command("load", "Verify a live patch against the running kernel, load it and follow its transition.");
        command.Arguments.Add(file);
        command.Options.Add(timeout);
        command.Options.Add(force);
        command.Options.Add(drop);
        command.Options.Add(wait);
        command.Options.Add(json);
        command.SetAction(parse =>
        {
            var asJson = parse.GetValue(json);
            return Cli.Guard(asJson, () =>
            {
                var options = Options(parse.GetValue(timeout), parse.GetValue(wait)) with { Force = parse.GetValue(force), Drop = parse.GetValue(drop) };
                var result = new LivepatchManager().Load(parse.GetValue(file)!, options);
                foreach (var d in result.Diagnostics.Where(d => d.Severity == Severity.Error))
                    Console.Error.WriteLine(d.ToString());
                if (asJson)
                    Cli.WriteJson(w => HostJson.Write(w, result));
                else
                {
                    Console.Out.WriteLine($"{result.Name}: {Json.Kebab(result.Outcome.ToString())}");
                    foreach (var b in result.Blockers)
                        Console.Out.WriteLine($"  blocked by {b}");
                }
                return (int)result.ExitCode;
            });
        });
        return command;
    }

    /// <summary><c>--timeout</c>, shared by the verbs that follow transitions.</summary>
    internal static Option<string> TimeoutOption(string description) => new("--timeout") { Description = description, DefaultValueFactory = _ => "60s" };

    /// <summary><c>--wait</c>, shared by the verbs that take the host lock.</summary>
    internal static Option<string> WaitOption() => new("--wait")
    {
        Description = "How long to wait for another livegraft operation, or a transition started elsewhere, before giving up (default 5m).",
        DefaultValueFactory = _ => "5m",
    };

    /// <summary>Transition options with progress on stderr.</summary>
    internal static TransitionOptions Options(string? timeout, string? wait = null) => new()
    {
        Timeout = Duration.Parse(timeout ?? "60s"),
        LockTimeout = Duration.Parse(wait ?? "5m"),
        Progress = line => Console.Error.WriteLine("livegraft: " + line),
    };
}
