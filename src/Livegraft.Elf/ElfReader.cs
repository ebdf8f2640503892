using static Livegraft.Elf.ElfNative;

namespace Livegraft.Elf;

/// <summary>Bounds-checked reader: every table, offset and count is validated before use, and
/// malformed input raises <see cref="ElfFormatException"/> with the file and offset.</summary>
internal sealed class ElfReader
{
    private readonly ReadOnlyMemory<byte> _data;
    private readonly string? _name;
    private ElfEncoding _enc;

    public ElfReader(ReadOnlyMemory<byte> data, string? name)
    {
        _data = data;
        _name = name;
    }

    private ElfFormatException Error(string id, string message, ulong offset) => new(id, message, _name, offset);

    private ReadOnlySpan<byte> Slice(ulong offset, ulong length, string what)
    {
        if (offset > (ulong)_data.Length || length > (ulong)_data.Length - offset)
            throw Error("LG0003", $"{what} (0x{offset:x}+0x{length:x}) lies outside the file ({_data.Length} bytes)", offset);
        return _data.Span.Slice((int)offset, (int)length);
    }

    public ElfFile Read()
    {
        var file = ReadHeaderAndSegments(_data.Span, out var eh);
        var shoff = _enc.ReadU64(eh[40..]);
        var shentsize = _enc.ReadU16(eh[58..]);
        ulong shnum = _enc.ReadU16(eh[60..]);
        uint shstrndx = _enc.ReadU16(eh[62..]);

        if (shoff == 0)
        {
            file.SetOriginal(_data, 0, 0);
            return file;
        }
        if (shentsize != SHDR64_SIZE)
            throw Error("LG0007", $"section header entry size {shentsize}, expected {SHDR64_SIZE}", 58);
        var first = Slice(shoff, SHDR64_SIZE, "section header 0");
        if (shnum == 0)
            shnum = _enc.ReadU64(first[32..]); // gABI: the real count lives in section 0's sh_size
        if (shstrndx == SHN_XINDEX)
            shstrndx = _enc.ReadU32(first[40..]);
        if (shnum > (ulong)_data.Length / SHDR64_SIZE)
            throw Error("LG0008", $"section count {shnum} cannot fit in the file", 60);
        var headers = Slice(shoff, shnum * SHDR64_SIZE, "section header table");
        var count = (int)shnum;

        var raw = DecodeSectionHeaders(headers, count);

        for (var i = 0; i < count; i++)
        {
            var r = raw[i];
            ElfSection s = i == 0 ? new ElfSection("", SHT_NULL) : r.Type switch
            {
                SHT_NOBITS => new ElfNoBitsSection("", r.Size),
                SHT_STRTAB => new ElfStringTable(""),
                SHT_SYMTAB or SHT_DYNSYM => new ElfSymbolTable("", r.Type),
                SHT_RELA or SHT_REL => new ElfRelocationSection("", r.Type),
                SHT_GROUP => new ElfGroupSection(""),
                SHT_SYMTAB_SHNDX => new ElfSymbolIndexSection(""),
                _ => new ElfSection("", r.Type),
            };
            s.Type = r.Type; s.Flags = r.Flags; s.Address = r.Addr; s.Alignment = r.Align; s.EntrySize = r.EntSize;
            s.Info = r.Info; s.RawLink = r.Link; s.NameIndex = r.Name;
            s.Index = i;
            s.Offset = r.Off;
            if (i != 0 && r.Type != SHT_NOBITS)
            {
                Slice(r.Off, r.Size, $"section {i} contents");
                s.Data = _data.Slice((int)r.Off, (int)r.Size);
            }
            file.Sections.Add(s);
        }

        if (shstrndx != 0)
        {
            if (shstrndx >= count || file.Sections[(int)shstrndx] is not ElfStringTable names)
                throw Error("LG0009", $"e_shstrndx {shstrndx} is not a string table", 62);
            file.SectionNames = names;
            foreach (var s in file.Sections)
                s.Name = names.GetString(s.NameIndex, _name);
        }

        // Section-to-section links, only for kinds whose sh_link / sh_info are section indices.
        for (var i = 1; i < count; i++)
        {
            var s = file.Sections[i];
            var r = raw[i];
            if (r.Link != 0 && LinksSection(s.Type))
                s.Link = SectionAt(file, r.Link, $"section {i} ({s.Name}) sh_link", shoff + (ulong)i * SHDR64_SIZE + 40);
            if (r.Info != 0 && (s.Type is SHT_RELA or SHT_REL || (s.Flags & SHF_INFO_LINK) != 0) && s.Type is not (SHT_SYMTAB or SHT_DYNSYM))
                s.InfoSection = SectionAt(file, r.Info, $"section {i} ({s.Name}) sh_info", shoff + (ulong)i * SHDR64_SIZE + 44);
        }

        foreach (var t in file.Sections.OfType<ElfSymbolTable>())
            ReadSymbols(file, t);
        foreach (var g in file.Sections.OfType<ElfGroupSection>())
            ReadGroup(file, g);
        foreach (var r in file.Sections.OfType<ElfRelocationSection>())
        {
            if (r.Link is not null and not ElfSymbolTable)
                throw Error("LG0022", $"{r.Name}: sh_link does not name a symbol table", shoff + (ulong)r.Index * SHDR64_SIZE + 40);
            r.SetLazy(file);
        }
        file.SetOriginal(_data, shoff, count);
        return file;
    }

