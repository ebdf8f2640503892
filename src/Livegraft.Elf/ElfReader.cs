using static Livegraft.Elf.ElfNative;

namespace Livegraft.Elf;

/// <summary>Bounds-checked reader: every table, offset and count is validated before use, and
/// malformed input raises <see cref="ElfFormatException"/> with the file and offset.</summary>
internal sealed class ElfReader
{
    private readonly byte[] _data;
    private readonly string? _name;
    private ElfEncoding _enc;

    public ElfReader(byte[] data, string? name)
    {
        _data = data;
        _name = name;
    }

    private ElfFormatException Error(string id, string message, ulong offset) => new(id, message, _name, offset);

    private ReadOnlySpan<byte> Slice(ulong offset, ulong length, string what)
    {
        if (offset > (ulong)_data.Length || length > (ulong)_data.Length - offset)
            throw Error("LG0003", $"{what} (0x{offset:x}+0x{length:x}) lies outside the file ({_data.Length} bytes)", offset);
        return _data.AsSpan((int)offset, (int)length);
    }

    public ElfFile Read()
    {
        if (_data.Length < 16 || _data[0] != 0x7f || _data[1] != 'E' || _data[2] != 'L' || _data[3] != 'F')
            throw Error("LG0002", "not an ELF file (bad magic)", 0);
        if (_data[4] != ELFCLASS64)
            throw Error("LG0004", $"unsupported ELF class {_data[4]}: only ELF64 is supported", 4);
        if (_data[5] is not (ELFDATA2LSB or ELFDATA2MSB))
            throw Error("LG0005", $"unsupported ELF data encoding {_data[5]}", 5);
        _enc = new ElfEncoding(_data[5] == ELFDATA2MSB);
        var eh = Slice(0, EHDR64_SIZE, "ELF header");
        var file = CreateEmpty();
        file.FileName = _name;
        var h = file.Header;
        h.Class = eh[4]; h.Data = eh[5]; h.IdentVersion = eh[6]; h.OsAbi = eh[7]; h.AbiVersion = eh[8];
        h.Type = _enc.ReadU16(eh[16..]);
        h.Machine = _enc.ReadU16(eh[18..]);
        h.Version = _enc.ReadU32(eh[20..]);
        h.Entry = _enc.ReadU64(eh[24..]);
        var phoff = _enc.ReadU64(eh[32..]);
        var shoff = _enc.ReadU64(eh[40..]);
        h.Flags = _enc.ReadU32(eh[48..]);
        var phentsize = _enc.ReadU16(eh[54..]);
        var phnum = _enc.ReadU16(eh[56..]);
        var shentsize = _enc.ReadU16(eh[58..]);
        ulong shnum = _enc.ReadU16(eh[60..]);
        uint shstrndx = _enc.ReadU16(eh[62..]);

        if (phnum > 0)
        {
            if (phentsize != PHDR64_SIZE)
                throw Error("LG0006", $"program header entry size {phentsize}, expected {PHDR64_SIZE}", 54);
            var table = Slice(phoff, (ulong)phnum * PHDR64_SIZE, "program header table");
            for (var i = 0; i < phnum; i++)
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

        var raw = new (uint Name, uint Type, ulong Flags, ulong Addr, ulong Off, ulong Size, uint Link, uint Info, ulong Align, ulong EntSize)[count];
        for (var i = 0; i < count; i++)
        {
            var e = headers.Slice(i * SHDR64_SIZE, SHDR64_SIZE);
            raw[i] = (_enc.ReadU32(e), _enc.ReadU32(e[4..]), _enc.ReadU64(e[8..]), _enc.ReadU64(e[16..]), _enc.ReadU64(e[24..]),
                _enc.ReadU64(e[32..]), _enc.ReadU32(e[40..]), _enc.ReadU32(e[44..]), _enc.ReadU64(e[48..]), _enc.ReadU64(e[56..]));
        }

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
                s.Data = new ReadOnlyMemory<byte>(_data, (int)r.Off, (int)r.Size);
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
