using System.Buffers.Binary;
using System.Text;

namespace Livegraft.Kernel.Symbols;

/// <summary>One ELF64 section header, as read (gABI "Section Header").</summary>
internal readonly record struct ElfSectionHeader(
    int Index, string Name, uint Type, ulong Flags, ulong Address, ulong Offset, ulong Size, uint Link, uint Info, ulong Alignment, ulong EntrySize);

/// <summary>One ELF64 program header (gABI "Program Header").</summary>
internal readonly record struct ElfProgramHeader(uint Type, uint Flags, ulong Offset, ulong VirtualAddress, ulong FileSize, ulong MemorySize, ulong Alignment);

/// <summary>One ELF64 symbol (gABI "Symbol Table"), with its name resolved.</summary>
internal readonly record struct ElfSymbolEntry(int Index, string Name, byte Info, byte Other, uint SectionIndex, ulong Value, ulong Size)
{
    public byte Bind => (byte)(Info >> 4);
    public byte Type => (byte)(Info & 0xf);
}

/// <summary>
/// The few ELF64 little-endian structures the symbols code needs: header, section and program
/// headers, and <c>.symtab</c>. Deliberately tiny and independent of Livegraft.Elf's object model;
/// bounds-checked, malformed input throws <see cref="LivegraftException"/> LG0315.
/// </summary>
internal sealed class KernelElf
{
    public const uint SHT_SYMTAB = 2, SHT_NOBITS = 8, SHT_SYMTAB_SHNDX = 18;
    public const ulong SHF_WRITE = 0x1, SHF_ALLOC = 0x2, SHF_EXECINSTR = 0x4;
    public const uint PT_LOAD = 1;
    public const ushort SHN_UNDEF = 0, SHN_LORESERVE = 0xff00, SHN_ABS = 0xfff1, SHN_XINDEX = 0xffff;
    public const byte STB_LOCAL = 0, STB_GLOBAL = 1, STB_WEAK = 2;
    public const byte STT_NOTYPE = 0, STT_OBJECT = 1, STT_FUNC = 2, STT_SECTION = 3, STT_FILE = 4, STT_TLS = 6;
    public const ushort EM_X86_64 = 62;

    private readonly ReadOnlyMemory<byte> _data;

    private KernelElf(ReadOnlyMemory<byte> data, string? file, ushort type, ushort machine, ElfSectionHeader[] sections, ElfProgramHeader[] segments)
    {
        _data = data;
        File = file;
        Type = type;
        Machine = machine;
        Sections = sections;
        Segments = segments;
    }

    public string? File { get; }
    public ushort Type { get; }
    public ushort Machine { get; }
    public IReadOnlyList<ElfSectionHeader> Sections { get; }
    public IReadOnlyList<ElfProgramHeader> Segments { get; }

    /// <summary>True when <paramref name="data"/> starts with an ELF64 little-endian identification.</summary>
    public static bool IsElf64(ReadOnlySpan<byte> data) =>
        data.Length >= 16 && data[0] == 0x7f && data[1] == (byte)'E' && data[2] == (byte)'L' && data[3] == (byte)'F' && data[4] == 2 && data[5] == 1;