    /// <summary>Reads the ELF header and program headers only, from a stream that may be far larger
    /// than memory (<c>/proc/kcore</c>): what a core file or an executable's segments need.</summary>
    public static ElfFile ReadSegments(Stream stream, string? name)
    {
        var head = new byte[EHDR64_SIZE];
        ReadExactly(stream, 0, head, name, "ELF header");
        var reader = new ElfReader(head, name);
        var file = reader.ReadHeaderAndSegments(head, out var eh, readTable: false);
        var phoff = reader._enc.ReadU64(eh[32..]);
        var phnum = reader._enc.ReadU16(eh[56..]);
        var table = new byte[phnum * PHDR64_SIZE];
        ReadExactly(stream, phoff, table, name, "program header table");
        reader.AddSegments(file, table, phnum);
        return file;
    }

    private static void ReadExactly(Stream stream, ulong offset, byte[] into, string? name, string what)
    {
        try
        {
            stream.Position = checked((long)offset);
            stream.ReadExactly(into);
        }
        catch (Exception e) when (e is EndOfStreamException or IOException or OverflowException or ArgumentOutOfRangeException)
        {
            throw new ElfFormatException("LG0003", $"{what} (0x{offset:x}+0x{into.Length:x}) cannot be read: {e.Message}", name, offset);
        }
    }

    private readonly record struct RawSection(uint Name, uint Type, ulong Flags, ulong Addr, ulong Off, ulong Size, uint Link, uint Info, ulong Align, ulong EntSize);

    private RawSection[] DecodeSectionHeaders(ReadOnlySpan<byte> headers, int count)
    {
        var raw = new RawSection[count];
        for (var i = 0; i < count; i++)
        {
            var e = headers.Slice(i * SHDR64_SIZE, SHDR64_SIZE);
            raw[i] = new RawSection(_enc.ReadU32(e), _enc.ReadU32(e[4..]), _enc.ReadU64(e[8..]), _enc.ReadU64(e[16..]), _enc.ReadU64(e[24..]),
                _enc.ReadU64(e[32..]), _enc.ReadU32(e[40..]), _enc.ReadU32(e[44..]), _enc.ReadU64(e[48..]), _enc.ReadU64(e[56..]));
        }
        return raw;
    }

