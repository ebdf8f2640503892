using System.Runtime.InteropServices;

namespace Livegraft.Kernel.Symbols;

/// <summary>Where an address falls: the symbol it is in, the offset into it, and the symbol's size
/// estimated from the next symbol at a higher address (kernel/kallsyms.c <c>get_symbol_pos</c>).</summary>
/// <param name="Symbol">The containing symbol (the first alias when several share its address).</param>
/// <param name="Offset">Address minus the symbol's address.</param>
/// <param name="Size">Distance to the next higher symbol; for the last one, its <c>st_size</c> when known, else 0.</param>
public readonly record struct SymbolLocation(KernelSymbol Symbol, ulong Offset, ulong Size);

/// <summary>
/// The symbols of one klp object (vmlinux or one module) in kallsyms order, with the lookups the build
/// pipeline needs: by name with <c>sympos</c>, by address, and containing symbol of an address.
/// </summary>
/// <remarks>
/// <c>sympos</c> follows kernel/livepatch/core.c <c>klp_find_object_symbol</c>: the kernel walks the
/// object's kallsyms in order counting every symbol with the name, whatever its type; position 0 means
/// "the name is unique", otherwise it is the 1-based count. Documentation/livepatch/module-elf-format.rst.
/// </remarks>
public sealed class SymbolTable
{
    /// <summary>The klp object name of the core kernel.</summary>
    public const string VmlinuxObject = "vmlinux";

    private readonly Dictionary<string, int> _groupOf;
    private readonly int[][] _groups;
    private readonly int[] _byAddress;
    private readonly int[] _positions;

    /// <summary>Builds a table over symbols already in kallsyms order.</summary>
    public SymbolTable(string objectName, IReadOnlyList<KernelSymbol> symbols)
    {
        ObjectName = objectName;
        Symbols = symbols;
        // One hashing pass assigns each name a group; the groups then fill without hashing. Position k+1
        // among n > 1 same-name symbols is the sympos.
        _groupOf = new Dictionary<string, int>(symbols.Count, StringComparer.Ordinal);
        var group = new int[symbols.Count];
        var sizes = new List<int>();
        for (var i = 0; i < symbols.Count; i++)
        {
            ref var g = ref CollectionsMarshal.GetValueRefOrAddDefault(_groupOf, symbols[i].Name, out var exists);
            if (!exists)
            {
                g = sizes.Count;
                sizes.Add(0);
            }
            group[i] = g;
            sizes[g]++;
        }
        _groups = new int[sizes.Count][];
        for (var g = 0; g < _groups.Length; g++)
            _groups[g] = new int[sizes[g]];
        var fill = new int[_groups.Length];
        _positions = new int[symbols.Count];
        for (var i = 0; i < symbols.Count; i++)
        {
            var members = _groups[group[i]];
            var k = fill[group[i]]++;
            members[k] = i;
            if (members.Length > 1)
                _positions[i] = k + 1;
        }
        // Address order by (section, address), stable. kallsyms for vmlinux is already address-sorted, so
        // the common case is a check; a .ko's symtab is not, and its addresses only mean something per section.
        _byAddress = new int[symbols.Count];
        for (var i = 0; i < _byAddress.Length; i++)
            _byAddress[i] = i;
        if (!InAddressOrder(symbols))
        {
            Array.Sort(_byAddress, (a, b) =>
            {
                var c = string.CompareOrdinal(symbols[a].Section ?? "", symbols[b].Section ?? "");
                if (c == 0)
                    c = symbols[a].Address.CompareTo(symbols[b].Address);
                return c != 0 ? c : a.CompareTo(b);
            });
        }
    }

    private static bool InAddressOrder(IReadOnlyList<KernelSymbol> symbols)
    {
        for (var i = 1; i < symbols.Count; i++)
        {
            var c = string.CompareOrdinal(symbols[i - 1].Section ?? "", symbols[i].Section ?? "");
            if (c > 0 || (c == 0 && symbols[i - 1].Address > symbols[i].Address))
                return false;
        }
        return true;
    }

