using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Livegraft.Host.Repository;

/// <summary>What a patch fixes, as the publisher stated it at <c>repo add</c>.</summary>
/// <param name="Functions">Functions the patch replaces (from the module's verification table, or given).</param>
/// <param name="Cves">CVE ids, e.g. <c>CVE-2024-26581</c>.</param>
/// <param name="Notes">Free-text notes (bug numbers, advisories).</param>
public sealed record PatchFixes(IReadOnlyList<string> Functions, IReadOnlyList<string> Cves, IReadOnlyList<string> Notes)
{
    /// <summary>Nothing recorded.</summary>
    public static PatchFixes None { get; } = new([], [], []);
}

/// <summary>One published patch: the module for one kernel release and build id, at one version.</summary>
/// <param name="Name">Module name as the kernel registers it (<c>livepatch_fix_v2</c>); unique per kernel.</param>
/// <param name="Version">Version for this kernel, 1, 2, ...: higher is newer.</param>
/// <param name="KernelRelease">The release it is built for (<c>uname -r</c>).</param>
/// <param name="KernelBuildId">GNU build id of that kernel (hex).</param>
/// <param name="File">Path of the module inside the repository, relative, with <c>/</c>.</param>
/// <param name="Sha256">SHA-256 of the module file.</param>
/// <param name="Size">Size of the module file in bytes.</param>
/// <param name="Cumulative">True for an atomic-replace patch: it alone carries every fix of earlier versions.</param>
/// <param name="Published">When it was added (UTC).</param>
/// <param name="Fixes">What it fixes.</param>
public sealed record IndexedPatch(string Name, int Version, string KernelRelease, string KernelBuildId, string File, string Sha256, long Size,
    bool Cumulative, DateTimeOffset Published, PatchFixes Fixes)
{
    /// <summary>True when this entry is for the kernel with <paramref name="release"/> and <paramref name="buildId"/>.</summary>
    public bool IsFor(string release, string? buildId) =>
        KernelRelease == release && buildId is not null && string.Equals(KernelBuildId, buildId, StringComparison.OrdinalIgnoreCase);
}

/// <summary>
/// <c>index.json</c> of a patch repository (docs/fleet.md, "Repository format"), signed by
/// <c>index.json.sig</c>. Read and written with <see cref="Utf8JsonWriter"/> and <see cref="JsonDocument"/>
/// (AOT-safe, no reflection).
/// </summary>
/// <param name="Repository">A random id fixed at <c>repo init</c>; hosts track the serial per id.</param>
/// <param name="Title">Human name.</param>
/// <param name="Serial">Incremented by every change; a host refuses an index older than one it accepted.</param>
/// <param name="Generated">When this index was written (UTC).</param>
/// <param name="Patches">Every published patch, every kernel, every version.</param>
public sealed record PatchIndex(string Repository, string Title, long Serial, DateTimeOffset Generated, IReadOnlyList<IndexedPatch> Patches)
{
    /// <summary>The <c>format</c> field this version writes and reads.</summary>
    public const string Format = "livegraft-repository/1";

    /// <summary>File name of the index in the repository root.</summary>
    public const string FileName = "index.json";

    private static readonly Regex SafePath = new("^[A-Za-z0-9._+-]+(/[A-Za-z0-9._+-]+)*$", RegexOptions.CultureInvariant);

    /// <summary>Versions for one kernel, oldest first.</summary>
    public IReadOnlyList<IndexedPatch> For(string release, string? buildId) =>
        Patches.Where(p => p.IsFor(release, buildId)).OrderBy(p => p.Version).ToList();

    /// <summary>
    /// The patches that must be in force, in load order, for <paramref name="target"/>: the target
    /// alone when it is cumulative, else the chain back to the newest cumulative version before it
    /// (or to version 1) — each stacking patch applies on top of the ones before it.
    /// </summary>
    public IReadOnlyList<IndexedPatch> Chain(IndexedPatch target)
    {
        var versions = For(target.KernelRelease, target.KernelBuildId).Where(p => p.Version <= target.Version).ToList();
        var chain = new List<IndexedPatch>();
        for (var i = versions.Count - 1; i >= 0; i--)
        {
            chain.Insert(0, versions[i]);
            if (versions[i].Cumulative)
                break;
        }
        return chain;
    }

    /// <summary>The document's text.</summary>
    public string ToJson() => Json.ToText(w =>
    {
        w.WriteStartObject();
        w.WriteString("format", Format);
        w.WriteString("repository", Repository);
        w.WriteString("title", Title);
        w.WriteNumber("serial", Serial);
        w.WriteString("generated", Time(Generated));
        w.WriteStartArray("patches");
        foreach (var p in Patches.OrderBy(p => p.KernelRelease, StringComparer.Ordinal).ThenBy(p => p.KernelBuildId, StringComparer.Ordinal).ThenBy(p => p.Version))
            WritePatch(w, p);
        w.WriteEndArray();
        w.WriteEndObject();
    }) + "\n";