    /// <summary>Reads the contents of the first section named <paramref name="sectionName"/> from a
    /// stream, touching only the headers, the section-name table and that section; null when there
    /// is no such section.</summary>
    public static byte[]? ReadSectionData(Stream stream, string sectionName, string? name)
    {
        var head = new byte[EHDR64_SIZE];
        ReadExactly(stream, 0, head, name, "ELF header");
        var reader = new ElfReader(head, name);
        reader.ReadHeaderAndSegments(head, out var eh, readTable: false);
        var enc = reader._enc;
        var shoff = enc.ReadU64(eh[40..]);
        if (shoff == 0)
            return null;
        if (enc.ReadU16(eh[58..]) != SHDR64_SIZE)
            throw reader.Error("LG0007", $"section header entry size {enc.ReadU16(eh[58..])}, expected {SHDR64_SIZE}", 58);
        ulong count = enc.ReadU16(eh[60..]);
        uint shstrndx = enc.ReadU16(eh[62..]);
        var first = new byte[SHDR64_SIZE];
        ReadExactly(stream, shoff, first, name, "section header 0");
        if (count == 0)
            count = enc.ReadU64(first.AsSpan(32));
        if (shstrndx == SHN_XINDEX)
            shstrndx = enc.ReadU32(first.AsSpan(40));
        if (count > (ulong)Math.Max(0, stream.Length) / SHDR64_SIZE)
            throw reader.Error("LG0008", $"section count {count} cannot fit in the file", 60);
        var table = new byte[count * SHDR64_SIZE];
        ReadExactly(stream, shoff, table, name, "section header table");
        var raw = reader.DecodeSectionHeaders(table, (int)count);
        if (shstrndx == 0 || shstrndx >= count || raw[shstrndx].Type != SHT_STRTAB)
            throw reader.Error("LG0009", $"e_shstrndx {shstrndx} is not a string table", 62);
        var names = new ElfStringTable(".shstrtab") { Data = ReadContents(stream, raw[shstrndx], name, "section name table") };
        foreach (var r in raw)
            if (r.Type != SHT_NULL && names.Matches(r.Name, sectionName))
                return r.Type == SHT_NOBITS ? [] : ReadContents(stream, r, name, $"section {sectionName} contents");
        return null;
    }

    private static byte[] ReadContents(Stream stream, RawSection r, string? name, string what)
    {
        if (r.Size > int.MaxValue || r.Off > (ulong)Math.Max(0, stream.Length) || r.Size > (ulong)stream.Length - r.Off)
            throw new ElfFormatException("LG0003", $"{what} (0x{r.Off:x}+0x{r.Size:x}) lies outside the file ({stream.Length} bytes)", name, r.Off);
        var bytes = new byte[r.Size];
        ReadExactly(stream, r.Off, bytes, name, what);
        return bytes;
    }

    /// <summary>Checks the identification, reads the header fields into a new file, and (unless
    /// <paramref name="readTable"/> is false) the program headers from <paramref name="data"/>.</summary>
    private ElfFile ReadHeaderAndSegments(ReadOnlySpan<byte> data, out ReadOnlySpan<byte> eh, bool readTable = true)
    {
        if (data.Length < 16 || data[0] != 0x7f || data[1] != 'E' || data[2] != 'L' || data[3] != 'F')
            throw Error("LG0002", "not an ELF file (bad magic)", 0);
        if (data[4] != ELFCLASS64)
            throw Error("LG0004", $"unsupported ELF class {data[4]}: only ELF64 is supported", 4);
        if (data[5] is not (ELFDATA2LSB or ELFDATA2MSB))
            throw Error("LG0005", $"unsupported ELF data encoding {data[5]}", 5);
        _enc = new ElfEncoding(data[5] == ELFDATA2MSB);
        if (data.Length < EHDR64_SIZE)
            throw Error("LG0003", $"ELF header (0x0+0x{EHDR64_SIZE:x}) lies outside the file ({data.Length} bytes)", 0);
        eh = data[..EHDR64_SIZE];
        var file = CreateEmpty();
        file.FileName = _name;
        var h = file.Header;
        h.Class = eh[4]; h.Data = eh[5]; h.IdentVersion = eh[6]; h.OsAbi = eh[7]; h.AbiVersion = eh[8];
        h.Type = _enc.ReadU16(eh[16..]);
        h.Machine = _enc.ReadU16(eh[18..]);
        h.Version = _enc.ReadU32(eh[20..]);
        h.Entry = _enc.ReadU64(eh[24..]);
        h.Flags = _enc.ReadU32(eh[48..]);
        var phentsize = _enc.ReadU16(eh[54..]);
        var phnum = _enc.ReadU16(eh[56..]);
        if (phnum > 0 && phentsize != PHDR64_SIZE)
            throw Error("LG0006", $"program header entry size {phentsize}, expected {PHDR64_SIZE}", 54);
        if (readTable && phnum > 0)
            AddSegments(file, Slice(_enc.ReadU64(eh[32..]), (ulong)phnum * PHDR64_SIZE, "program header table"), phnum);
        return file;
    }

    private void AddSegments(ElfFile file, ReadOnlySpan<byte> table, int count)
    {
        for (var i = 0; i < count; i++)
        {
            var e = table.Slice(i * PHDR64_SIZE, PHDR64_SIZE);
            file.Segments.Add(new ElfSegment
            {
                Type = _enc.ReadU32(e), Flags = _enc.ReadU32(e[4..]), Offset = _enc.ReadU64(e[8..]),
                VirtualAddress = _enc.ReadU64(e[16..]), PhysicalAddress = _enc.ReadU64(e[24..]),
                FileSize = _enc.ReadU64(e[32..]), MemorySize = _enc.ReadU64(e[40..]), Alignment = _enc.ReadU64(e[48..]),
            });
        }
    }

