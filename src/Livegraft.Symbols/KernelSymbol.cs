namespace Livegraft.Symbols;

/// <summary>What an ELF symbol names (<c>STT_*</c>), when the source says; kallsyms does not.</summary>
public enum SymbolKind
{
    /// <summary>The source carries no ELF type (kallsyms tables, <c>/proc/kallsyms</c>).</summary>
    Unknown,
    /// <summary><c>STT_NOTYPE</c>.</summary>
    NoType,
    /// <summary><c>STT_OBJECT</c>.</summary>
    Object,
    /// <summary><c>STT_FUNC</c>.</summary>
    Function,
    /// <summary><c>STT_SECTION</c>.</summary>
    Section,
    /// <summary><c>STT_FILE</c>.</summary>
    File,
    /// <summary><c>STT_TLS</c> or any other type.</summary>
    Other,
}

/// <summary>
/// One kernel symbol as kallsyms shows it: name, nm-style type letter, address, and the module it
/// belongs to (<see langword="null"/> for vmlinux).
/// </summary>
/// <param name="Name">Symbol name, without the type character kallsyms stores in front of it.</param>
/// <param name="Type">nm-style type letter (<c>T</c>, <c>t</c>, <c>D</c>, <c>A</c>, ...).</param>
/// <param name="Address">Address; for a <c>.ko</c> read from disk, the section-relative <c>st_value</c>.</param>
/// <param name="Module">Owning module name, or <see langword="null"/> for vmlinux.</param>
public sealed record KernelSymbol(string Name, char Type, ulong Address, string? Module = null)
{
    /// <summary>Section the symbol is defined in, when read from a <c>.ko</c>; otherwise <see langword="null"/>.</summary>
    public string? Section { get; init; }

    /// <summary><c>st_size</c> when read from a <c>.ko</c>; 0 when the source does not say.</summary>
    public ulong Size { get; init; }

    /// <summary>ELF symbol type when read from a <c>.ko</c>.</summary>
    public SymbolKind Kind { get; init; }

    /// <summary>True for text symbols (<c>t</c>, <c>T</c>), the kind klp can patch.</summary>
    public bool IsText => Type is 't' or 'T';

    /// <summary>True for symbols visible outside their object (upper-case type letter).</summary>
    public bool IsGlobal => char.IsAsciiLetterUpper(Type);

    /// <summary>Formats as one <c>/proc/kallsyms</c> line: <c>ffffffff81000000 T _stext</c>
    /// (module symbols get a tab and <c>[module]</c>).</summary>
    public override string ToString() =>
        Module is null ? $"{Address:x16} {Type} {Name}" : $"{Address:x16} {Type} {Name}\t[{Module}]";
}
