using Livegraft.Elf;
using static Livegraft.Elf.ElfNative;

namespace Livegraft.Diff;

/// <summary>One function, data object or named label defined in the patched object: its twin in
/// the original (when correlated), how it compares, and whether the output carries a copy.</summary>
internal sealed class Element
{
    public Element(ElfSymbol symbol, ElfSymbol? twin, ChangeKind status)
    {
        Symbol = symbol;
        Twin = twin;
        Status = status;
    }

    /// <summary>The patched object's symbol.</summary>
    public ElfSymbol Symbol { get; }

    /// <summary>The original object's symbol it was correlated with, or null.</summary>
    public ElfSymbol? Twin { get; }

    /// <summary>Same, changed or new.</summary>
    public ChangeKind Status { get; set; }

    /// <summary>True once the output carries a copy.</summary>
    public bool Included { get; set; }

    /// <summary>A patch-author directive says its change does not matter.</summary>
    public bool Ignored { get; set; }

    /// <summary>A function: code the kernel runs.</summary>
    public bool IsFunction => Symbol.IsFunction;

    /// <summary>Lives in a section the kernel may write (SHF_WRITE, or .bss).</summary>
    public bool IsWritable => Symbol.Section is { } s && ((s.Flags & SHF_WRITE) != 0 || s.Type == SHT_NOBITS);

    /// <inheritdoc/>
    public override string ToString() => $"{Symbol.Name} ({Status.ToString().ToLowerInvariant()}{(Included ? ", included" : "")})";
}

/// <summary>Every element of the patched object, by symbol.</summary>
internal sealed class ElementTable
{
    private readonly Dictionary<ElfSymbol, Element> _elements = new(ReferenceEqualityComparer.Instance);

    /// <summary>Every element, in symbol-table order of insertion.</summary>
    public IEnumerable<Element> All => _elements.Values;

    /// <summary>Adds or replaces the element of <paramref name="symbol"/>.</summary>
    public Element Add(ElfSymbol symbol, ElfSymbol? twin, ChangeKind status) => _elements[symbol] = new Element(symbol, twin, status);

    /// <summary>The element of <paramref name="symbol"/>, or null for symbols that are not elements
    /// (undefined, absolute, section symbols, or sections the differ skips).</summary>
    public Element? this[ElfSymbol symbol] => _elements.GetValueOrDefault(symbol);

    /// <summary>The status of <paramref name="symbol"/>; symbols that are not elements count as same.</summary>
    public ChangeKind StatusOf(ElfSymbol symbol) => _elements.TryGetValue(symbol, out var e) ? e.Status : ChangeKind.Same;

    /// <summary>True for an element with this status.</summary>
    public bool Is(ElfSymbol symbol, ChangeKind status) => _elements.TryGetValue(symbol, out var e) && e.Status == status;
}
