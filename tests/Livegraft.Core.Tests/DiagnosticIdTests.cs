using System.Text.RegularExpressions;

namespace Livegraft.Core.Tests;

/// <summary>One id per meaning: every id the code uses is listed in docs/diagnostics.md, once.</summary>
public partial class DiagnosticIdTests
{
    [GeneratedRegex(@"""(LG\d{4})""")]
    private static partial Regex IdLiteral();

    [GeneratedRegex(@"^\|\s*(LG\d{4})\s*\|", RegexOptions.Multiline)]
    private static partial Regex DocumentedId();

    private static List<string> Documented() =>
        [.. DocumentedId().Matches(File.ReadAllText(Path.Combine(Repository.Root, "docs", "diagnostics.md"))).Select(m => m.Groups[1].Value)];

    [Fact]
    public void EveryIdInTheCodeIsDocumented()
    {
        var documented = Documented().ToHashSet(StringComparer.Ordinal);
        var missing = Repository.SourceFiles()
            .SelectMany(f => IdLiteral().Matches(File.ReadAllText(f)).Select(m => (Id: m.Groups[1].Value, File: Path.GetRelativePath(Repository.Root, f))))
            .Where(x => !documented.Contains(x.Id)).Select(x => $"{x.Id} ({x.File})").Distinct().ToList();
        Assert.True(missing.Count == 0, "ids used in src/ but not listed in docs/diagnostics.md: " + string.Join(", ", missing));
    }

    [Fact]
    public void EveryIdIsListedOnce()
    {
        var twice = Documented().GroupBy(i => i).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.True(twice.Count == 0, "ids listed more than once in docs/diagnostics.md: " + string.Join(", ", twice));
    }
}
