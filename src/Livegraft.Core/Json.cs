using System.Text;
using System.Text.Json;

namespace Livegraft;

/// <summary>
/// The conventions every <c>--json</c> document follows, written with <see cref="Utf8JsonWriter"/>
/// (AOT-safe, no reflection): one indented document, camelCase field names, enum values in kebab
/// case, <c>ok</c> and <c>exitCode</c> first where a command can fail, diagnostics in the shape of
/// <see cref="Diagnostic.WriteJson"/>. Each library owns the documents of its results
/// (<c>HostJson</c>, <c>BuildJson</c>, ...); the CLI only chooses which one to print.
/// </summary>
public static class Json
{
    /// <summary>Writes one document and returns it as text.</summary>
    public static string ToText(Action<Utf8JsonWriter> write)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
            write(w);
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary><c>"ok"</c> and <c>"exitCode"</c>, the first two fields of a command's document.</summary>
    public static void WriteOutcome(Utf8JsonWriter w, ExitCode code)
    {
        w.WriteBoolean("ok", code == ExitCode.Success);
        w.WriteNumber("exitCode", (int)code);
    }

    /// <summary>A <c>"diagnostics"</c> array.</summary>
    public static void WriteDiagnostics(Utf8JsonWriter w, IEnumerable<Diagnostic> diagnostics, string name = "diagnostics")
    {
        w.WriteStartArray(name);
        foreach (var d in diagnostics)
            d.WriteJson(w);
        w.WriteEndArray();
    }

    /// <summary>An array of strings.</summary>
    public static void WriteStrings(Utf8JsonWriter w, string name, IEnumerable<string> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values)
            w.WriteStringValue(v);
        w.WriteEndArray();
    }

    /// <summary>A string field that is <c>null</c> when the value is.</summary>
    public static void WriteNullable(Utf8JsonWriter w, string name, string? value)
    {
        if (value is null)
            w.WriteNull(name);
        else
            w.WriteString(name, value);
    }

    /// <summary>The document of a command that failed with <paramref name="e"/>: <c>ok</c>, <c>exitCode</c>, <c>diagnostics</c>.</summary>
    public static void WriteFailure(Utf8JsonWriter w, LivegraftException e)
    {
        w.WriteStartObject();
        WriteOutcome(w, e.ExitCode);
        WriteDiagnostics(w, e.Diagnostics);
        w.WriteEndObject();
    }

    /// <summary>An enum value as JSON shows it: <c>InTransition</c> → <c>in-transition</c>.</summary>
    public static string Kebab(string pascal)
    {
        var sb = new StringBuilder();
        foreach (var c in pascal)
        {
            if (char.IsUpper(c) && sb.Length > 0)
                sb.Append('-');
            sb.Append(char.ToLowerInvariant(c));
        }
        return sb.ToString();
    }

    /// <summary>A key as JSON names it: <c>kernel_build_id</c> → <c>kernelBuildId</c>.</summary>
    public static string CamelCase(string snake)
    {
        var parts = snake.Split(['_', '-', '.'], StringSplitOptions.RemoveEmptyEntries);
        return string.Concat(parts.Select((p, i) => i == 0 ? p : char.ToUpperInvariant(p[0]) + p[1..]));
    }
}
