using System.Buffers.Binary;
using static Livegraft.Elf.ElfNative;

namespace Livegraft.Elf;

/// <summary>The one error type for malformed ELF input: it names the file and the offset.</summary>
public sealed class ElfFormatException : LivegraftException
{
    /// <summary>Creates the error.</summary>
    public ElfFormatException(string id, string message, string? file, ulong offset)
        : base(ExitCode.InvalidInput, id, message, file, $"offset 0x{offset:x}")
    {
        FileOffset = offset;
    }

    /// <summary>File offset the problem was found at.</summary>
    public ulong FileOffset { get; }
}

/// <summary>A symbol table (SHT_SYMTAB or SHT_DYNSYM). <see cref="Symbols"/>[0] is the null symbol.</summary>
public sealed class ElfSymbolTable : ElfSection
{
    private ElfSymbol[] _asRead = [];

    /// <summary>Creates a symbol table holding only the null symbol.</summary>
    public ElfSymbolTable(string name = ".symtab", uint type = SHT_SYMTAB) : base(name, type)
    {
        EntrySize = SYM64_SIZE;
        Alignment = 8;
        Symbols.Add(new ElfSymbol());
    }

    /// <summary>Symbols in table order; locals are moved before globals at layout.</summary>
    public List<ElfSymbol> Symbols { get; } = [];

    /// <summary>The SHT_SYMTAB_SHNDX section paired with this table, if any.</summary>
    public ElfSymbolIndexSection? IndexSection { get; set; }

    /// <summary>The symbols as they were read, by original index (used to decode lazy relocations).</summary>
    internal ElfSymbol[] AsRead => _asRead;

    internal void SetAsRead(ElfSymbol[] symbols)
    {
        _asRead = symbols;
        Symbols.Clear();
        Symbols.AddRange(symbols);
    }

    /// <summary>True when the table still holds exactly the symbols read, in the same order.</summary>
    internal bool IsUnchangedOrder
    {
        get
        {
            if (Symbols.Count != _asRead.Length)
                return false;
            for (var i = 0; i < _asRead.Length; i++)
                if (!ReferenceEquals(Symbols[i], _asRead[i]))
                    return false;
            return true;
        }
    }

    /// <summary>Finds the first symbol with this name.</summary>
    public ElfSymbol? Find(string name) => Symbols.Find(s => s.Name == name);

    internal override void Encode(ElfFile file)
    {
        // gABI: all STB_LOCAL symbols precede the others; sh_info is one past the last local.
        var ordered = Symbols.Skip(1).Where(s => s.IsLocal).Concat(Symbols.Skip(1).Where(s => !s.IsLocal)).ToList();
        ordered.Insert(0, Symbols[0]);
        var changed = false;
        for (var i = 0; i < ordered.Count && !changed; i++)
            changed = !ReferenceEquals(ordered[i], Symbols[i]);
        if (changed)
        {
            Symbols.Clear();
            Symbols.AddRange(ordered);
        }
        var firstGlobal = Symbols.Count;
        for (var i = 0; i < Symbols.Count; i++)
        {
            Symbols[i].Index = i;
            if (i > 0 && !Symbols[i].IsLocal && firstGlobal == Symbols.Count)
                firstGlobal = i;
        }
        Info = (uint)firstGlobal;
        var needsIndex = false;
        var bytes = new byte[Symbols.Count * SYM64_SIZE];
        for (var i = 0; i < Symbols.Count; i++)
        {
            var s = Symbols[i];
            var e = bytes.AsSpan(i * SYM64_SIZE, SYM64_SIZE);
            var shndx = SectionIndexOf(s, out var extended);
            needsIndex |= extended;
            file.Encoding.WriteU32(e, s.NameIndex);
            e[4] = (byte)((s.Bind << 4) | (s.Type & 0xf));
            e[5] = s.Other;
            file.Encoding.WriteU16(e[6..], shndx);
            file.Encoding.WriteU64(e[8..], s.Value);
            file.Encoding.WriteU64(e[16..], s.Size);
        }
        if (needsIndex && IndexSection is null)
            throw new LivegraftException(ExitCode.InvalidInput, "LG0030", $"{Name} needs an SHT_SYMTAB_SHNDX section (more than 65279 sections)");
        Data = bytes;
    }

