namespace Livegraft.Diff;

/// <summary>Entry sizes and field offsets of the x86-64 special sections, which depend on the
/// target kernel's structs. A target reads its own with a probe compiled against its tree
/// (Livegraft.Kernel's <c>TargetFeatures</c>), and <c>livegraft diff --sizes</c> overrides them;
/// <see cref="Linux61"/> only serves the differ's own fixtures.</summary>
public sealed record SpecialSectionSizes
{
    /// <summary>Linux 6.1 on x86-64 (struct alt_instr is 12 bytes there; 14 from 6.3): the
    /// default of <see cref="DiffOptions.Sizes"/> for fixtures that are not kernel objects.</summary>
    public static SpecialSectionSizes Linux61 { get; } = new();

    /// <summary>sizeof(struct bug_entry).</summary>
    public int BugEntry { get; init; } = 12;
    /// <summary>sizeof(struct jump_entry).</summary>
    public int JumpEntry { get; init; } = 16;
    /// <summary>offsetof(struct jump_entry, key).</summary>
    public int JumpKeyOffset { get; init; } = 8;
    /// <summary>sizeof(struct alt_instr).</summary>
    public int AltInstr { get; init; } = 12;
    /// <summary>offsetof(struct alt_instr, instrlen); replacementlen is the next byte.</summary>
    public int AltInstrLenOffset { get; init; } = 10;
    /// <summary>sizeof(struct exception_table_entry).</summary>
    public int ExceptionEntry { get; init; } = 12;
    /// <summary>sizeof(struct paravirt_patch_site); 0 when the kernel has none (6.8 and later).</summary>
    public int ParavirtPatchSite { get; init; } = 16;
    /// <summary>offsetof(struct paravirt_patch_site, len).</summary>
    public int ParavirtLenOffset { get; init; } = 9;
    /// <summary>sizeof(struct static_call_site).</summary>
    public int StaticCallSite { get; init; } = 8;
    /// <summary>offsetof(struct static_call_site, key).</summary>
    public int StaticCallKeyOffset { get; init; } = 4;
    /// <summary>sizeof(struct orc_entry).</summary>
    public int OrcEntry { get; init; } = 6;
    /// <summary>sizeof(struct pi_entry) (<c>.printk_index</c>, which the differ drops: checked only
    /// for the section's consistency); 0 when the config has no printk index.</summary>
    public int PrintkIndexEntry { get; init; } = 48;
}

/// <summary>How many code bytes at an entry's anchor the kernel rewrites at boot or module load.</summary>
public enum SiteLength
{
    /// <summary>None: the entry only describes the code.</summary>
    None,
    /// <summary>A fixed number of bytes (<see cref="SpecialSection.Site"/>).</summary>
    Fixed,
    /// <summary>A u8 field of the entry at offset <see cref="SpecialSection.Site"/>.</summary>
    EntryField,
    /// <summary>The call, jmp or Jcc instruction at the site (5 or 6 bytes).</summary>
    Instruction,
}

/// <summary>How the entries of one special section are tied to code: what the differ keeps per
/// included function and what run-pre verification masks. Defined here once for both.</summary>
/// <param name="Name">Section name.</param>
/// <param name="EntrySize">Bytes per entry for the target kernel.</param>
/// <param name="AnchorOffset">Offset in the entry of the relocation that points at the code the entry belongs to.</param>
/// <param name="KeyOffset">Offset of a relocation to a static key or static call key, or -1.</param>
/// <param name="SiteKind">What the kernel rewrites at the anchor.</param>
/// <param name="Site">The fixed length, or the offset of the length field.</param>
/// <param name="Regenerated">The differ rebuilds the section from the included functions instead of filtering it.</param>
public sealed record SpecialSection(string Name, int EntrySize, int AnchorOffset, int KeyOffset = -1,
    SiteLength SiteKind = SiteLength.None, int Site = 0, bool Regenerated = false)
{
    /// <summary>The shortest last entry accepted: older kernels do not pad the last
    /// <c>.parainstructions</c> entry, which must still hold its length field; every other
    /// section's entries are whole.</summary>
    public int MinimumEntry => Name == ".parainstructions" ? Site + 1 : EntrySize;
}

/// <summary>The x86-64 special sections: those filtered per function (keeping only entries of
/// included functions), those regenerated, and those dropped.</summary>
public static class SpecialSections
{
    /// <summary>Every special section tied to code, for the target's <paramref name="sizes"/>.</summary>
    public static IReadOnlyList<SpecialSection> For(SpecialSectionSizes sizes) =>
    [.. All(sizes).Where(s => s.EntrySize > 0)];

    private static IEnumerable<SpecialSection> All(SpecialSectionSizes sizes) =>
    [
        new("__bug_table", sizes.BugEntry, 0),
        // struct jump_entry: s32 code, s32 target, long key; the 5-byte jump or NOP at code.
        new("__jump_table", sizes.JumpEntry, 0, KeyOffset: sizes.JumpKeyOffset, SiteKind: SiteLength.Fixed, Site: 5),
        // struct alt_instr: s32 instr, s32 repl, ..., u8 instrlen, u8 replacementlen (apply_alternatives).
        new(".altinstructions", sizes.AltInstr, 0, SiteKind: SiteLength.EntryField, Site: sizes.AltInstrLenOffset),
        new("__ex_table", sizes.ExceptionEntry, 0),
        // struct paravirt_patch_site: u8 *instr, u8 type, u8 len (apply_paravirt).
        new(".parainstructions", sizes.ParavirtPatchSite, 0, SiteKind: SiteLength.EntryField, Site: sizes.ParavirtLenOffset),
        // struct static_call_site: s32 addr, s32 key; the 5-byte call at addr.
        new(".static_call_sites", sizes.StaticCallSite, 0, KeyOffset: sizes.StaticCallKeyOffset, SiteKind: SiteLength.Fixed, Site: 5),
        new(".orc_unwind_ip", 4, 0),
        // apply_retpolines, apply_returns, call depth thunks: the call/jmp at the site.
        new(".retpoline_sites", 4, 0, SiteKind: SiteLength.Instruction),
        new(".return_sites", 4, 0, SiteKind: SiteLength.Instruction),
        new(".call_sites", 4, 0, SiteKind: SiteLength.Instruction),
        new(".ibt_endbr_seal", 4, 0, SiteKind: SiteLength.Fixed, Site: 4),
        // alternatives_smp_unlock: the lock prefix.
        new(".smp_locks", 4, 0, SiteKind: SiteLength.Fixed, Site: 1),
        new(".kcfi_traps", 4, 0),
        // ftrace's call sites (objtool / recordmcount): the 5-byte fentry call.
        new("__mcount_loc", 8, 0, SiteKind: SiteLength.Fixed, Site: 5, Regenerated: true),
        new("__patchable_function_entries", 8, 0, Regenerated: true),
    ];

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
