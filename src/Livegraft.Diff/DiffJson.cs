using System.Text.Json;

namespace Livegraft.Diff;

/// <summary>The <c>--json</c> document of a diff (the Core JSON conventions).</summary>
public static class DiffJson
{
    /// <summary>Writes <paramref name="r"/>: its outcome, what changed, the klp functions and relocations,
    /// refusals and notes, and the output written (when any).</summary>
    public static void Write(Utf8JsonWriter w, DiffResult r, ExitCode code, string? outPath)
    {
        w.WriteStartObject();
        Json.WriteOutcome(w, code);
        w.WriteString("object", r.ObjectName);
        Json.WriteStrings(w, "changed", r.ChangedFunctions);
        Json.WriteStrings(w, "new", r.NewFunctions);
        Json.WriteStrings(w, "newData", r.NewObjects);
        Json.WriteStrings(w, "included", r.Included);
        Json.WriteStrings(w, "importNamespaces", r.ImportNamespaces);
        w.WriteStartArray("functions");
        foreach (var f in r.Functions)
        {
            w.WriteStartObject();
            w.WriteString("oldName", f.OldName);
            w.WriteNumber("sympos", f.Sympos);
            w.WriteString("newSymbol", f.NewSymbol);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartObject("callbacks");
        foreach (var (kind, list) in r.Callbacks)
            Json.WriteStrings(w, kind, list);
        w.WriteEndObject();
        w.WriteStartArray("klpRelocations");
        foreach (var k in r.KlpRelocations)
        {
            w.WriteStartObject();
            w.WriteString("section", k.Section);
            w.WriteNumber("offset", k.Offset);
            w.WriteNumber("type", k.Type);
            w.WriteString("symbol", k.SymbolName);
            w.WriteNumber("addend", k.Addend);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        Json.WriteDiagnostics(w, r.Refusals, "refusals");
        Json.WriteDiagnostics(w, r.Notes, "notes");
        if (outPath is not null && code == ExitCode.Success)
            w.WriteString("output", outPath);
        w.WriteEndObject();
    }
}