    /// <summary>st_shndx for a symbol, SHN_XINDEX when the real index does not fit.</summary>
    internal static ushort SectionIndexOf(ElfSymbol s, out bool extended)
    {
        extended = false;
        if (s.Section is null)
            return s.SpecialIndex;
        if (s.Section.Index >= SHN_LORESERVE)
        {
            extended = true;
            return SHN_XINDEX;
        }
        return (ushort)s.Section.Index;
    }
}

/// <summary>SHT_SYMTAB_SHNDX: extended section indices, regenerated from its symbol table at layout.</summary>
public sealed class ElfSymbolIndexSection : ElfSection
{
    /// <summary>Creates the section.</summary>
    public ElfSymbolIndexSection(string name = ".symtab_shndx") : base(name, SHT_SYMTAB_SHNDX)
    {
        EntrySize = 4;
        Alignment = 4;
    }

    internal override void Encode(ElfFile file)
    {
        if (Link is not ElfSymbolTable table)
            return;
        var bytes = new byte[table.Symbols.Count * 4];
        for (var i = 0; i < table.Symbols.Count; i++)
        {
            var s = table.Symbols[i];
            if (s.Section is not null && s.Section.Index >= SHN_LORESERVE)
                file.Encoding.WriteU32(bytes.AsSpan(i * 4), (uint)s.Section.Index);
        }
        Data = bytes;
    }
}

/// <summary>A relocation section (SHT_RELA or SHT_REL). Entries are decoded on first use, so large
/// debug-info relocation sections cost nothing unless touched.</summary>
public sealed class ElfRelocationSection : ElfSection
{
    private List<ElfRelocation>? _relocations;
    private ElfFile? _lazyFile;

    /// <summary>Creates an empty relocation section for <paramref name="target"/>.</summary>
    public ElfRelocationSection(string name, ElfSection target, ElfSymbolTable symbols, bool rela = true)
        : base(name, rela ? SHT_RELA : SHT_REL)
    {
        InfoSection = target;
        Link = symbols;
        EntrySize = rela ? (ulong)RELA64_SIZE : REL64_SIZE;
        Alignment = 8;
        Flags = SHF_INFO_LINK;
        _relocations = [];
    }

    internal ElfRelocationSection(string name, uint type) : base(name, type)
    {
    }

    /// <summary>True for SHT_RELA.</summary>
    public bool IsRela => Type == SHT_RELA;

    /// <summary>The section the relocations apply to.</summary>
    public ElfSection? Target => InfoSection;

    /// <summary>The symbol table the relocations refer to.</summary>
    public ElfSymbolTable? SymbolTable => Link as ElfSymbolTable;

    /// <summary>True once entries have been decoded or set.</summary>
    public bool IsDecoded => _relocations is not null;

    /// <summary>The relocations, decoded on first access.</summary>
    public List<ElfRelocation> Relocations => _relocations ??= Decode();

    internal void SetLazy(ElfFile file) => _lazyFile = file;

    private List<ElfRelocation> Decode()
    {
        var file = _lazyFile ?? throw new InvalidOperationException("relocation section has no source");
        var enc = file.Encoding;
        var size = IsRela ? RELA64_SIZE : REL64_SIZE;
        var span = Data.Span;
        if (span.Length % size != 0)
            throw new ElfFormatException("LG0020", $"{Name}: size {span.Length} is not a multiple of {size}", file.FileName, Offset);
        var symbols = SymbolTable?.AsRead ?? [];
        var list = new List<ElfRelocation>(span.Length / size);
        for (var o = 0; o < span.Length; o += size)
        {
            var info = enc.ReadU64(span[(o + 8)..]);
            var symIndex = (uint)(info >> 32);
            if (symIndex >= (uint)Math.Max(symbols.Length, 1) && symIndex != 0)
                throw new ElfFormatException("LG0021", $"{Name}: relocation {o / size} refers to symbol {symIndex}, the table has {symbols.Length}", file.FileName, Offset + (ulong)o);
            list.Add(new ElfRelocation
            {
                Offset = enc.ReadU64(span[o..]),
                Type = (uint)info,
                Symbol = symIndex == 0 ? null : symbols[symIndex],
                Addend = IsRela ? (long)enc.ReadU64(span[(o + 16)..]) : 0,
            });
        }
        return list;
    }

