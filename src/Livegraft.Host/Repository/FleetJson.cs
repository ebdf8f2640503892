using System.Text.Json;

namespace Livegraft.Host.Repository;

/// <summary>The <c>--json</c> documents of <c>repo</c>, <c>update</c>, <c>rollback</c> and <c>health</c>, and
/// the fields <c>status</c> gains from the update record (docs/fleet.md lists them).</summary>
public static class FleetJson
{
    /// <summary><c>status</c>: the repository version in force, the last update check and rollback.</summary>
    public static void WriteStatusFields(Utf8JsonWriter w, HostStatus s)
    {
        var inForce = s.Patches.Where(p => p.Registered && p.Enabled).Select(p => s.Updates.Find(p.Name, s.Kernel.Release)).Where(k => k is not null).ToList();
        if (inForce.Count == 0)
            w.WriteNull("repositoryVersion");
        else
            w.WriteNumber("repositoryVersion", inForce[^1]!.Patch.Version);
        UpdateRecord.WriteCheck(w, "lastUpdate", s.Updates.LastCheck);
        UpdateRecord.WriteCheck(w, "lastRollback", s.Updates.LastRollback);
        w.WriteBoolean("rollbackAvailable", s.Updates.Previous is { } p && p.Release == s.Kernel.Release);
    }

    /// <summary>A loaded patch's <c>repository</c> field: where it came from and what it fixes, or null.</summary>
    public static void WriteOrigin(Utf8JsonWriter w, KnownPatch? k)
    {
        if (k is null)
        {
            w.WriteNull("repository");
            return;
        }
        w.WriteStartObject("repository");
        w.WriteString("id", k.Repository);
        w.WriteString("source", k.Source);
        w.WriteNumber("version", k.Patch.Version);
        w.WriteString("sha256", k.Patch.Sha256);
        w.WriteBoolean("cumulative", k.Patch.Cumulative);
        w.WriteString("published", PatchIndex.Time(k.Patch.Published));
        PatchIndex.WriteFixes(w, k.Patch.Fixes);
        w.WriteEndObject();
    }

    /// <summary><c>update</c> and <c>rollback</c>.</summary>
    public static void Write(Utf8JsonWriter w, UpdateResult r)
    {
        w.WriteStartObject();
        Json.WriteOutcome(w, r.ExitCode);
        w.WriteString("action", r.Action);
        w.WriteBoolean("changed", r.Changed);
        if (r.Target is null)
            w.WriteNull("target");
        else
        {
            w.WritePropertyName("target");
            PatchIndex.WritePatch(w, r.Target);
        }
        Json.WriteStrings(w, "before", r.Before);
        Json.WriteStrings(w, "after", r.After);
        Json.WriteStrings(w, "loaded", r.Loaded);
        Json.WriteStrings(w, "unloaded", r.Unloaded);
        Json.WriteStrings(w, "installed", r.Installed);
        Json.WriteStrings(w, "uninstalled", r.Uninstalled);
        Json.WriteDiagnostics(w, r.Diagnostics);
        w.WriteEndObject();
    }

    /// <summary><c>health</c>.</summary>
    public static void Write(Utf8JsonWriter w, HealthReport h)
    {
        w.WriteStartObject();
        Json.WriteOutcome(w, h.Healthy ? ExitCode.Success : ExitCode.HostFailure);
        w.WriteBoolean("healthy", h.Healthy);
        w.WriteString("mark", h.Mark.ToString());
        Json.WriteNullable(w, "since", h.Since?.ToString());
        w.WriteString("effectiveVersion", h.Status.EffectiveVersion);
        w.WriteString("verdict", Json.Kebab(h.Status.Verdict.ToString()));
        w.WriteString("taintLetters", h.Status.Kernel.TaintLetters);
        w.WriteStartArray("checks");
        foreach (var c in h.Checks)
        {
            w.WriteStartObject();
            w.WriteString("name", c.Name);
            w.WriteBoolean("ok", c.Ok);
            w.WriteString("detail", c.Detail);
            Json.WriteStrings(w, "evidence", c.Evidence);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        Json.WriteDiagnostics(w, h.Diagnostics);
        w.WriteEndObject();
    }

    /// <summary><c>repo list</c>.</summary>
    public static void Write(Utf8JsonWriter w, RepositoryListing l)
    {
        w.WriteStartObject();
        Json.WriteOutcome(w, l.SignatureValid ? ExitCode.Success : ExitCode.VerificationFailed);
        w.WriteString("location", l.Location);
        w.WriteString("repository", l.Index.Repository);
        w.WriteString("title", l.Index.Title);
        w.WriteNumber("serial", l.Index.Serial);
        w.WriteString("generated", PatchIndex.Time(l.Index.Generated));
        Json.WriteNullable(w, "signedBy", l.SignedBy);
        w.WriteBoolean("signatureValid", l.SignatureValid);
        w.WriteStartArray("patches");
        foreach (var p in l.Index.Patches)
            PatchIndex.WritePatch(w, p);
        w.WriteEndArray();
        Json.WriteDiagnostics(w, l.Diagnostics);
        w.WriteEndObject();
    }

    /// <summary><c>repo init</c> and <c>repo add</c>: the repository and what was published.</summary>
    public static void Write(Utf8JsonWriter w, string action, string directory, PatchIndex? index, IndexedPatch? added)
    {
        w.WriteStartObject();
        Json.WriteOutcome(w, ExitCode.Success);
        w.WriteString("action", action);
        w.WriteString("directory", directory);
        if (index is not null)
        {
            w.WriteString("repository", index.Repository);
            w.WriteNumber("serial", index.Serial);
        }
        if (added is not null)
        {
            w.WritePropertyName("patch");
            PatchIndex.WritePatch(w, added);
        }
        w.WriteEndObject();
    }

    /// <summary><c>repo keygen</c>.</summary>
    public static void WriteKey(Utf8JsonWriter w, string privateKey, string publicKey, string keyId)
    {
        w.WriteStartObject();
        Json.WriteOutcome(w, ExitCode.Success);
        w.WriteString("privateKey", privateKey);
        w.WriteString("publicKey", publicKey);
        w.WriteString("keyId", keyId);
        w.WriteEndObject();
    }
}