    private static bool LinksSection(uint type) =>
        type is SHT_SYMTAB or SHT_DYNSYM or SHT_RELA or SHT_REL or SHT_GROUP or SHT_SYMTAB_SHNDX or SHT_HASH or SHT_DYNAMIC
            or SHT_X86_64_UNWIND || type == 0x6ffffff6 /* SHT_GNU_HASH */ || type is 0x6ffffffd or 0x6ffffffe or 0x6fffffff /* versym, verneed, verdef */;

    private ElfSection SectionAt(ElfFile file, uint index, string what, ulong offset)
    {
        if (index >= file.Sections.Count)
            throw Error("LG0012", $"{what} = {index}, but the file has {file.Sections.Count} sections", offset);
        return file.Sections[(int)index];
    }

    private void ReadSymbols(ElfFile file, ElfSymbolTable table)
    {
        if (table.Link is not ElfStringTable names)
            throw Error("LG0013", $"{table.Name}: sh_link does not name a string table", table.Offset);
        table.Link = names;
        var span = table.Data.Span;
        if (span.Length % SYM64_SIZE != 0)
            throw Error("LG0014", $"{table.Name}: size {span.Length} is not a multiple of {SYM64_SIZE}", table.Offset);
        var n = span.Length / SYM64_SIZE;
        var index = file.Sections.OfType<ElfSymbolIndexSection>().FirstOrDefault(x => ReferenceEquals(x.Link, table));
        table.IndexSection = index;
        var symbols = new ElfSymbol[n];
        for (var i = 0; i < n; i++)
        {
            var e = span.Slice(i * SYM64_SIZE, SYM64_SIZE);
            var nameIndex = _enc.ReadU32(e);
            var shndx = _enc.ReadU16(e[6..]);
            var sym = new ElfSymbol
            {
                NameIndex = nameIndex,
                Name = nameIndex == 0 ? "" : names.GetString(nameIndex, _name),
                Bind = (byte)(e[4] >> 4), Type = (byte)(e[4] & 0xf), Other = e[5],
                Value = _enc.ReadU64(e[8..]), Size = _enc.ReadU64(e[16..]),
                Index = i,
            };
            uint real = shndx;
            if (shndx == SHN_XINDEX)
            {
                if (index is null || (ulong)index.Data.Length < (ulong)(i + 1) * 4)
                    throw Error("LG0015", $"{table.Name}: symbol {i} uses SHN_XINDEX but there is no SHT_SYMTAB_SHNDX entry for it", table.Offset + (ulong)i * SYM64_SIZE);
                real = _enc.ReadU32(index.Data.Span[(i * 4)..]);
            }
            else if (shndx >= SHN_LORESERVE || shndx == SHN_UNDEF)
            {
                sym.SpecialIndex = shndx;
                symbols[i] = sym;
                continue;
            }
            if (real >= file.Sections.Count)
                throw Error("LG0016", $"{table.Name}: symbol {i} ('{sym.Name}') is in section {real}, but the file has {file.Sections.Count}", table.Offset + (ulong)i * SYM64_SIZE);
            sym.Section = file.Sections[(int)real];
            symbols[i] = sym;
        }
        table.SetAsRead(symbols);
    }

    private void ReadGroup(ElfFile file, ElfGroupSection group)
    {
        var span = group.Data.Span;
        if (span.Length < 4 || span.Length % 4 != 0)
            throw Error("LG0017", $"{group.Name}: bad group size {span.Length}", group.Offset);
        group.GroupFlags = _enc.ReadU32(span);
        for (var o = 4; o < span.Length; o += 4)
            group.Members.Add(SectionAt(file, _enc.ReadU32(span[o..]), $"{group.Name} member", group.Offset + (ulong)o));
        if (group.Link is ElfSymbolTable t)
        {
            if (group.Info >= t.Symbols.Count)
                throw Error("LG0018", $"{group.Name}: signature symbol {group.Info} is out of range", group.Offset);
            group.Signature = t.Symbols[(int)group.Info];
        }
    }

    private static ElfFile CreateEmpty() => new(empty: true);
}