    internal override void Encode(ElfFile file)
    {
        if (_relocations is null && (SymbolTable is null || SymbolTable.IsUnchangedOrder))
            return; // untouched, and symbol indices did not move: the bytes as read are still right
        var rels = Relocations;
        var size = IsRela ? RELA64_SIZE : REL64_SIZE;
        var bytes = new byte[rels.Count * size];
        var symbols = SymbolTable;
        for (var i = 0; i < rels.Count; i++)
        {
            var r = rels[i];
            var e = bytes.AsSpan(i * size, size);
            ulong symIndex = 0;
            if (r.Symbol is not null)
            {
                if (symbols is null || r.Symbol.Index >= symbols.Symbols.Count || !ReferenceEquals(symbols.Symbols[r.Symbol.Index], r.Symbol))
                    throw new LivegraftException(ExitCode.InvalidInput, "LG0031", $"{Name}: relocation at 0x{r.Offset:x} refers to symbol '{r.Symbol.Name}' which is not in {symbols?.Name ?? "the symbol table"}");
                symIndex = (ulong)(uint)r.Symbol.Index;
            }
            file.Encoding.WriteU64(e, r.Offset);
            file.Encoding.WriteU64(e[8..], (symIndex << 32) | r.Type);
            if (IsRela)
                file.Encoding.WriteU64(e[16..], (ulong)r.Addend);
        }
        Data = bytes;
    }
}

/// <summary>A section group (SHT_GROUP): flags, member sections and the signature symbol.</summary>
public sealed class ElfGroupSection : ElfSection
{
    /// <summary>Creates a group.</summary>
    public ElfGroupSection(string name = ".group") : base(name, SHT_GROUP)
    {
        EntrySize = 4;
        Alignment = 4;
    }

    /// <summary>GRP_* flags.</summary>
    public uint GroupFlags { get; set; }

    /// <summary>Member sections.</summary>
    public List<ElfSection> Members { get; } = [];

    /// <summary>The signature symbol (sh_info indexes it in sh_link's table).</summary>
    public ElfSymbol? Signature { get; set; }

    internal override void Encode(ElfFile file)
    {
        var bytes = new byte[4 + Members.Count * 4];
        file.Encoding.WriteU32(bytes, GroupFlags);
        for (var i = 0; i < Members.Count; i++)
            file.Encoding.WriteU32(bytes.AsSpan(4 + i * 4), (uint)Members[i].Index);
        Data = bytes;
        if (Signature is not null)
            Info = (uint)Signature.Index;
    }
}

/// <summary>Byte order of a file; every multi-byte field goes through it.</summary>
public readonly struct ElfEncoding
{
    /// <summary>Creates the encoding.</summary>
    public ElfEncoding(bool bigEndian) => BigEndian = bigEndian;

    /// <summary>True for ELFDATA2MSB.</summary>
    public bool BigEndian { get; }

    /// <summary>Reads a 16-bit field.</summary>
    public ushort ReadU16(ReadOnlySpan<byte> s) => BigEndian ? BinaryPrimitives.ReadUInt16BigEndian(s) : BinaryPrimitives.ReadUInt16LittleEndian(s);
    /// <summary>Reads a 32-bit field.</summary>
    public uint ReadU32(ReadOnlySpan<byte> s) => BigEndian ? BinaryPrimitives.ReadUInt32BigEndian(s) : BinaryPrimitives.ReadUInt32LittleEndian(s);
    /// <summary>Reads a 64-bit field.</summary>
    public ulong ReadU64(ReadOnlySpan<byte> s) => BigEndian ? BinaryPrimitives.ReadUInt64BigEndian(s) : BinaryPrimitives.ReadUInt64LittleEndian(s);

    /// <summary>Writes a 16-bit field.</summary>
    public void WriteU16(Span<byte> s, ushort v)
    {
        if (BigEndian) BinaryPrimitives.WriteUInt16BigEndian(s, v); else BinaryPrimitives.WriteUInt16LittleEndian(s, v);
    }

    /// <summary>Writes a 32-bit field.</summary>
    public void WriteU32(Span<byte> s, uint v)
    {
        if (BigEndian) BinaryPrimitives.WriteUInt32BigEndian(s, v); else BinaryPrimitives.WriteUInt32LittleEndian(s, v);
    }

    /// <summary>Writes a 64-bit field.</summary>
    public void WriteU64(Span<byte> s, ulong v)
    {
        if (BigEndian) BinaryPrimitives.WriteUInt64BigEndian(s, v); else BinaryPrimitives.WriteUInt64LittleEndian(s, v);
    }
}
