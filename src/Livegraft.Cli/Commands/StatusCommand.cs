using System.CommandLine;
using Livegraft.Host;

namespace Livegraft.Cli.Commands;

/// <summary><c>livegraft status [--json]</c>: kernel, effective version, patches, blockers, taint, verdict.</summary>
internal static class StatusCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var json = Cli.JsonOption();
        var command = new Command("status", "Show the running kernel, the patches in force, tasks not yet switched and a verdict.");
        command.Options.Add(json);
        command.SetAction(parse =>
        {
            var asJson = parse.GetValue(json);
            return Cli.Guard(asJson, () =>
            {
                var s = new LivepatchManager().Status();
                foreach (var d in s.Diagnostics)
                    Console.Error.WriteLine(d.ToString());
                if (asJson)
                {
                    Cli.WriteJson(w => HostJson.Write(w, s));
                    return 0;
                }
                Console.Out.WriteLine($"kernel:    {s.Kernel.Release}" + (s.Kernel.BuildId is null ? "" : $" (build id {s.Kernel.BuildId})"));
                Console.Out.WriteLine($"effective: {s.EffectiveVersion}");
                Console.Out.WriteLine($"verdict:   {Json.Kebab(s.Verdict.ToString())}");
                var flags = TaintFlag.Decode(s.Kernel.Tainted);
                Console.Out.WriteLine($"tainted:   {(flags.Count == 0 ? "no" : s.Kernel.TaintLetters + " (" + string.Join(", ", flags.Select(f => $"{f.Letter}: {f.Description}")) + ")")}");
                if (!s.LivepatchSupported)
                    Console.Out.WriteLine("live patching is not supported by this kernel");
                ListCommand.PrintPatches(s.Patches);
                foreach (var q in s.BootSafety.Quarantined)
                    Console.Out.WriteLine($"quarantined: {q.Name} ({q.Release}) is not loaded at boot: {q.Reason}; '{q.Retry}' tries it again");
                foreach (var m in s.BootSafety.Pending)
                    Console.Out.WriteLine($"boot safety: {m.Name} {m.State} since {m.Since}, not yet confirmed healthy ({m.HealthyAfter.TotalSeconds:0} s window)");
                if (s.Kexec?.LastReboot is { } last)
                    Console.Out.WriteLine($"last kexec: {last.FromRelease} -> {last.ToRelease} at {last.RequestedAt}: " +
                        (last.Arrived ? "arrived" : last.Rebooted ? $"rebooted, but running {s.Kernel.Release}" : "not rebooted yet"));
                if (s.TransitionPatch is not null)
                {
                    Console.Out.WriteLine($"{s.TransitionPatch} is in transition; {s.Blockers.Count} task(s) not switched:");
                    foreach (var b in s.Blockers)
                        Console.Out.WriteLine($"  {b}");
                }
                return 0;
            });
        });
        return command;
    }
}
