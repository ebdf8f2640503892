namespace Livegraft.Diff;

/// <summary>How the entries of one special section are tied to functions.</summary>
/// <param name="Name">Section name.</param>
/// <param name="EntrySize">Bytes per entry for the target kernel.</param>
/// <param name="AnchorOffset">Offset in the entry of the relocation that points at the code the entry belongs to.</param>
/// <param name="KeyOffset">Offset of a relocation to a static key or static call key, or -1.</param>
internal sealed record SpecialSection(string Name, int EntrySize, int AnchorOffset, int KeyOffset = -1);

/// <summary>The x86-64 special sections the differ filters per function (keeping only entries of
/// included functions) and the ones it drops or regenerates.</summary>
internal static class SpecialSections
{
    /// <summary>Sections whose entries are filtered per function.</summary>
    public static IReadOnlyList<SpecialSection> Filtered(SpecialSectionSizes sizes) =>
    [
        new("__bug_table", sizes.BugEntry, 0),
        new("__jump_table", sizes.JumpEntry, 0, KeyOffset: 8),
        new(".altinstructions", sizes.AltInstr, 0),
        new("__ex_table", sizes.ExceptionEntry, 0),
        new(".parainstructions", sizes.ParavirtPatchSite, 0),
        new(".static_call_sites", sizes.StaticCallSite, 0, KeyOffset: 4),
        new(".orc_unwind_ip", 4, 0),
        new(".retpoline_sites", 4, 0),
        new(".return_sites", 4, 0),
        new(".call_sites", 4, 0),
        new(".ibt_endbr_seal", 4, 0),
        new(".smp_locks", 4, 0),
        new(".kcfi_traps", 4, 0),
    ];

    /// <summary>Sections rebuilt from the included functions instead of copied.</summary>
    public static readonly HashSet<string> Regenerated = new(StringComparer.Ordinal) { "__mcount_loc", "__patchable_function_entries" };

    /// <summary>Sections handled through another one (.orc_unwind pairs with .orc_unwind_ip;
    /// replacement code is reached from .altinstructions).</summary>
    public static readonly HashSet<string> Companion = new(StringComparer.Ordinal) { ".orc_unwind", ".altinstr_replacement", ".altinstr_aux" };

    /// <summary>Sections whose entries a live patch cannot register, dropped from the output:
    /// error-injection lists, tracepoint registration tables, printk format index, initcalls,
    /// exports (refused separately) and discardable annotations.</summary>
    public static bool IsDropped(string name) =>
        name is "_error_injection_whitelist" or "__tracepoints_ptrs" or "__tracepoints_strings" or ".printk_index"
            or ".modinfo" or ".comment" or ".note.GNU-stack" or ".gnu.linkonce.this_module" or "__versions" or ".BTF" or ".BTF.ext"
            or "__param" or "__modver"
        || name.StartsWith(".discard", StringComparison.Ordinal)
        || name.StartsWith(".initcall", StringComparison.Ordinal)
        || name.StartsWith("__ksymtab", StringComparison.Ordinal)
        || name.StartsWith("__kcrctab", StringComparison.Ordinal)
        || name.StartsWith(".debug", StringComparison.Ordinal)
        || name.StartsWith(".note", StringComparison.Ordinal)
        || name.StartsWith(".livegraft.", StringComparison.Ordinal);

    /// <summary>True for __init/__exit sections: code and data only used at boot or module unload.</summary>
    public static bool IsInitOrExit(string name) =>
        name.StartsWith(".init.", StringComparison.Ordinal) || name.StartsWith(".exit.", StringComparison.Ordinal)
        || name.StartsWith(".head.text", StringComparison.Ordinal);
}
