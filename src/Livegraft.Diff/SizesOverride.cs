using System.Globalization;

namespace Livegraft.Diff;

/// <summary>
/// <c>livegraft diff --sizes alt=14,bug=12,...</c>: special-section entry sizes and field offsets
/// given by hand, each replacing the target's probed value (or all of them, when every name is
/// given, so no tree is needed): for objects of a kernel whose structs differ from the target's
/// (kpatch-build's <c>ALT_STRUCT_SIZE</c>, <c>BUG_STRUCT_SIZE</c>... environment).
/// </summary>
public static class SizesOverride
{
    /// <summary>The names <c>--sizes</c> takes, with what each one is.</summary>
    public static IReadOnlyList<(string Name, string Meaning)> Names { get; } =
    [
        ("alt", "sizeof(struct alt_instr)"),
        ("alt-len", "offsetof(struct alt_instr, instrlen)"),
        ("bug", "sizeof(struct bug_entry)"),
        ("jump", "sizeof(struct jump_entry)"),
        ("jump-key", "offsetof(struct jump_entry, key)"),
        ("ex", "sizeof(struct exception_table_entry)"),
        ("static-call", "sizeof(struct static_call_site)"),
        ("static-call-key", "offsetof(struct static_call_site, key)"),
        ("orc", "sizeof(struct orc_entry)"),
        ("pv", "sizeof(struct paravirt_patch_site), 0 when the kernel has none (also: para)"),
        ("pv-len", "offsetof(struct paravirt_patch_site, len)"),
        ("pi", "sizeof(struct pi_entry), 0 without CONFIG_PRINTK_INDEX (also: printk-index)"),
    ];

    /// <summary>Other names some take, as kpatch-build's users know them.</summary>
    private static readonly Dictionary<string, string> Aliases = new(StringComparer.Ordinal)
    {
        ["para"] = "pv",
        ["para-len"] = "pv-len",
        ["printk-index"] = "pi",
    };

    /// <summary>Parses <paramref name="text"/> (<c>name=value</c>, comma-separated).</summary>
    /// <exception cref="LivegraftException">LG0125 (exit 1, a usage error) for an unknown name, a bad number or a name given twice.</exception>
    public static IReadOnlyDictionary<string, int> Parse(string text)
    {
        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var item in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = item.IndexOf('=', StringComparison.Ordinal);
            var name = eq > 0 ? item[..eq] : item;
            name = Aliases.GetValueOrDefault(name, name);
            if (!Names.Any(n => n.Name == name))
                throw Bad($"unknown size '{name}' (known: {string.Join(", ", Names.Select(n => n.Name))})", text);
            if (eq < 0 || !int.TryParse(item.AsSpan(eq + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value > 4096)
                throw Bad($"'{item}': the value must be a number of bytes", text);
            if (value == 0 && name is not ("pv" or "pv-len" or "pi"))
                throw Bad($"'{item}': only pv, pv-len and pi may be 0 (a struct the kernel does not have)", text);
            if (!result.TryAdd(name, value))
                throw Bad($"'{name}' is given twice", text);
        }
        return result;
    }

    /// <summary><paramref name="baseline"/> with the sizes <paramref name="text"/> names replaced.</summary>
    public static SpecialSectionSizes Parse(string text, SpecialSectionSizes baseline) => Apply(baseline, Parse(text));

    /// <summary>True when <paramref name="values"/> names every size, so no target is needed.</summary>
    public static bool IsComplete(IReadOnlyDictionary<string, int> values) => Names.All(n => values.ContainsKey(n.Name));

    /// <summary><paramref name="sizes"/> with <paramref name="values"/> replacing its fields.</summary>
    public static SpecialSectionSizes Apply(SpecialSectionSizes sizes, IReadOnlyDictionary<string, int> values)
    {
        int V(string name, int current) => values.TryGetValue(name, out var v) ? v : current;
        return sizes with
        {
            AltInstr = V("alt", sizes.AltInstr),
            AltInstrLenOffset = V("alt-len", sizes.AltInstrLenOffset),
            BugEntry = V("bug", sizes.BugEntry),
            JumpEntry = V("jump", sizes.JumpEntry),
            JumpKeyOffset = V("jump-key", sizes.JumpKeyOffset),
            ExceptionEntry = V("ex", sizes.ExceptionEntry),
            StaticCallSite = V("static-call", sizes.StaticCallSite),
            StaticCallKeyOffset = V("static-call-key", sizes.StaticCallKeyOffset),
            OrcEntry = V("orc", sizes.OrcEntry),
            ParavirtPatchSite = V("pv", sizes.ParavirtPatchSite),
            ParavirtLenOffset = V("pv-len", sizes.ParavirtLenOffset),
            PrintkIndexEntry = V("pi", sizes.PrintkIndexEntry),
        };
    }

    private static LivegraftException Bad(string message, string text) =>
        new(ExitCode.Usage, DiffErrors.SizesSyntax, "--sizes: " + message, text);
}