    /// <summary>klp object name: <c>vmlinux</c> or the module name.</summary>
    public string ObjectName { get; }

    /// <summary>True for the core kernel.</summary>
    public bool IsVmlinux => ObjectName == VmlinuxObject;

    /// <summary>Symbols in kallsyms order.</summary>
    public IReadOnlyList<KernelSymbol> Symbols { get; }

    /// <summary>Number of symbols.</summary>
    public int Count => Symbols.Count;

    /// <summary>Reads vmlinux symbols from a bzImage or vmlinux file (kallsyms tables).</summary>
    public static SymbolTable FromImage(string path) => new(VmlinuxObject, KallsymsTables.ReadImage(path).Symbols);

    /// <summary>Reads a module's symbols from its <c>.ko</c>.</summary>
    public static SymbolTable FromModule(string path, ModuleSymbolView view = ModuleSymbolView.Core)
    {
        var module = ModuleSymbols.Read(path, view);
        return new SymbolTable(module.Name, module.Symbols);
    }

    /// <summary>One object's part of a <c>/proc/kallsyms</c> dump: vmlinux (<paramref name="objectName"/> null
    /// or <c>vmlinux</c>) or a module.</summary>
    public static SymbolTable FromKallsyms(KallsymsFile dump, string? objectName = null) =>
        objectName is null or VmlinuxObject
            ? new SymbolTable(VmlinuxObject, dump.Vmlinux)
            : new SymbolTable(objectName, dump.ForModule(objectName));

    /// <summary>
    /// Opens any of the inputs <c>livegraft symbols</c> accepts: a <c>.ko</c>, a bzImage or vmlinux
    /// ELF, or a <c>/proc/kallsyms</c> text dump (its vmlinux part, or <paramref name="module"/>'s).
    /// </summary>
    public static SymbolTable Open(string path, string? module = null)
    {
        Span<byte> head = stackalloc byte[0x210];
        int read;
        try
        {
            using var f = File.OpenRead(path);
            read = f.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LivegraftException(ExitCode.InvalidInput, SymbolErrors.NotAKernelImage, $"cannot read: {e.Message}", path);
        }
        head = head[..read];
        if (KernelElf.IsElf64(head))
        {
            // ET_REL is a module; ET_EXEC is vmlinux.
            return head.Length > 0x11 && head[0x10] == 1 ? FromModule(path) : FromImage(path);
        }
        if (KernelImage.IsBzImage(head))
            return FromImage(path);
        if (head.Length >= 2 && head[0] == 0x1f && head[1] == 0x8b || LooksLikeKallsyms(head))
            return FromKallsyms(KallsymsFile.Read(path), module);
        throw SymbolErrors.Invalid(SymbolErrors.NotAKernelImage, "not a bzImage, vmlinux, .ko or /proc/kallsyms dump", path, 0);
    }

    private static bool LooksLikeKallsyms(ReadOnlySpan<byte> head)
    {
        var space = head.IndexOf((byte)' ');
        if (space <= 0)
            return false;
        foreach (var b in head[..space])
        {
            if (!char.IsAsciiHexDigit((char)b))
                return false;
        }
        return true;
    }

    /// <summary>Every symbol called <paramref name="name"/>, in kallsyms order (empty when none).</summary>
    public IReadOnlyList<KernelSymbol> Lookup(string name) =>
        TryGetGroup(name, out var indices) ? Array.ConvertAll(indices, i => Symbols[i]) : [];

    /// <summary>Indices into <see cref="Symbols"/> of every symbol called <paramref name="name"/>.</summary>
    public ReadOnlySpan<int> IndicesOf(string name) => TryGetGroup(name, out var indices) ? indices : default;

    /// <summary>Number of symbols called <paramref name="name"/>.</summary>
    public int CountOf(string name) => TryGetGroup(name, out var indices) ? indices.Length : 0;

