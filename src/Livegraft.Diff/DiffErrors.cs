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
    /// <summary>A linked module's <c>.livegraft.klp_relocs</c> table is malformed.</summary>
    public const string KlpTableMalformed = "LG0120";
    /// <summary>Note: a function differs only in <c>__LINE__</c> immediates.</summary>
    public const string LineOnly = "LG0150";
    /// <summary>Note: a changed function without fentry call is patched through its callers.</summary>
    public const string PatchedThroughCallers = "LG0151";
}
