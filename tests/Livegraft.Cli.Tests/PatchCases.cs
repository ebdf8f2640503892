namespace Livegraft.Cli.Tests;

/// <summary>One line of tests/patches/cases.txt.</summary>
public sealed record PatchCase(string Patch, string Expectation, string? Module, string? RefusalId, string Check)
{
    /// <summary>Directory the patches are copied to next to the test assembly.</summary>
    public static string Directory => Path.Combine(AppContext.BaseDirectory, "patches");

    /// <summary>Full path of the patch file.</summary>
    public string PatchPath => Path.Combine(Directory, Patch);

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
            var expectation = parts[1].Trim();
            string? module = null, refusal = null;
            if (expectation.StartsWith("load module=", StringComparison.Ordinal))
                module = expectation["load module=".Length..];
            else if (expectation.StartsWith("refuse ", StringComparison.Ordinal))
                refusal = expectation["refuse ".Length..];
            else if (expectation != "load")
                throw new FormatException($"cases.txt: unknown expectation '{expectation}'");
            cases.Add(new PatchCase(parts[0].Trim(), refusal is null ? "load" : "refuse", module, refusal, parts[2].Trim()));
        }
        return cases;
    }

    /// <inheritdoc/>
    public override string ToString() => Patch;
}
