using System.Globalization;
using System.Text.Json;

namespace Livegraft.Symbols;

/// <summary>What <c>livegraft symbols</c> lists: every symbol of an image, module or dump, or the
/// ones with one name, with their klp <c>sympos</c>.</summary>
/// <param name="Source">The file read.</param>
/// <param name="Table">Its symbols.</param>
/// <param name="Symbols">The symbols listed, in kallsyms order.</param>
/// <param name="Positions">Their sympos (empty when not asked for).</param>
public sealed record SymbolListing(string Source, SymbolTable Table, IReadOnlyList<KernelSymbol> Symbols, IReadOnlyList<int> Positions)
{
    /// <summary>Reads <paramref name="path"/> (see <see cref="SymbolTable.Open"/>) and lists all its
    /// symbols (with positions when <paramref name="withPositions"/>), or those named <paramref name="name"/>
    /// (always with positions; LG0322 when there is none).</summary>
    public static SymbolListing Of(string path, string? module, string? name, bool withPositions)
    {
        var table = SymbolTable.Open(path, module);
        if (name is null)
            // All of them: one pass over the source (a dump is read back in one stream, not per symbol).
            return new SymbolListing(path, table, table.Symbols.ToArray(), withPositions ? table.SymPositions() : []);
        var indices = table.IndicesOf(name).ToArray();
        if (indices.Length == 0)
            throw new LivegraftException(ExitCode.InvalidInput, SymbolErrors.SymbolNotFound, $"no symbol named '{name}' in {table.ObjectName}", path);
        return new SymbolListing(path, table, Array.ConvertAll(indices, i => table.Symbols[i]), Array.ConvertAll(indices, table.SymPos));
    }

    /// <summary>The <c>--json</c> document.</summary>
    public void WriteJson(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        Json.WriteOutcome(w, ExitCode.Success);
        w.WriteString("file", Source);
        w.WriteString("object", Table.ObjectName);
        w.WriteNumber("count", Symbols.Count);
        w.WriteStartArray("symbols");
        for (var k = 0; k < Symbols.Count; k++)
        {
            var s = Symbols[k];
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
            if (Positions.Count > 0)
                w.WriteNumber("sympos", Positions[k]);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }
}
