namespace Livegraft.Diff.Tests;

/// <summary>What a case expects of the differ.</summary>
public enum Outcome
{
    /// <summary>A patch is produced.</summary>
    Accept,
    /// <summary>The change is refused with the listed diagnostic ids.</summary>
    Refuse,
    /// <summary>Nothing functional changed.</summary>
    NoChange,
}

/// <summary>One line of cases.txt.</summary>
public sealed record DiffCase(string Name, Outcome Outcome, IReadOnlyList<string> RefusalIds, IReadOnlyDictionary<string, string> Columns)
{
    /// <summary>The space-separated list in <paramref name="key"/>, empty when the column is absent.</summary>
    public IReadOnlyList<string> List(string key) =>
        Columns.TryGetValue(key, out var v) ? v.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : [];

    /// <summary>True when the line has the column.</summary>
    public bool Has(string key) => Columns.ContainsKey(key);

    /// <inheritdoc/>
    public override string ToString() => Name;
}

/// <summary>Reads cases.txt: <c>name | outcome | key=value | ...</c>, '#' starts a comment line.</summary>
public static class CaseTable
{
    private static readonly HashSet<string> KnownColumns = new(StringComparer.Ordinal)
    {
        "changed", "new", "objects", "klp", "callbacks", "funcs", "notes", "parent", "object", "requires",
        "transform", "sizes", "cflags", "exports", "module-defines", "imports", "depends",
    };

    private static readonly Lazy<IReadOnlyList<DiffCase>> All = new(() => Parse(File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "cases.txt"))));

    /// <summary>Every case of the table.</summary>
    public static IReadOnlyList<DiffCase> Cases => All.Value;

    /// <summary>The case named <paramref name="name"/>.</summary>
    public static DiffCase Get(string name) => Cases.Single(c => c.Name == name);

    /// <summary>Parses the table; throws on a malformed line so a typo cannot silently drop a case.</summary>
    public static IReadOnlyList<DiffCase> Parse(IEnumerable<string> lines)
    {
        var cases = new List<DiffCase>();
        var lineNo = 0;
        foreach (var raw in lines)
        {
            lineNo++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
                continue;
            var cells = line.Split('|', StringSplitOptions.TrimEntries);
            if (cells.Length < 2 || cells[0].Length == 0)
                throw new FormatException($"cases.txt:{lineNo}: expected '<case> | <outcome> ...'");
            var outcomeWords = cells[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var (outcome, ids) = outcomeWords switch
            {
                ["accept"] => (Outcome.Accept, Array.Empty<string>()),
                ["nochange"] => (Outcome.NoChange, Array.Empty<string>()),
                ["refuse", var list] => (Outcome.Refuse, list.Split(',', StringSplitOptions.RemoveEmptyEntries)),
                _ => throw new FormatException($"cases.txt:{lineNo}: unknown outcome '{cells[1]}'"),
            };
            var columns = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var cell in cells.Skip(2))
            {
                var eq = cell.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0 || !KnownColumns.Contains(cell[..eq].Trim()))
                    throw new FormatException($"cases.txt:{lineNo}: bad column '{cell}'");
                columns[cell[..eq].Trim()] = cell[(eq + 1)..].Trim();
            }
            cases.Add(new DiffCase(cells[0], outcome, ids, columns));
        }
        return cases;
    }
}
