using System.Text.Json;

namespace Livegraft.Verify;

/// <summary>The <c>--json</c> document of a verification (the Core JSON conventions).</summary>
public static class VerifyJson
{
    /// <summary>Writes the checks of <paramref name="module"/> against <paramref name="image"/>.</summary>
    public static void Write(Utf8JsonWriter w, VerifyReport report, string module, string image, IReadOnlyList<Diagnostic> notes)
    {
        w.WriteStartObject();
        Json.WriteOutcome(w, report.Ok ? ExitCode.Success : ExitCode.VerificationFailed);
        w.WriteString("module", module);
        w.WriteString("image", image);
        w.WriteNumber("averageMaskedBytes", Math.Round(report.AverageMaskedBytes, 1));
        w.WriteStartArray("functions");
        foreach (var f in report.Functions)
        {
            w.WriteStartObject();
            w.WriteString("object", f.Object);
            w.WriteString("name", f.Name);
            w.WriteNumber("sympos", f.Sympos);
            w.WriteString("role", Json.Kebab(f.Role.ToString()));
            w.WriteNumber("size", f.Size);
            w.WriteNumber("maskedBytes", f.MaskedBytes);
            if (f.Address is { } a)
                w.WriteString("address", $"0x{a:x}");
            w.WriteBoolean("ok", f.Ok);
            if (f.FirstDifference is { } d)
                w.WriteNumber("firstDifference", d);
            if (f.Id is not null)
                w.WriteString("id", f.Id);
            if (f.Problem is not null)
                w.WriteString("problem", f.Problem);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        Json.WriteDiagnostics(w, notes, "notes");
        w.WriteEndObject();
    }
}