    public static KernelElf Parse(ReadOnlyMemory<byte> memory, string? file)
    {
        var d = memory.Span;
        if (d.Length < 64 || !IsElf64(d))
            throw Bad("not an ELF64 little-endian file", file, 0);
        var type = BinaryPrimitives.ReadUInt16LittleEndian(d[0x10..]);
        var machine = BinaryPrimitives.ReadUInt16LittleEndian(d[0x12..]);
        var phoff = BinaryPrimitives.ReadUInt64LittleEndian(d[0x20..]);
        var shoff = BinaryPrimitives.ReadUInt64LittleEndian(d[0x28..]);
        var phentsize = BinaryPrimitives.ReadUInt16LittleEndian(d[0x36..]);
        uint phnum = BinaryPrimitives.ReadUInt16LittleEndian(d[0x38..]);
        var shentsize = BinaryPrimitives.ReadUInt16LittleEndian(d[0x3a..]);
        uint shnum = BinaryPrimitives.ReadUInt16LittleEndian(d[0x3c..]);
        uint shstrndx = BinaryPrimitives.ReadUInt16LittleEndian(d[0x3e..]);

        var segments = new ElfProgramHeader[phnum];
        if (phnum > 0)
        {
            if (phentsize < 56)
                throw Bad($"e_phentsize {phentsize} is smaller than an Elf64_Phdr", file, 0x36);
            for (var i = 0; i < phnum; i++)
            {
                var p = Slice(d, phoff + (ulong)i * phentsize, 56, file, "program header");
                segments[i] = new ElfProgramHeader(
                    BinaryPrimitives.ReadUInt32LittleEndian(p), BinaryPrimitives.ReadUInt32LittleEndian(p[4..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(p[8..]), BinaryPrimitives.ReadUInt64LittleEndian(p[16..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(p[32..]), BinaryPrimitives.ReadUInt64LittleEndian(p[40..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(p[48..]));
            }
        }

        var sections = Array.Empty<ElfSectionHeader>();
        if (shoff != 0)
        {
            if (shentsize < 64)
                throw Bad($"e_shentsize {shentsize} is smaller than an Elf64_Shdr", file, 0x3a);
            var first = Slice(d, shoff, 64, file, "section header 0");
            // gABI extended numbering: e_shnum 0 and e_shstrndx SHN_XINDEX defer to section 0.
            if (shnum == 0)
                shnum = checked((uint)Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(first[32..]), uint.MaxValue));
            if (shstrndx == SHN_XINDEX)
                shstrndx = BinaryPrimitives.ReadUInt32LittleEndian(first[40..]);
            if ((ulong)shnum * shentsize > (ulong)d.Length)
                throw Bad($"{shnum} section headers do not fit in the file", file, (long)shoff);
            var raw = new (uint Name, uint Type, ulong Flags, ulong Addr, ulong Off, ulong Size, uint Link, uint Info, ulong Align, ulong EntSize)[shnum];
            for (var i = 0; i < shnum; i++)
            {
                var s = Slice(d, shoff + (ulong)i * shentsize, 64, file, "section header");
                raw[i] = (BinaryPrimitives.ReadUInt32LittleEndian(s), BinaryPrimitives.ReadUInt32LittleEndian(s[4..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(s[8..]), BinaryPrimitives.ReadUInt64LittleEndian(s[16..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(s[24..]), BinaryPrimitives.ReadUInt64LittleEndian(s[32..]),
                    BinaryPrimitives.ReadUInt32LittleEndian(s[40..]), BinaryPrimitives.ReadUInt32LittleEndian(s[44..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(s[48..]), BinaryPrimitives.ReadUInt64LittleEndian(s[56..]));
            }
            ReadOnlySpan<byte> shstr = default;
            if (shstrndx != 0 && shstrndx < shnum && raw[shstrndx].Type != SHT_NOBITS)
                shstr = Slice(d, raw[shstrndx].Off, raw[shstrndx].Size, file, "section name table");
            sections = new ElfSectionHeader[shnum];
            for (var i = 0; i < shnum; i++)
            {
                var r = raw[i];
                var name = shstr.IsEmpty ? "" : CString(shstr, r.Name, file, "section name");
                sections[i] = new ElfSectionHeader(i, name, r.Type, r.Flags, r.Addr, r.Off, r.Size, r.Link, r.Info, r.Align, r.EntSize);
            }
        }
        return new KernelElf(memory, file, type, machine, sections, segments);
    }

    /// <summary>The file bytes of a section (empty for <c>SHT_NOBITS</c>).</summary>
    public ReadOnlySpan<byte> SectionData(ElfSectionHeader section) =>
        section.Type == SHT_NOBITS ? default : Slice(_data.Span, section.Offset, section.Size, File, section.Name);

    /// <summary>Reads <c>.symtab</c> in order, or returns null when the file has none.</summary>
    public ElfSymbolEntry[]? ReadSymbolTable()
    {
        var symtabIndex = -1;
        for (var i = 0; i < Sections.Count; i++)
        {
            if (Sections[i].Type == SHT_SYMTAB)
            {
                symtabIndex = i;
                break;
            }
        }
        if (symtabIndex < 0)
            return null;
        var symtab = Sections[symtabIndex];
        if (symtab.Link >= Sections.Count)
            throw Bad($"{symtab.Name} links to section {symtab.Link}, which does not exist", File, (long)symtab.Offset);
        var data = SectionData(symtab);
        var strtab = SectionData(Sections[(int)symtab.Link]);
        ReadOnlySpan<byte> shndx = default;
        foreach (var s in Sections)
        {
            if (s.Type == SHT_SYMTAB_SHNDX && s.Link == symtabIndex)
                shndx = SectionData(s);
        }
        var entsize = symtab.EntrySize == 0 ? 24UL : symtab.EntrySize;
        if (entsize < 24)
            throw Bad($"{symtab.Name} sh_entsize {entsize} is smaller than an Elf64_Sym", File, (long)symtab.Offset);
        var count = (int)((ulong)data.Length / entsize);
        var result = new ElfSymbolEntry[count];
        for (var i = 0; i < count; i++)
        {
            var e = data.Slice((int)((ulong)i * entsize), 24);
            var nameOffset = BinaryPrimitives.ReadUInt32LittleEndian(e);
            uint sectionIndex = BinaryPrimitives.ReadUInt16LittleEndian(e[6..]);
            if (sectionIndex == SHN_XINDEX && !shndx.IsEmpty && (i + 1) * 4 <= shndx.Length)
                sectionIndex = BinaryPrimitives.ReadUInt32LittleEndian(shndx[(i * 4)..]);
            result[i] = new ElfSymbolEntry(i, CString(strtab, nameOffset, File, $"{symtab.Name}[{i}] name"), e[4], e[5], sectionIndex,
                BinaryPrimitives.ReadUInt64LittleEndian(e[8..]), BinaryPrimitives.ReadUInt64LittleEndian(e[16..]));
        }
        return result;
    }

    /// <summary>Maps a virtual address to a file offset through the PT_LOAD segments, or -1.</summary>
    public long FileOffsetOf(ulong address)
    {
        foreach (var p in Segments)
        {
            if (p.Type == PT_LOAD && address >= p.VirtualAddress && address - p.VirtualAddress < p.FileSize)
                return (long)(p.Offset + (address - p.VirtualAddress));
        }
        return -1;
    }

    /// <summary>Maps a file offset to a virtual address through the PT_LOAD segments, or null.</summary>
    public ulong? AddressOf(long offset)
    {
        foreach (var p in Segments)
        {
            if (p.Type == PT_LOAD && (ulong)offset >= p.Offset && (ulong)offset - p.Offset < p.FileSize)
                return p.VirtualAddress + ((ulong)offset - p.Offset);
        }
        return null;
    }

    internal static ReadOnlySpan<byte> Slice(ReadOnlySpan<byte> d, ulong offset, ulong length, string? file, string what)
    {
        if (offset > (ulong)d.Length || length > (ulong)d.Length - offset)
            throw Bad($"{what} at 0x{offset:x} (0x{length:x} bytes) runs past the end of the file (0x{d.Length:x} bytes)", file, (long)Math.Min(offset, long.MaxValue));
        return d.Slice((int)offset, (int)length);
    }

    internal static string CString(ReadOnlySpan<byte> table, uint offset, string? file, string what)
    {
        if (offset >= (uint)table.Length)
        {
            if (offset == 0)
                return "";
            throw Bad($"{what}: string offset 0x{offset:x} is outside its string table (0x{table.Length:x} bytes)", file, offset);
        }
        var rest = table[(int)offset..];
        var end = rest.IndexOf((byte)0);
        if (end < 0)
            throw Bad($"{what}: string at 0x{offset:x} is not NUL-terminated", file, offset);
        return Encoding.UTF8.GetString(rest[..end]);
    }

    private static LivegraftException Bad(string message, string? file, long offset) =>
        SymbolErrors.Invalid(SymbolErrors.BadElf, message, file, offset);
}
