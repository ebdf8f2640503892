namespace Livegraft.Kernel;

/// <summary><c>key=value</c> lines, as kconfig files and Livegraft's own cache records (tree stamp,
/// features, package resolution) are written: the first <c>=</c> splits; empty and <c>#</c> lines
/// are skipped; a later key wins.</summary>
internal static class KeyValueLines
{
    public static Dictionary<string, string> Parse(IEnumerable<string> lines)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in lines)
        {
            if (line.Length == 0 || line[0] == '#')
                continue;
            var eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
                result[line[..eq]] = line[(eq + 1)..];
        }
        return result;
    }

    public static Dictionary<string, string> Parse(string text) => Parse(text.Split('\n'));
}
