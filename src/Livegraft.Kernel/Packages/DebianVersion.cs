namespace Livegraft.Kernel.Packages;

/// <summary>Debian package version ordering (<c>[epoch:]upstream[-revision]</c>), as
/// <c>dpkg --compare-versions</c> and deb-version(7) define it: digits compare numerically,
/// letters before non-letters, and <c>~</c> before everything, even the end of the string
/// (<c>6.12.117-1~deb12u1</c> &lt; <c>6.12.117-1</c>).</summary>
public static class DebianVersion
{
    /// <summary>Negative, zero or positive as <paramref name="a"/> sorts before, with or after <paramref name="b"/>.</summary>
    public static int Compare(string a, string b)
    {
        var (ea, ua, ra) = Split(a);
        var (eb, ub, rb) = Split(b);
        if (ea != eb)
            return ea.CompareTo(eb);
        var c = ComparePart(ua, ub);
        return c != 0 ? c : ComparePart(ra, rb);
    }

    /// <summary>True when <paramref name="version"/> satisfies the relation (<c>=</c>, <c>&gt;=</c>,
    /// <c>&lt;=</c>, <c>&gt;&gt;</c>, <c>&lt;&lt;</c>) with <paramref name="bound"/>.</summary>
    public static bool Satisfies(string version, string relation, string bound)
    {
        var c = Compare(version, bound);
        return relation switch
        {
            "=" => c == 0,
            ">=" => c >= 0,
            "<=" => c <= 0,
            ">>" or ">" => c > 0,
            "<<" or "<" => c < 0,
            _ => throw new ArgumentException($"unknown version relation '{relation}'", nameof(relation)),
        };
    }

    private static (long Epoch, string Upstream, string Revision) Split(string v)
    {
        long epoch = 0;
        var colon = v.IndexOf(':', StringComparison.Ordinal);
        if (colon > 0 && long.TryParse(v.AsSpan(0, colon), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var e))
        {
            epoch = e;
            v = v[(colon + 1)..];
        }
        var dash = v.LastIndexOf('-');
        return dash < 0 ? (epoch, v, "") : (epoch, v[..dash], v[(dash + 1)..]);
    }

    private static int Order(char c) => c switch
    {
        '~' => -1,
        _ when char.IsAsciiLetter(c) => c,
        _ => c + 256,
    };

    private static int ComparePart(string a, string b)
    {
        int i = 0, j = 0;
        while (i < a.Length || j < b.Length)
        {
            // Non-digit prefix, character by character; the end of a string sorts after '~' only.
            while ((i < a.Length && !char.IsAsciiDigit(a[i])) || (j < b.Length && !char.IsAsciiDigit(b[j])))
            {
                var ca = i < a.Length && !char.IsAsciiDigit(a[i]) ? Order(a[i]) : 0;
                var cb = j < b.Length && !char.IsAsciiDigit(b[j]) ? Order(b[j]) : 0;
                if (ca != cb)
                    return ca.CompareTo(cb);
                i++;
                j++;
            }
            // Digit run, numerically (leading zeros ignored).
            while (i < a.Length && a[i] == '0')
                i++;
            while (j < b.Length && b[j] == '0')
                j++;
            int si = i, sj = j;
            while (i < a.Length && char.IsAsciiDigit(a[i]))
                i++;
            while (j < b.Length && char.IsAsciiDigit(b[j]))
                j++;
            if (i - si != j - sj)
                return (i - si).CompareTo(j - sj);
            var c = string.CompareOrdinal(a, si, b, sj, i - si);
            if (c != 0)
                return c;
        }
        return 0;
    }
}
