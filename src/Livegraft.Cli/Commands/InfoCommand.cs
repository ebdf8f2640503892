using System.CommandLine;
using Livegraft.Host;

namespace Livegraft.Cli.Commands;

/// <summary><c>livegraft info PATCH.ko [--json]</c>: what a patch module records.</summary>
internal static class InfoCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var file = new Argument<string>("patch") { Description = "Kernel module (.ko)." };
        var json = Cli.JsonOption();
        var command = new Command("info", "Show what a patch module records: modinfo, livegraft metadata, klp objects and relocations.");
        command.Arguments.Add(file);
        command.Options.Add(json);
        command.SetAction(parse =>
        {
            var asJson = parse.GetValue(json);
            return Cli.Guard(asJson, () =>
            {
                var ko = KernelModuleFile.Read(parse.GetValue(file)!);
                if (asJson)
                {
                    Cli.WriteJson(w => HostJson.Write(w, ko));
                    return 0;
                }
                var o = Console.Out;
                o.WriteLine($"file:      {ko.Path}");
                o.WriteLine($"name:      {ko.Name}");
                o.WriteLine($"sha256:    {ko.Sha256}");
                o.WriteLine($"livepatch: {(ko.IsLivepatch ? "yes" : "no")}");
                o.WriteLine($"vermagic:  {ko.Vermagic ?? "(none)"}");
                if (ko.Replace is { } replace)
                    o.WriteLine($"replace:   {(replace ? "yes" : "no")}");
                foreach (var kv in ko.LivegraftEntries)
                    o.WriteLine($"livegraft.{kv.Key}: {kv.Value}");
                o.WriteLine($"objects:   {(ko.KlpObjects.Count == 0 ? "(none with klp relocations)" : string.Join(", ", ko.KlpObjects))}");
                foreach (var r in ko.KlpRelocations)
                    o.WriteLine($"  {r.Section}: {r.Count} relocation(s)");
                foreach (var s in ko.KlpSymbols)
                    o.WriteLine($"  symbol {s.Object}:{s.Symbol},{s.Sympos}");
                return 0;
            });
        });
        return command;
    }
}
