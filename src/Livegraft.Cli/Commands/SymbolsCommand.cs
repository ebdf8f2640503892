using System.CommandLine;
using System.Globalization;
using System.Text;
using Livegraft.Symbols;

namespace Livegraft.Cli.Commands;

/// <summary><c>livegraft symbols IMAGE|kallsyms-dump|module.ko [--json] [--name NAME]</c>: a kernel's
/// symbols as <c>/proc/kallsyms</c> would list them.</summary>
internal static class SymbolsCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var input = new Argument<string>("input")
        {
            Description = "A bzImage (vmlinuz), a vmlinux ELF, a module .ko, or a /proc/kallsyms dump (plain or .gz).",
        };
        var name = new Option<string?>("--name") { Description = "Only symbols with this exact name (prints their klp sympos)." };
        var module = new Option<string?>("--module") { Description = "For a /proc/kallsyms dump: list this module's symbols instead of vmlinux's." };
        var json = Cli.JsonOption();
        var command = new Command("symbols", "Print a kernel's or module's symbols like /proc/kallsyms, recovered from the image's kallsyms tables.");
        command.Arguments.Add(input);
        command.Options.Add(name);
        command.Options.Add(module);
        command.Options.Add(json);
        command.SetAction(parse =>
        {
            var asJson = parse.GetValue(json);
            return Cli.Guard(asJson, () =>
            {
                var listing = SymbolListing.Of(parse.GetValue(input)!, parse.GetValue(module), parse.GetValue(name), withPositions: asJson);
                if (asJson)
                    Cli.WriteJson(listing.WriteJson);
                else
                    WriteText(listing);
                return (int)ExitCode.Success;
            });
        });
        return command;
    }

    private static void WriteText(SymbolListing listing)
    {
        var text = new StringBuilder(listing.Symbols.Count * 48);
        for (var k = 0; k < listing.Symbols.Count; k++)
        {
            text.Append(listing.Symbols[k].ToString());
            if (listing.Positions.Count > 0)
                text.Append(CultureInfo.InvariantCulture, $"\tsympos={listing.Positions[k]}");
            text.Append('\n');
        }
        Console.Out.Write(text.ToString());
    }
}
