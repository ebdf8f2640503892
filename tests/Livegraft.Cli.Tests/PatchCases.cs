namespace Livegraft.Cli.Tests;

/// <summary>One line of tests/patches/cases.txt.</summary>
public sealed record PatchCase(string Patch, string Expectation, string? Module, string? RefusalId, string Check, IReadOnlyList<string>? Changed = null)
{
    /// <summary>More modules the check needs in the guest (<c>needs=brd,loop</c>), not patched.</summary>
    public IReadOnlyList<string> Needs { get; init; } = [];

    /// <summary>Diagnostic ids the build must report as notes or warnings (<c>note=ID,ID</c>).</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];

    /// <summary>Notes expected on one kernel series instead of <see cref="Notes"/>
    /// (<c>note@6.12=ID,ID</c>: its objects are built otherwise).</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> SeriesNotes { get; init; } = new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>The notes expected when building for <paramref name="target"/>.</summary>
    public IReadOnlyList<string> NotesFor(Livegraft.Kernel.KernelTarget target) =>
        SeriesNotes.TryGetValue(target.Packages.Series, out var notes) ? notes : Notes;

    /// <summary>Directory the patches are copied to next to the test assembly.</summary>
    public static string Directory => Path.Combine(AppContext.BaseDirectory, "patches");

    /// <summary>Full path of the patch file.</summary>
    public string PatchPath => Path.Combine(Directory, Patch);

    /// <summary>The patch for <paramref name="target"/>: the series' variant
    /// (<c>tests/patches/&lt;series&gt;/NAME</c>, for a kernel whose source needs another hunk) when
    /// there is one, else <see cref="PatchPath"/>.</summary>
    public string PatchPathFor(Livegraft.Kernel.KernelTarget target)
    {
        var variant = Path.Combine(Directory, target.Packages.Series, Patch);
        return File.Exists(variant) ? variant : PatchPath;
    }

    /// <summary>Reads the table.</summary>
    public static IReadOnlyList<PatchCase> All()
    {
        var cases = new List<PatchCase>();
        foreach (var raw in File.ReadAllLines(Path.Combine(Directory, "cases.txt")))
        {
            if (raw.Length == 0 || raw.StartsWith('#'))
                continue;
            var parts = raw.Split('|', 3);
            if (parts.Length != 3)
                throw new FormatException($"cases.txt: bad line '{raw}'");
            var words = parts[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            string? module = null, refusal = null;
            List<string>? changed = null;
            List<string> notes = [], needs = [];
            var seriesNotes = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
            var kind = words.Length > 0 ? words[0] : "";
            foreach (var w in words.Skip(1))
            {
                if (w.StartsWith("module=", StringComparison.Ordinal))
                    module = w["module=".Length..];
                else if (w.StartsWith("changed=", StringComparison.Ordinal))
                    changed = [.. w["changed=".Length..].Split(',')];
                else if (w.StartsWith("needs=", StringComparison.Ordinal))
                    needs = [.. w["needs=".Length..].Split(',')];
                else if (w.StartsWith("note=", StringComparison.Ordinal))
                    notes = [.. w["note=".Length..].Split(',')];
                else if (w.StartsWith("note@", StringComparison.Ordinal) && w.IndexOf('=', StringComparison.Ordinal) is > 5 and var eq)
                    seriesNotes[w[5..eq]] = w[(eq + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries);
                else if (kind == "refuse")
                    refusal = w;
                else
                    throw new FormatException($"cases.txt: unknown word '{w}' in '{raw}'");
            }
            if (kind is not ("load" or "refuse" or "build" or "nochange") || (kind == "refuse" && refusal is null))
                throw new FormatException($"cases.txt: unknown expectation '{parts[1].Trim()}'");
            cases.Add(new PatchCase(parts[0].Trim(), kind, module, refusal, parts[2].Trim(), changed) { Notes = notes, Needs = needs, SeriesNotes = seriesNotes });
        }
        return cases;
    }

    /// <inheritdoc/>
    public override string ToString() => Patch;
}
