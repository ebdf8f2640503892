using System.CommandLine;
using Livegraft.Host;

namespace Livegraft.Cli.Commands;

/// <summary><c>livegraft install</c>, <c>uninstall</c> and <c>load-installed</c>: patches kept for boot.</summary>
internal static class InstallCommand
{
    /// <summary>Builds <c>install PATCH.ko</c>.</summary>
    public static Command Create()
    {
        var file = new Argument<string>("patch") { Description = "Livepatch module (.ko) to keep for its kernel release." };
        var force = new Option<bool>("--force") { Description = "Install even a patch quarantined by boot safety (it crashed or hung an earlier boot), lifting the quarantine." };
        var drop = new Option<bool>("--drop") { Description = "Install an atomic replace patch that does not carry the fixes of patches installed before it, uninstalling them." };
        var wait = LoadCommand.WaitOption();
        var json = Cli.JsonOption();
        var command = new Command("install", "Store a live patch under /var/lib/livegraft/<release>/ and enable the boot unit.");
        command.Arguments.Add(file);
        command.Options.Add(force);
        command.Options.Add(drop);
        command.Options.Add(wait);
        command.Options.Add(json);
        command.SetAction(parse =>
        {
            var asJson = parse.GetValue(json);
            return Cli.Guard(asJson, () =>
            {
                var store = new PatchStore();
                var p = store.Install(parse.GetValue(file)!, parse.GetValue(force), line => Console.Error.WriteLine("livegraft: " + line),
                    Duration.Parse(parse.GetValue(wait) ?? "5m"), parse.GetValue(drop));
                if (asJson)
                    Cli.WriteJson(w => HostJson.Write(w, "install", [p], store.UnitPath));
                else
                    Console.Out.WriteLine($"installed {p.Name} for {p.Release} as {p.Path}; enabled {store.UnitPath}");
                return 0;
            });
        });
        return command;
    }

    /// <summary>Builds <c>uninstall NAME [--release R]</c>.</summary>
    public static Command CreateUninstall()
    {
        var name = new Argument<string>("name") { Description = "Patch (module) name." };
        var release = new Option<string?>("--release") { Description = "Only for this kernel release (default: every release)." };
        var wait = LoadCommand.WaitOption();
        var json = Cli.JsonOption();
        var command = new Command("uninstall", "Remove a stored live patch (does not unload it; see 'unload').");
        command.Arguments.Add(name);
        command.Options.Add(release);
        command.Options.Add(wait);
        command.Options.Add(json);
        command.SetAction(parse =>
        {
            var asJson = parse.GetValue(json);
            return Cli.Guard(asJson, () =>
            {
                var store = new PatchStore();
                var removed = store.Uninstall(parse.GetValue(name)!, parse.GetValue(release), line => Console.Error.WriteLine("livegraft: " + line),
                    Duration.Parse(parse.GetValue(wait) ?? "5m"));
                if (asJson)
                    Cli.WriteJson(w => HostJson.Write(w, "uninstall", removed, File.Exists(store.UnitPath) ? store.UnitPath : null));
                else
                {
                    foreach (var p in removed)
                        Console.Out.WriteLine($"uninstalled {p.Name} for {p.Release}");
                }
                return 0;
            });
        });
        return command;
    }

    /// <summary>Builds <c>load-installed</c>, which the boot unit runs.</summary>
    public static Command CreateLoadInstalled()
    {
        var timeout = LoadCommand.TimeoutOption("Per-patch transition timeout (default 60s).");
        var healthy = new Option<string>("--healthy-after")
        {
            Description = "Boot safety: how long the system must stay up without an oops before confirm-boot clears the patches' boot markers (default 60s).",
            DefaultValueFactory = _ => "60s",
        };
        var wait = LoadCommand.WaitOption();
        var json = Cli.JsonOption();
        var command = new Command("load-installed", "Load every patch installed for the running kernel, in install order (run at boot).");
        command.Options.Add(timeout);
        command.Options.Add(healthy);
        command.Options.Add(wait);
        command.Options.Add(json);
        command.SetAction(parse =>
        {
            var asJson = parse.GetValue(json);
            return Cli.Guard(asJson, () =>
            {
                var release = RunningKernel.Read(HostPaths.Default).Release;
                var results = new PatchStore().LoadInstalled(new LivepatchManager(), LoadCommand.Options(parse.GetValue(timeout), parse.GetValue(wait)),
                    Duration.Parse(parse.GetValue(healthy) ?? "60s"));
                foreach (var d in results.SelectMany(r => r.Diagnostics).Where(d => d.Severity != Severity.Note))
                    Console.Error.WriteLine(d.ToString());
                if (asJson)
                    Cli.WriteJson(w => HostJson.Write(w, release, results));
                else
                {
                    foreach (var r in results)
                        Console.Out.WriteLine($"{r.Patch.Name}: {Json.Kebab(r.Action.ToString())}");
                }
                return (int)BootLoadResult.ExitCodeOf(results);
            });
        });
        return command;
    }
}
