using Livegraft.Elf;
namespace Livegraft.Symbols;

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

    private readonly NameIndex _names;
    private readonly KallsymsFile? _dump;
    private readonly string? _dumpModule;
    private ulong[]? _dumpAddresses;
    private int[]? _byAddress;

    /// <summary>Builds a table over symbols already in kallsyms order.</summary>
    public SymbolTable(string objectName, IReadOnlyList<KernelSymbol> symbols)
    {
        ObjectName = objectName;
        Symbols = symbols;
        _names = NameIndex.Of(symbols.Count, i => symbols[i].Name);
    }

    /// <summary>A table over one object's lines of a dump: names are indexed by offset and hash, and a
    /// line becomes a <see cref="KernelSymbol"/> only when it is asked for (read back from the dump).</summary>
    private SymbolTable(string objectName, KallsymsFile dump, string? module)
    {
        ObjectName = objectName;
        _dump = dump;
        _dumpModule = module;
        (_names, var names) = dump.IndexNames(module);
        Symbols = new DumpSymbols(this, names);
    }

    /// <summary>klp object name: <c>vmlinux</c> or the module name.</summary>
    public string ObjectName { get; }

    /// <summary>True for the core kernel.</summary>
    public bool IsVmlinux => ObjectName == VmlinuxObject;

    /// <summary>Symbols in kallsyms order.</summary>
    public IReadOnlyList<KernelSymbol> Symbols { get; }

    /// <summary>Number of symbols.</summary>
    public int Count => _names.Count;

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
            ? new SymbolTable(VmlinuxObject, dump, null)
            : new SymbolTable(objectName, dump, objectName);

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
        if (ElfFile.IsElf64(head))
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
    public IReadOnlyList<KernelSymbol> Lookup(string name) => Array.ConvertAll(_names.EntriesOf(name), i => Symbols[i]);

    /// <summary>Indices into <see cref="Symbols"/> of every symbol called <paramref name="name"/>.</summary>
    public ReadOnlySpan<int> IndicesOf(string name) => _names.EntriesOf(name);

    /// <summary>Number of symbols called <paramref name="name"/>.</summary>
    public int CountOf(string name) => _names.EntriesOf(name).Length;

    /// <summary>True when at least one symbol is called <paramref name="name"/>.</summary>
    public bool Contains(string name) => _names.EntriesOf(name).Length > 0;

    /// <summary>Name of the symbol at <paramref name="index"/>, without decoding the rest of it.</summary>
    public string NameOf(int index) => _names.NameOf(index);

    /// <summary>klp <c>sympos</c> of the symbol at <paramref name="index"/>: 0 when its name is unique
    /// in the object, else its 1-based position among the symbols with that name.</summary>
    public int SymPos(int index) => _names.PositionOf(index);

    /// <summary><see cref="SymPos(int)"/> of every symbol, computed together (for listings).</summary>
    public int[] SymPositions()
    {
        var names = Symbols.Select(s => s.Name).ToArray();
        return _names.AllPositions(i => names[i]);
    }

    /// <summary>klp <c>sympos</c> of <paramref name="symbol"/>, which must come from this table.</summary>
    public int SymPos(KernelSymbol symbol)
    {
        var same = _names.EntriesOf(symbol.Name);
        for (var k = 0; k < same.Length; k++)
        {
            if (ReferenceEquals(Symbols[same[k]], symbol))
                return same.Length == 1 ? 0 : k + 1;
        }
        throw new ArgumentException($"symbol '{symbol.Name}' is not in {ObjectName}'s table", nameof(symbol));
    }

    /// <summary>Resolves <paramref name="name"/> the way klp does: <paramref name="sympos"/> 0 needs a unique
    /// name, otherwise the <paramref name="sympos"/>-th occurrence. Null when klp would fail.</summary>
    public KernelSymbol? Find(string name, int sympos = 0)
    {
        var same = _names.EntriesOf(name);
        if (sympos == 0)
            return same.Length == 1 ? Symbols[same[0]] : null;
        return sympos > 0 && sympos <= same.Length ? Symbols[same[sympos - 1]] : null;
    }

    /// <summary>Symbols whose address is exactly <paramref name="address"/> (within <paramref name="section"/> for a module).</summary>
    public IReadOnlyList<KernelSymbol> AtAddress(ulong address, string? section = null)
    {
        var order = ByAddress;
        var key = section ?? "";
        var k = LowerBound(order, address, key);
        var result = new List<KernelSymbol>();
        for (; k < order.Length && SectionOf(order[k]) == key && AddressOf(order[k]) == address; k++)
            result.Add(Symbols[order[k]]);
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
        var order = ByAddress;
        var key = section ?? "";
        // First index whose address is above the target; the containing symbol is just before it.
        var upper = LowerBound(order, address == ulong.MaxValue ? address : address + 1, key);
        if (address == ulong.MaxValue)
        {
            while (upper < order.Length && SectionOf(order[upper]) == key)
                upper++;
        }
        var k = upper - 1;
        if (k < 0 || SectionOf(order[k]) != key)
            return false;
        var start = AddressOf(order[k]);
        while (k > 0 && SectionOf(order[k - 1]) == key && AddressOf(order[k - 1]) == start)
            k--;
        var symbol = Symbols[order[k]];
        ulong size = symbol.Size;
        if (upper < order.Length && SectionOf(order[upper]) == key)
            size = AddressOf(order[upper]) - start;
        location = new SymbolLocation(symbol, address - start, size);
        return true;
    }

    private ulong AddressOf(int index) =>
        _dump is null ? Symbols[index].Address : (_dumpAddresses ??= _dump.AddressesOf(_dumpModule))[index];

    private string SectionOf(int index) => _dump is null ? Symbols[index].Section ?? "" : "";

    /// <summary>Indices in (section, address) order, stable; built on the first address lookup. kallsyms
    /// for vmlinux is already address-sorted, so the common case is a check; a .ko's symtab is not, and
    /// its addresses only mean something per section.</summary>
    private int[] ByAddress
    {
        get
        {
            if (_byAddress is { } built)
                return built;
            var n = Count;
            var addresses = new ulong[n];
            var sections = new string[n];
            var order = new int[n];
            var sorted = true;
            for (var i = 0; i < n; i++)
            {
                order[i] = i;
                addresses[i] = AddressOf(i);
                sections[i] = SectionOf(i);
                if (i > 0)
                {
                    var c = string.CompareOrdinal(sections[i - 1], sections[i]);
                    sorted &= c < 0 || (c == 0 && addresses[i - 1] <= addresses[i]);
                }
            }
            if (!sorted)
            {
                Array.Sort(order, (a, b) =>
                {
                    var c = string.CompareOrdinal(sections[a], sections[b]);
                    if (c == 0)
                        c = addresses[a].CompareTo(addresses[b]);
                    return c != 0 ? c : a.CompareTo(b);
                });
            }
            return Interlocked.CompareExchange(ref _byAddress, order, null) ?? order;
        }
    }

    /// <summary>First position in address order whose (section, address) is not below the key.</summary>
    private int LowerBound(int[] order, ulong address, string section)
    {
        int lo = 0, hi = order.Length;
        while (lo < hi)
        {
            var mid = lo + ((hi - lo) >> 1);
            var c = string.CompareOrdinal(SectionOf(order[mid]), section);
            if (c < 0 || (c == 0 && AddressOf(order[mid]) < address))
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo;
    }

    /// <summary>A dump's lines as symbols, each decoded once on first access (so a symbol keeps its
    /// identity, which <see cref="SymPos(KernelSymbol)"/> relies on).</summary>
    private sealed class DumpSymbols(SymbolTable table, TextNames names) : IReadOnlyList<KernelSymbol>
    {
        private KernelSymbol?[]? _decoded;

        public int Count => table.Count;

        public KernelSymbol this[int index]
        {
            get
            {
                ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)index, (uint)Count, nameof(index));
                var decoded = Decoded;
                if (decoded[index] is { } known)
                    return known;
                var symbol = table._dump!.SymbolAt(names.Start(index), table._dumpModule);
                return Interlocked.CompareExchange(ref decoded[index], symbol, null) ?? symbol;
            }
        }

        private KernelSymbol?[] Decoded => _decoded ?? Interlocked.CompareExchange(ref _decoded, new KernelSymbol?[Count], null) ?? _decoded!;

        /// <summary>Everything, in one streamed pass over the dump instead of one read per symbol.</summary>
        public IEnumerator<KernelSymbol> GetEnumerator()
        {
            var decoded = Decoded;
            var all = table._dump!.SymbolsOf(table._dumpModule);
            for (var i = 0; i < all.Length; i++)
                Interlocked.CompareExchange(ref decoded[i], all[i], null);
            for (var i = 0; i < decoded.Length; i++)
                yield return decoded[i]!;
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
