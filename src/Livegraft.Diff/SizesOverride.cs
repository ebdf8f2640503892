using System.Globalization;

namespace Livegraft.Diff;

/// <summary>
/// <c>livegraft diff --sizes alt=N,bug=N,jump=N,ex=N,orc=N,para=N,static-call=N,printk-index=N</c>:
/// special-section entry sizes given by hand, for objects of a kernel whose structs differ from
/// the target's (kpatch-build's <c>ALT_STRUCT_SIZE</c>, <c>BUG_STRUCT_SIZE</c>... environment).
/// Keys not given keep the baseline's value.
/// </summary>
public static class SizesOverride
{
    /// <summary>The keys, in the order the help text lists them.</summary>
    public static readonly IReadOnlyList<string> Keys = ["alt", "bug", "jump", "ex", "orc", "para", "static-call", "printk-index"];

    /// <summary>Parses <paramref name="text"/> over <paramref name="baseline"/>. LG0125 (exit 1, a
    /// usage error) for an unknown key, a missing '=' or a size that is not a positive integer.</summary>
    public static SpecialSectionSizes Parse(string text, SpecialSectionSizes baseline)
    {
        var sizes = baseline;
        foreach (var item in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = item.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0 || !int.TryParse(item.AsSpan(eq + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n <= 0 || n > 4096)
                throw Bad($"'{item}' is not KEY=SIZE with a positive size");
            sizes = item[..eq] switch
            {
                "alt" => sizes with { AltInstr = n },
                "bug" => sizes with { BugEntry = n },
                "jump" => sizes with { JumpEntry = n },
                "ex" => sizes with { ExceptionEntry = n },
                "orc" => sizes with { OrcEntry = n },
                "para" => sizes with { ParavirtPatchSite = n },
                "static-call" => sizes with { StaticCallSite = n },
                "printk-index" => sizes with { PrintkIndexEntry = n },
                var key => throw Bad($"unknown key '{key}' (known: {string.Join(", ", Keys)})"),
            };
        }
        return sizes;
    }

    private static LivegraftException Bad(string message) =>
        new(ExitCode.Usage, DiffErrors.SizesSyntax, "--sizes: " + message);
}
