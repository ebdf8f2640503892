using System.CommandLine;
using Livegraft.Host.Repository;

namespace Livegraft.Cli.Commands;

/// <summary><c>livegraft update</c>, <c>rollback</c> and <c>health</c>: a host following a signed repository (docs/fleet.md).</summary>
internal static class UpdateCommand
{
    /// <summary>Builds <c>update --repo URL|PATH [--name N] [--version V] [--no-install] [--timeout 60s]</c>.</summary>
    public static Command Create()
    {
        var repo = new Option<string>("--repo") { Description = "Repository directory, file:// or http(s):// URL.", Required = true };
        var name = new Option<string?>("--name") { Description = "Apply this patch (module name) instead of the newest." };
        var version = new Option<int?>("--version") { Description = "Apply this version instead of the newest (pin, or go back)." };
        var noInstall = new Option<bool>("--no-install") { Description = "Only load; do not keep the patch for boot." };
        var timeout = LoadCommand.TimeoutOption("Transition timeout per patch (default 60s).");
        var json = Cli.JsonOption();
        var command = new Command("update", "Fetch the signed index, verify and apply the patch for the running kernel (and install it for boot).");
        foreach (var o in new Option[] { repo, name, version, noInstall, timeout, json })
            command.Options.Add(o);
        command.SetAction(parse =>
        {
            var asJson = parse.GetValue(json);
            return Cli.Guard(asJson, () =>
            {
                var result = new PatchUpdater().Update(new UpdateRequest(parse.GetValue(repo)!)
                {
                    Name = parse.GetValue(name),
                    Version = parse.GetValue(version),
                    Install = !parse.GetValue(noInstall),
                    Transition = LoadCommand.Options(parse.GetValue(timeout)),
                });
                return Render(result, asJson);
            });
        });
        return command;
    }

    /// <summary>Builds <c>rollback [--timeout 60s]</c>.</summary>
    public static Command CreateRollback()
    {
        var timeout = LoadCommand.TimeoutOption("Transition timeout per patch (default 60s).");
        var json = Cli.JsonOption();
        var command = new Command("rollback", "Put back the patches in force and installed before the last update.");
        command.Options.Add(timeout);
        command.Options.Add(json);
        command.SetAction(parse =>
        {
            var asJson = parse.GetValue(json);
            return Cli.Guard(asJson, () => Render(new PatchUpdater().Rollback(LoadCommand.Options(parse.GetValue(timeout))), asJson));
        });
        return command;
    }

    /// <summary>Builds <c>health [--since MARK] [--expect NAME]... [--settle 10s]</c>.</summary>
    public static Command CreateHealth()
    {
        var since = new Option<string?>("--since") { Description = "Baseline mark printed by an earlier 'livegraft health' (SECONDS:TAINT): compare the kernel log and taint against it." };
        var expect = new Option<string[]>("--expect") { Description = "Patch that must be in force; repeatable or comma-separated." };
        var settle = new Option<string>("--settle") { Description = "How long to let a transition finish before calling it unhealthy (default 10s).", DefaultValueFactory = _ => "10s" };
        var json = Cli.JsonOption();
        var command = new Command("health", "Check a host after a change: transition complete, patches in force, no new Oops/BUG/WARNING, no new taint but K.");
        foreach (var o in new Option[] { since, expect, settle, json })
            command.Options.Add(o);
        command.SetAction(parse =>
        {
            var asJson = parse.GetValue(json);
            return Cli.Guard(asJson, () =>
            {
                var mark = parse.GetValue(since) is { Length: > 0 } text ? HealthMark.Parse(text) : null;
                var names = (parse.GetValue(expect) ?? []).SelectMany(e => e.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
                var report = HostHealth.Check(null, mark, names, Host.Duration.Parse(parse.GetValue(settle) ?? "10s"));
                foreach (var d in report.Diagnostics)
                    Console.Error.WriteLine(d.ToString());
                if (asJson)
                    Cli.WriteJson(w => FleetJson.Write(w, report));
                else
                {
                    Console.Out.WriteLine($"{(report.Healthy ? "healthy" : "UNHEALTHY")} ({report.Status.EffectiveVersion}); mark {report.Mark}");
                    foreach (var c in report.Checks)
                        Console.Out.WriteLine($"  {(c.Ok ? "ok  " : "FAIL")} {c.Name}: {c.Detail}" + string.Concat(c.Evidence.Select(e => "\n       " + e)));
                }
                return report.Healthy ? 0 : (int)ExitCode.HostFailure;
            });
        });
        return command;
    }

    private static int Render(UpdateResult r, bool asJson)
    {
        foreach (var d in r.Diagnostics.Where(d => d.Severity != Severity.Note || !asJson))
            Console.Error.WriteLine(d.ToString());
        if (asJson)
            Cli.WriteJson(w => FleetJson.Write(w, r));
        else
        {
            var target = r.Target is null ? "" : $" (version {r.Target.Version}, {r.Target.Name})";
            Console.Out.WriteLine($"{r.Action}{target}: in force {(r.After.Count == 0 ? "none" : string.Join(", ", r.After))}" +
                (r.Loaded.Count > 0 ? $"; loaded {string.Join(", ", r.Loaded)}" : "") +
                (r.Unloaded.Count > 0 ? $"; unloaded {string.Join(", ", r.Unloaded)}" : "") +
                (r.Installed.Count > 0 ? $"; installed {string.Join(", ", r.Installed)}" : "") +
                (r.Uninstalled.Count > 0 ? $"; uninstalled {string.Join(", ", r.Uninstalled)}" : ""));
        }
        return (int)r.ExitCode;
    }
}
