using System.Text;
using System.Text.Json;

namespace Livegraft.Host.Repository;

/// <summary>The outcome of one <c>update</c> (or <c>rollback</c>), kept for <c>status</c>.</summary>
/// <param name="Time">When it ran (UTC).</param>
/// <param name="Action"><c>updated</c>, <c>up-to-date</c>, <c>no-patch</c>, <c>failed</c>, <c>rolled-back</c>.</param>
/// <param name="ExitCode">The command's exit code.</param>
/// <param name="Source">The repository location given.</param>
/// <param name="Repository">The repository id from its index, when it was read.</param>
/// <param name="Serial">The index serial, when it was read.</param>
/// <param name="Version">The repository version now in force for this kernel, if any.</param>
/// <param name="Diagnostics">Why it failed, or notes.</param>
public sealed record UpdateCheck(DateTimeOffset Time, string Action, ExitCode ExitCode, string? Source, string? Repository, long? Serial, int? Version,
    IReadOnlyList<Diagnostic> Diagnostics);

/// <summary>A repository patch this host fetched and verified, and where its copy is.</summary>
/// <param name="Patch">The index entry.</param>
/// <param name="Repository">Id of the repository it came from.</param>
/// <param name="Source">The location it was fetched from.</param>
/// <param name="CachedFile">The verified copy under <see cref="HostPaths.Cache"/> (with its <c>.sig</c>).</param>
public sealed record KnownPatch(IndexedPatch Patch, string Repository, string Source, string CachedFile);

/// <summary>What was in force and installed before the last change, so <c>rollback</c> can put it back.</summary>
/// <param name="Time">When it was taken.</param>
/// <param name="Release">The kernel release it is for.</param>
/// <param name="InForce">Patches in force, in stack order.</param>
/// <param name="Installed">Patches installed for the release, in install order.</param>
public sealed record PatchSnapshot(DateTimeOffset Time, string Release, IReadOnlyList<string> InForce, IReadOnlyList<string> Installed);

