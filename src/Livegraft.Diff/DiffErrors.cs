namespace Livegraft.Diff;

/// <summary>Diagnostic ids of the object differ (LG0100–LG0299); docs/diagnostics.md lists them all.</summary>
public static class DiffErrors
{
    /// <summary>An existing data object changed.</summary>
    public const string DataChanged = "LG0101";
    /// <summary>An <c>__init</c>/<c>__exit</c> function changed.</summary>
    public const string InitOrExitChanged = "LG0102";
    /// <summary>A changed function has no fentry call.</summary>
    public const string NoFentry = "LG0103";
    /// <summary>A static local was removed or cannot be matched.</summary>
    public const string StaticLocal = "LG0104";
    /// <summary>A jump label or static call key lives in a module.</summary>
    public const string ModuleKey = "LG0105";
    /// <summary>A section group (COMDAT) changed.</summary>
    public const string GroupChanged = "LG0106";
    /// <summary>The patch adds an export.</summary>
    public const string NewExport = "LG0107";
    /// <summary>An anonymous data section changed.</summary>
    public const string AnonymousData = "LG0108";
    /// <summary>A referenced symbol is neither exported nor defined in the parent.</summary>
    public const string SymbolNotFound = "LG0109";
    /// <summary>A symbol's position among same-named ones in the parent is ambiguous.</summary>
    public const string SymposAmbiguous = "LG0110";
    /// <summary>A relocation target cannot be resolved.</summary>
    public const string UnresolvedRelocation = "LG0111";
    /// <summary>A special section's size is not a multiple of its entry size.</summary>
    public const string SpecialSectionSize = "LG0112";
    /// <summary>Unsupported relocation type in included code.</summary>
    public const string UnsupportedRelocation = "LG0113";
    /// <summary>An input object has no symbol table.</summary>
    public const string NoSymbolTable = "LG0114";
    /// <summary>A callback directive does not point at a function.</summary>
    public const string CallbackNotFunction = "LG0115";
    /// <summary>Nothing changed that a live patch would carry.</summary>
    public const string NothingChanged = "LG0116";
    /// <summary>A reference into writable data that no symbol names (it can be neither copied nor found in the parent).</summary>
    public const string AnonymousWritable = "LG0117";
    /// <summary>Writable data that is not new was selected for inclusion (a copy would not be the kernel's variable).</summary>
    public const string WritableIncluded = "LG0118";
    /// <summary>A changed function was not selected for inclusion.</summary>
    public const string ChangedNotIncluded = "LG0119";
    /// <summary>The two objects disagree in their ELF headers (not one unit compiled twice).</summary>
    public const string HeaderMismatch = "LG0121";
    /// <summary>A section kept its name but changed its flags or type.</summary>
    public const string SectionFlagsChanged = "LG0122";
    /// <summary>A symbol changed its binding or type (a global became static, a function became data).</summary>
    public const string SymbolInfoChanged = "LG0123";
    /// <summary>The patch changes a <c>__weak</c> definition that the parent overrides: the change has no effect.</summary>
    public const string WeakOverridden = "LG0124";
    /// <summary>A <c>--sizes</c> override is malformed.</summary>
    public const string SizesSyntax = "LG0125";
    /// <summary>A linked module's <c>.livegraft.klp_relocs</c> table is malformed.</summary>
    public const string KlpTableMalformed = "LG0120";
    /// <summary>Note: a function differs only in <c>__LINE__</c> immediates.</summary>
    public const string LineOnly = "LG0150";
    /// <summary>Note: a changed function without fentry call is patched through its callers.</summary>
    public const string PatchedThroughCallers = "LG0151";
    /// <summary>Note: read-only data the parent's copy of cannot be pinned is copied into the patch.</summary>
    public const string ReadOnlyCopied = "LG0152";
    /// <summary>Warning: a module tracepoint or pr_debug in patched code stays as compiled (disabled).</summary>
    public const string ModuleKeyDropped = "LG0153";
    /// <summary>Warning: a static call keyed in a module is not registered; it calls through its trampoline.</summary>
    public const string ModuleStaticCallDropped = "LG0154";
    /// <summary>Note: a reference to a <c>__weak</c> definition binds by name to what the parent runs.</summary>
    public const string WeakByName = "LG0155";
    /// <summary>Note: a special section's last entry is shorter than its entry size (older kernels do not pad it).</summary>
    public const string ShortLastEntry = "LG0156";
    /// <summary>Warning: patched code of a module uses an export of a module the patched module does not
    /// depend on; the patch links against it normally (needs it loaded, holds it).</summary>
    public const string ExportOfUnrelatedModule = "LG0160";

}