    /// <summary>klp <c>sympos</c> of the symbol at <paramref name="index"/>: 0 when its name is unique
    /// in the object, else its 1-based position among the symbols with that name.</summary>
    public int SymPos(int index) => _positions[index];

    /// <summary>klp <c>sympos</c> of <paramref name="symbol"/>, which must come from this table.</summary>
    public int SymPos(KernelSymbol symbol)
    {
        if (TryGetGroup(symbol.Name, out var indices))
        {
            for (var k = 0; k < indices.Length; k++)
            {
                if (ReferenceEquals(Symbols[indices[k]], symbol))
                    return indices.Length == 1 ? 0 : k + 1;
            }
        }
        throw new ArgumentException($"symbol '{symbol.Name}' is not in {ObjectName}'s table", nameof(symbol));
    }

    /// <summary>Resolves <paramref name="name"/> the way klp does: <paramref name="sympos"/> 0 needs a unique
    /// name, otherwise the <paramref name="sympos"/>-th occurrence. Null when klp would fail.</summary>
    public KernelSymbol? Find(string name, int sympos = 0)
    {
        if (!TryGetGroup(name, out var indices))
            return null;
        if (sympos == 0)
            return indices.Length == 1 ? Symbols[indices[0]] : null;
        return sympos > 0 && sympos <= indices.Length ? Symbols[indices[sympos - 1]] : null;
    }

    /// <summary>Symbols whose address is exactly <paramref name="address"/> (within <paramref name="section"/> for a module).</summary>
    public IReadOnlyList<KernelSymbol> AtAddress(ulong address, string? section = null)
    {
        var k = LowerBound(address, section ?? "");
        var result = new List<KernelSymbol>();
        for (; k < _byAddress.Length; k++)
        {
            var s = Symbols[_byAddress[k]];
            if ((s.Section ?? "") != (section ?? "") || s.Address != address)
                break;
            result.Add(s);
        }
        return result;
    }

    /// <summary>
    /// The symbol containing <paramref name="address"/>, like the kernel's <c>get_symbol_pos</c>: the last
    /// symbol at or below the address (first alias among equals), with the size up to the next higher
    /// symbol. False when no symbol lies at or below it.
    /// </summary>
    public bool TryGetContaining(ulong address, out SymbolLocation location, string? section = null)
    {
        location = default;
        var key = section ?? "";
        // First index whose address is above the target; the containing symbol is just before it.
        var upper = LowerBound(address == ulong.MaxValue ? address : address + 1, key);
        if (address == ulong.MaxValue)
        {
            while (upper < _byAddress.Length && SectionOf(upper) == key)
                upper++;
        }
        var k = upper - 1;
        if (k < 0 || SectionOf(k) != key)
            return false;
        var start = Symbols[_byAddress[k]].Address;
        while (k > 0 && SectionOf(k - 1) == key && Symbols[_byAddress[k - 1]].Address == start)
            k--;
        var symbol = Symbols[_byAddress[k]];
        ulong size = symbol.Size;
        if (upper < _byAddress.Length && SectionOf(upper) == key)
            size = Symbols[_byAddress[upper]].Address - start;
        location = new SymbolLocation(symbol, address - start, size);
        return true;
    }

    private bool TryGetGroup(string name, out int[] indices)
    {
        if (_groupOf.TryGetValue(name, out var g))
        {
            indices = _groups[g];
            return true;
        }
        indices = [];
        return false;
    }

    private string SectionOf(int k) => Symbols[_byAddress[k]].Section ?? "";

    /// <summary>First position in address order whose (section, address) is not below the key.</summary>
    private int LowerBound(ulong address, string section)
    {
        int lo = 0, hi = _byAddress.Length;
        while (lo < hi)
        {
            var mid = lo + ((hi - lo) >> 1);
            var s = Symbols[_byAddress[mid]];
            var c = string.CompareOrdinal(s.Section ?? "", section);
            if (c < 0 || (c == 0 && s.Address < address))
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo;
    }
}