/// <summary>
/// <c>/var/lib/livegraft/update.json</c>: the last update check, the newest serial accepted per
/// repository, the repository patches kept on this host, and the snapshot before the last change.
/// Written atomically; an unreadable record is reported (LG0615) and treated as empty.
/// </summary>
public sealed record UpdateRecord(UpdateCheck? LastCheck, UpdateCheck? LastRollback, IReadOnlyDictionary<string, long> Serials,
    IReadOnlyList<KnownPatch> Patches, PatchSnapshot? Previous)
{
    /// <summary>No record yet.</summary>
    public static UpdateRecord Empty { get; } = new(null, null, new Dictionary<string, long>(), [], null);

    /// <summary>The known patch of that name for that release, if any.</summary>
    public KnownPatch? Find(string name, string release) =>
        Patches.LastOrDefault(p => p.Patch.Name == name && p.Patch.KernelRelease == release);

    /// <summary>Reads the record; missing is empty, malformed is empty with a warning.</summary>
    public static UpdateRecord Read(HostPaths paths, out Diagnostic? warning)
    {
        warning = null;
        var path = paths.UpdateRecord;
        if (!File.Exists(path))
            return Empty;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = doc.RootElement;
            var serials = new Dictionary<string, long>(StringComparer.Ordinal);
            if (root.TryGetProperty("serials", out var s) && s.ValueKind == JsonValueKind.Object)
            {
                foreach (var p in s.EnumerateObject())
                    serials[p.Name] = p.Value.GetInt64();
            }
            var patches = new List<KnownPatch>();
            if (root.TryGetProperty("patches", out var list) && list.ValueKind == JsonValueKind.Array)
            {
                foreach (var e in list.EnumerateArray())
                    patches.Add(new KnownPatch(PatchIndex.ParsePatch(e.GetProperty("patch"), path), e.GetProperty("repository").GetString()!,
                        e.GetProperty("source").GetString()!, e.GetProperty("cachedFile").GetString()!));
            }
            PatchSnapshot? previous = null;
            if (root.TryGetProperty("previous", out var prev) && prev.ValueKind == JsonValueKind.Object)
                previous = new PatchSnapshot(prev.GetProperty("time").GetDateTimeOffset(), prev.GetProperty("release").GetString()!,
                    Strings(prev.GetProperty("inForce")), Strings(prev.GetProperty("installed")));
            return new UpdateRecord(ReadCheck(root, "lastCheck"), ReadCheck(root, "lastRollback"), serials, patches, previous);
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException or InvalidOperationException or KeyNotFoundException
                                      or FormatException or LivegraftException)
        {
            warning = new Diagnostic(FleetErrors.BadState, Severity.Warning, "the update record is unreadable and was ignored: " + e.Message, path);
            return Empty;
        }
    }

    /// <summary>Writes the record atomically (LG0614 on failure).</summary>
    public void Write(HostPaths paths)
    {
        Directory.CreateDirectory(paths.State);
        var text = Json.ToText(w =>
        {
            w.WriteStartObject();
            w.WriteNumber("format", 1);
            WriteCheck(w, "lastCheck", LastCheck);
            WriteCheck(w, "lastRollback", LastRollback);
            w.WriteStartObject("serials");
            foreach (var (id, serial) in Serials.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                w.WriteNumber(id, serial);
            w.WriteEndObject();
            w.WriteStartArray("patches");
            foreach (var p in Patches)
            {
                w.WriteStartObject();
                w.WritePropertyName("patch");
                PatchIndex.WritePatch(w, p.Patch);
                w.WriteString("repository", p.Repository);
                w.WriteString("source", p.Source);
                w.WriteString("cachedFile", p.CachedFile);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            if (Previous is null)
                w.WriteNull("previous");
            else
            {
                w.WriteStartObject("previous");
                w.WriteString("time", PatchIndex.Time(Previous.Time));
                w.WriteString("release", Previous.Release);
                Json.WriteStrings(w, "inForce", Previous.InForce);
                Json.WriteStrings(w, "installed", Previous.Installed);
                w.WriteEndObject();
            }
            w.WriteEndObject();
        });
        HostFiles.WriteAtomic(paths.UpdateRecord, Encoding.UTF8.GetBytes(text + "\n"));
    }

    /// <summary>Writes an update check as the <c>status</c> and <c>update</c> documents show it.</summary>
    public static void WriteCheck(Utf8JsonWriter w, string name, UpdateCheck? c)
    {
        if (c is null)
        {
            w.WriteNull(name);
            return;
        }
        w.WriteStartObject(name);
        w.WriteString("time", PatchIndex.Time(c.Time));
        w.WriteString("action", c.Action);
        w.WriteNumber("exitCode", (int)c.ExitCode);
        Json.WriteNullable(w, "source", c.Source);
        Json.WriteNullable(w, "repository", c.Repository);
        if (c.Serial is { } serial)
            w.WriteNumber("serial", serial);
        else
            w.WriteNull("serial");
        if (c.Version is { } version)
            w.WriteNumber("version", version);
        else
            w.WriteNull("version");
        Json.WriteDiagnostics(w, c.Diagnostics);
        w.WriteEndObject();
    }

    private static UpdateCheck? ReadCheck(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var c) || c.ValueKind != JsonValueKind.Object)
            return null;
        var diagnostics = new List<Diagnostic>();
        foreach (var d in c.GetProperty("diagnostics").EnumerateArray())
        {
            var severity = d.GetProperty("severity").GetString() switch { "error" => Severity.Error, "warning" => Severity.Warning, _ => Severity.Note };
            diagnostics.Add(new Diagnostic(d.GetProperty("id").GetString()!, severity, d.GetProperty("message").GetString()!,
                d.TryGetProperty("file", out var f) ? f.GetString() : null, d.TryGetProperty("location", out var l) ? l.GetString() : null));
        }
        return new UpdateCheck(c.GetProperty("time").GetDateTimeOffset(), c.GetProperty("action").GetString()!, (ExitCode)c.GetProperty("exitCode").GetInt32(),
            NullableString(c, "source"), NullableString(c, "repository"), NullableLong(c, "serial"), (int?)NullableLong(c, "version"), diagnostics);
    }

    private static string? NullableString(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static long? NullableLong(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt64() : null;

    private static List<string> Strings(JsonElement e) => e.EnumerateArray().Select(x => x.GetString()!).ToList();
}
