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
                var path = parse.GetValue(input)!;
                var table = SymbolTable.Open(path, parse.GetValue(module));
                var only = parse.GetValue(name);
                var indices = only is null ? [] : table.IndicesOf(only).ToArray();
                // All of them: one pass over the source (a dump is read back in one stream, not per symbol).
                var symbols = only is null ? table.Symbols.ToArray() : Array.ConvertAll(indices, i => table.Symbols[i]);
                var positions = only is null ? (asJson ? table.SymPositions() : []) : Array.ConvertAll(indices, table.SymPos);
                if (asJson)
                    WriteJson(path, table, symbols, positions);
                else
                    WriteText(symbols, positions);
                if (only is not null && indices.Length == 0)
                {
                    Console.Error.WriteLine($"livegraft: no symbol named '{only}' in {table.ObjectName}");
                    return (int)ExitCode.InvalidInput;
                }
                return (int)ExitCode.Success;
            });
        });
        return command;
    }

    private static void WriteText(KernelSymbol[] symbols, int[] positions)
    {
        var text = new StringBuilder(symbols.Length * 48);
        for (var k = 0; k < symbols.Length; k++)
        {
            text.Append(symbols[k].ToString());
            if (positions.Length > 0)
                text.Append(CultureInfo.InvariantCulture, $"\tsympos={positions[k]}");
            text.Append('\n');
        }
        Console.Out.Write(text.ToString());
    }

    private static void WriteJson(string path, SymbolTable table, KernelSymbol[] symbols, int[] positions) => Cli.WriteJson(w =>
    {
        w.WriteStartObject();
        w.WriteBoolean("ok", true);
        w.WriteString("file", path);
        w.WriteString("object", table.ObjectName);
        w.WriteNumber("count", symbols.Length);
        w.WriteStartArray("symbols");
        for (var k = 0; k < symbols.Length; k++)
        {
            var s = symbols[k];
            w.WriteStartObject();
            // Hex text: 64-bit addresses do not survive JSON numbers in most readers.
            w.WriteString("address", s.Address.ToString("x16", CultureInfo.InvariantCulture));
            w.WriteString("type", s.Type.ToString());
            w.WriteString("name", s.Name);
            if (s.Module is not null)
                w.WriteString("module", s.Module);
            if (s.Section is not null)
                w.WriteString("section", s.Section);
            if (s.Size != 0)
                w.WriteNumber("size", s.Size);
            w.WriteNumber("sympos", positions[k]);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    });
}
