using System.Globalization;

namespace Livegraft.Host;

/// <summary>Durations as the command line writes them: <c>60</c>, <c>60s</c>, <c>500ms</c>, <c>2m</c>.</summary>
public static class Duration
{
    /// <summary>Parses a duration; throws LG0517 (usage) when it is not one.</summary>
    public static TimeSpan Parse(string text)
    {
        var t = text.Trim();
        (string number, double scale) = t switch
        {
            _ when t.EndsWith("ms", StringComparison.Ordinal) => (t[..^2], 0.001),
            _ when t.EndsWith('s') => (t[..^1], 1.0),
            _ when t.EndsWith('m') => (t[..^1], 60.0),
            _ when t.EndsWith('h') => (t[..^1], 3600.0),
            _ => (t, 1.0),
        };
        if (!double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value) || value <= 0 || value * scale > 86400)
            throw new LivegraftException(ExitCode.Usage, "LG0517", $"'{text}' is not a duration (e.g. 60s, 500ms, 2m)");
        return TimeSpan.FromSeconds(value * scale);
    }
}
