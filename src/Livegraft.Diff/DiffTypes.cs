using Livegraft.Elf;

namespace Livegraft.Diff;

/// <summary>
/// What the differ needs to know about the object being patched (vmlinux or a module): which
/// symbols are exported, and where a local symbol sits among same-named ones (klp <c>sympos</c>).
/// </summary>
public interface IParentSymbols
{
    /// <summary>klp object name: <c>vmlinux</c> or the module name.</summary>
    string ObjectName { get; }

    /// <summary>True when <paramref name="name"/> is exported to modules (EXPORT_SYMBOL*), by the
    /// parent or by anything a module can link against.</summary>
    bool IsExported(string name);

    /// <summary>True when <paramref name="name"/> is defined in the parent itself (not elsewhere).</summary>
    bool Defines(string name);

    /// <summary>The namespace <paramref name="name"/> is exported in (<c>EXPORT_SYMBOL_NS</c>), or
    /// null: a module using it must import the namespace.</summary>
    string? ExportNamespace(string name) => null;

    /// <summary>The object exporting <paramref name="name"/> (<c>vmlinux</c> or a module name), or
    /// null when unknown or not exported.</summary>
    string? ExportedBy(string name) => null;

    /// <summary>True when module <paramref name="moduleName"/> is always loaded before the parent: a
    /// module the parent's <c>depends=</c> names (its exports the parent links against).</summary>
    bool DependsOn(string moduleName) => false;

    /// <summary>True when the parent runs another definition than <paramref name="weakDefinition"/>,
    /// a <c>__weak</c> function of <paramref name="origObject"/> (the linker chose a strong one).</summary>
    bool RunsOtherDefinition(ElfSymbol weakDefinition, ElfFile origObject) => false;

    /// <summary>The klp <c>sympos</c> of <paramref name="symbol"/> of <paramref name="origObject"/>
    /// inside the parent: 0 when the name is unique, else its 1-based position among same-named
    /// symbols in kallsyms order. Throws <see cref="LivegraftException"/> (LG0109 not found, LG0110
    /// ambiguous) when it cannot be pinned.</summary>
    int Sympos(ElfSymbol symbol, ElfFile origObject);
}

/// <summary>Options of one diff.</summary>
public sealed class DiffOptions
{
    /// <summary>The parent object's symbols.</summary>
    public required IParentSymbols Parent { get; init; }

    /// <summary>A tag unique within one patch module, used to name the global aliases this object
    /// exports to the generated module code (several diff outputs are linked together).</summary>
    public string UnitTag { get; init; } = "u0";

    /// <summary>Global names that other units of the same patch define anew: references to them
    /// are resolved by the module link (ordinary relocations).</summary>
    public IReadOnlySet<string> ModuleDefines { get; init; } = new HashSet<string>(StringComparer.Ordinal);

    /// <summary>Special-section entry sizes for the target kernel.</summary>
    public SpecialSectionSizes Sizes { get; init; } = SpecialSectionSizes.Linux61;

    /// <summary>Name of the original object, for diagnostics.</summary>
    public string? OrigName { get; init; }

    /// <summary>Name of the patched object, for diagnostics.</summary>
    public string? PatchedName { get; init; }
}

/// <summary>How a function or object compares between the two objects.</summary>
public enum ChangeKind
{
    /// <summary>Identical once relocations are resolved.</summary>
    Same,
    /// <summary>Its code or data changed.</summary>
    Changed,
    /// <summary>Only in the patched object.</summary>
    New,
}

/// <summary>A function the patch replaces (one <c>klp_func</c>).</summary>
/// <param name="OldName">Name in the running kernel.</param>
/// <param name="Sympos">klp <c>old_sympos</c>.</param>
/// <param name="NewSymbol">Global symbol in the output object holding the new code.</param>
public sealed record PatchedFunction(string OldName, int Sympos, string NewSymbol);

/// <summary>A livepatch relocation the output needs (becomes a <c>.klp.rela</c> entry).</summary>
/// <param name="Section">Output section the relocation applies to.</param>
/// <param name="Offset">Offset in that section.</param>
/// <param name="Type">R_X86_64_* type.</param>
/// <param name="SymbolName">The <c>.klp.sym.&lt;obj&gt;.&lt;name&gt;,&lt;sympos&gt;</c> name.</param>
/// <param name="Addend">Addend.</param>
public sealed record KlpRelocation(string Section, ulong Offset, uint Type, string SymbolName, long Addend);

/// <summary>Everything one diff found and produced.</summary>
public sealed class DiffResult
{
    /// <summary>klp object name (vmlinux or module).</summary>
    public required string ObjectName { get; init; }
    /// <summary>Functions whose code changed (including callers changed by inlining).</summary>
    public List<string> ChangedFunctions { get; } = [];
    /// <summary>Functions only in the patched object.</summary>
    public List<string> NewFunctions { get; } = [];
    /// <summary>Data objects only in the patched object (included in the output).</summary>
    public List<string> NewObjects { get; } = [];
    /// <summary>Every function and object copied into the output.</summary>
    public List<string> Included { get; } = [];
    /// <summary>klp_func entries.</summary>
    public List<PatchedFunction> Functions { get; } = [];
    /// <summary>Livepatch relocations, with sympos in their symbol names.</summary>
    public List<KlpRelocation> KlpRelocations { get; } = [];
    /// <summary>Symbol namespaces of the exports the output uses (the module imports them).</summary>
    public List<string> ImportNamespaces { get; } = [];
    /// <summary>Callback alias symbols by kind (pre_patch, post_patch, pre_unpatch, post_unpatch).</summary>
    public Dictionary<string, List<string>> Callbacks { get; } = new(StringComparer.Ordinal);
    /// <summary>Refusals: when non-empty there is no output.</summary>
    public List<Diagnostic> Refusals { get; } = [];
    /// <summary>Notes and warnings (e.g. __LINE__-only changes ignored).</summary>
    public List<Diagnostic> Notes { get; } = [];
    /// <summary>The output object, when the diff succeeded and something changed.</summary>
    public ElfFile? Output { get; set; }

    /// <summary>True when nothing functional changed.</summary>
    public bool NothingChanged => Refusals.Count == 0 && ChangedFunctions.Count == 0 && NewFunctions.Count == 0 && Callbacks.Count == 0;
}
