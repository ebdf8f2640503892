using System.CommandLine;
using Livegraft.Host;

namespace Livegraft.Cli.Commands;

/// <summary><c>livegraft list [--json]</c>: loaded patches in stack order, and installed ones.</summary>
internal static class ListCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var json = Cli.JsonOption();
        var command = new Command("list", "List loaded live patches in stack order, and installed ones.");
        command.Options.Add(json);
        command.SetAction(parse =>
        {
            var asJson = parse.GetValue(json);
            return Cli.Guard(asJson, () =>
            {
                var listing = new LivepatchManager().List();
                foreach (var d in listing.Leftovers)
                    Console.Error.WriteLine(d.ToString());
                var (loaded, installed, release) = (listing.Loaded, listing.Installed, listing.RunningRelease);
                if (asJson)
                {
                    Cli.WriteJson(w => HostJson.WriteList(w, loaded, installed, release, listing.AtBoot));
                    return 0;
                }
                Console.Out.WriteLine(loaded.Count == 0 ? "no live patches loaded" : "loaded (stack order):");
                PrintPatches(loaded);
                if (installed.Count > 0)
                {
                    Console.Out.WriteLine("installed:");
                    foreach (var p in installed)
                    {
                        var plan = listing.AtBoot.FirstOrDefault(e => e.Patch == p);
                        var atBoot = plan?.SupersededBy is { } by ? $"  (superseded by {by} at boot)" : plan?.Quarantine is not null ? "  (quarantined: not loaded at boot)" : "";
                        Console.Out.WriteLine($"  {p.Release} {p.Sequence,4} {p.Name}{(p.Release == release ? "" : "  (other kernel, not loaded)")}{atBoot}");
                    }
                }
                return 0;
            });
        });
        return command;
    }

    /// <summary>Prints patches, objects and functions, indented.</summary>
    internal static void PrintPatches(IEnumerable<LoadedPatch> patches)
    {
        foreach (var p in patches)
        {
            var state = !p.Registered ? "disabled (module still loaded)" : p.Enabled ? "enabled" : "disabling";
            if (p.Transition)
                state += ", in transition";
            if (p.Replace == true)
                state += ", replace";
            Console.Out.WriteLine($"  {p.Name}: {state}");
            foreach (var o in p.Objects)
            {
                Console.Out.WriteLine($"    {o.Name}: {o.State}{(o.Reason is { } why ? $" ({why})" : "")}");
                foreach (var f in o.Functions)
                    Console.Out.WriteLine($"      {f.Name},{f.Sympos}");
            }
        }
    }
}