    /// <summary>Writes one entry as an object (also used by the host's update record and <c>repo list</c>).</summary>
    public static void WritePatch(Utf8JsonWriter w, IndexedPatch p)
    {
        w.WriteStartObject();
        w.WriteString("name", p.Name);
        w.WriteNumber("version", p.Version);
        w.WriteString("kernelRelease", p.KernelRelease);
        w.WriteString("kernelBuildId", p.KernelBuildId);
        w.WriteString("file", p.File);
        w.WriteString("sha256", p.Sha256);
        w.WriteNumber("size", p.Size);
        w.WriteBoolean("cumulative", p.Cumulative);
        w.WriteString("published", Time(p.Published));
        WriteFixes(w, p.Fixes);
        w.WriteEndObject();
    }

    /// <summary>The <c>fixes</c> object.</summary>
    internal static void WriteFixes(Utf8JsonWriter w, PatchFixes f)
    {
        w.WriteStartObject("fixes");
        Json.WriteStrings(w, "functions", f.Functions);
        Json.WriteStrings(w, "cves", f.Cves);
        Json.WriteStrings(w, "notes", f.Notes);
        w.WriteEndObject();
    }

    /// <summary>Parses an index (LG0601 on anything malformed, naming the field).</summary>
    public static PatchIndex Parse(ReadOnlySpan<byte> utf8, string? file)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(utf8.ToArray());
        }
        catch (JsonException e)
        {
            throw Bad("not JSON: " + e.Message, file);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw Bad("the index is not a JSON object", file);
            var format = Str(root, "format", file);
            if (format != Format)
                throw Bad($"format '{format}' is not '{Format}' (a newer Livegraft wrote it?)", file);
            var patches = new List<IndexedPatch>();
            if (!root.TryGetProperty("patches", out var list) || list.ValueKind != JsonValueKind.Array)
                throw Bad("'patches' is missing or not an array", file);
            var i = 0;
            foreach (var e in list.EnumerateArray())
                patches.Add(ParsePatch(e, $"{file}: patches[{i++}]"));
            return new PatchIndex(Str(root, "repository", file), Str(root, "title", file), Int(root, "serial", file),
                Timestamp(root, "generated", file), patches);
        }
    }

    /// <summary>Parses one entry as <see cref="WritePatch"/> wrote it.</summary>
    public static IndexedPatch ParsePatch(JsonElement e, string? where)
    {
        if (e.ValueKind != JsonValueKind.Object)
            throw Bad("an entry is not an object", where);
        var file = Str(e, "file", where);
        if (!SafePath.IsMatch(file) || file.Split('/').Any(part => part is "." or ".."))
            throw Bad($"'file' {file} is not a plain relative path inside the repository", where);
        var sha = Str(e, "sha256", where).ToLowerInvariant();
        if (sha.Length != 64 || !sha.All(char.IsAsciiHexDigit))
            throw Bad("'sha256' is not 64 hex digits", where);
        var version = Int(e, "version", where);
        if (version is < 1 or > int.MaxValue)
            throw Bad("'version' must be a positive integer", where);
        if (!e.TryGetProperty("cumulative", out var cumulative) || cumulative.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
            throw Bad("'cumulative' is missing or not a boolean", where);
        var fixes = PatchFixes.None;
        if (e.TryGetProperty("fixes", out var f) && f.ValueKind == JsonValueKind.Object)
            fixes = new PatchFixes(Strings(f, "functions", where), Strings(f, "cves", where), Strings(f, "notes", where));
        return new IndexedPatch(Str(e, "name", where), (int)version, Str(e, "kernelRelease", where), Str(e, "kernelBuildId", where).ToLowerInvariant(),
            file, sha, Int(e, "size", where), cumulative.GetBoolean(), Timestamp(e, "published", where), fixes);
    }

    /// <summary>ISO 8601 UTC with seconds, as every document writes times.</summary>
    public static string Time(DateTimeOffset t) => t.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static string Str(JsonElement e, string name, string? where) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : throw Bad($"'{name}' is missing or not a string", where);

    private static long Int(JsonElement e, string name, string? where) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n) && n >= 0
            ? n : throw Bad($"'{name}' is missing or not a non-negative integer", where);

    private static DateTimeOffset Timestamp(JsonElement e, string name, string? where) =>
        DateTimeOffset.TryParse(Str(e, name, where), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t)
            ? t : throw Bad($"'{name}' is not an ISO 8601 time", where);

    private static List<string> Strings(JsonElement e, string name, string? where)
    {
        if (!e.TryGetProperty(name, out var v))
            return [];
        if (v.ValueKind != JsonValueKind.Array || v.EnumerateArray().Any(x => x.ValueKind != JsonValueKind.String))
            throw Bad($"'{name}' is not an array of strings", where);
        return v.EnumerateArray().Select(x => x.GetString()!).ToList();
    }

    private static LivegraftException Bad(string why, string? where) => new(ExitCode.InvalidInput, FleetErrors.BadIndex, "malformed index: " + why, where);
}
