using System.Text.Json;

namespace Livegraft.Kernel.Build;

/// <summary>The <c>--json</c> document of <c>livegraft build</c> (the Core JSON conventions).</summary>
public static class BuildJson
{
    /// <summary>Writes what <paramref name="report"/> built for <paramref name="request"/>.</summary>
    public static void Write(Utf8JsonWriter w, BuildRequest request, BuildReport report)
    {
        w.WriteStartObject();
        Json.WriteOutcome(w, ExitCode.Success);
        w.WriteString("module", report.ModulePath);
        w.WriteString("moduleName", report.ModuleName);
        w.WriteString("sha256", report.Sha256);
        w.WriteString("kernel", request.Target.Release);
        w.WriteString("source", report.Source);
        w.WriteBoolean("replace", request.Replace);
        w.WriteNumber("klpRelocations", report.KlpRelocations);
        w.WriteStartArray("objects");
        foreach (var o in report.Objects)
        {
            w.WriteStartObject();
            w.WriteString("name", o.Name);
            w.WriteStartArray("functions");
            foreach (var f in o.Functions)
            {
                w.WriteStartObject();
                w.WriteString("name", f.OldName);
                w.WriteNumber("sympos", f.Sympos);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteNumber("callbacks", o.PrePatch.Count + o.PostPatch.Count + o.PreUnpatch.Count + o.PostUnpatch.Count);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("units");
        foreach (var u in report.Units)
        {
            w.WriteStartObject();
            w.WriteString("unit", u.Unit);
            w.WriteString("parent", u.Parent);
            Json.WriteStrings(w, "changed", u.Diff.ChangedFunctions);
            Json.WriteStrings(w, "new", u.Diff.NewFunctions);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        Json.WriteDiagnostics(w, report.PatchNotes, "patchNotes");
        w.WriteStartObject("timings");
        foreach (var (stage, time) in report.Timings)
            w.WriteNumber(stage, Math.Round(time.TotalSeconds, 3));
        w.WriteEndObject();
        w.WriteEndObject();
    }
}
