using static Livegraft.Elf.ElfNative;

namespace Livegraft.Elf;

/// <summary>Fields of the ELF file header that are not derived from layout.</summary>
public sealed class ElfHeader
{
    /// <summary>ELFCLASS64; only 64-bit files are supported.</summary>
    public byte Class { get; set; } = ELFCLASS64;
    /// <summary>Byte order, ELFDATA2LSB or ELFDATA2MSB.</summary>
    public byte Data { get; set; } = ELFDATA2LSB;
    /// <summary>e_ident[EI_VERSION].</summary>
    public byte IdentVersion { get; set; } = EV_CURRENT;
    /// <summary>e_ident[EI_OSABI].</summary>
    public byte OsAbi { get; set; }
    /// <summary>e_ident[EI_ABIVERSION].</summary>
    public byte AbiVersion { get; set; }
    /// <summary>e_type: ET_REL, ET_EXEC, ...</summary>
    public ushort Type { get; set; } = ET_REL;
    /// <summary>e_machine.</summary>
    public ushort Machine { get; set; } = EM_X86_64;
    /// <summary>e_version.</summary>
    public uint Version { get; set; } = EV_CURRENT;
    /// <summary>e_entry.</summary>
    public ulong Entry { get; set; }
    /// <summary>e_flags.</summary>
    public uint Flags { get; set; }
}

/// <summary>A program header, kept as read (Livegraft never relinks executables).</summary>
public sealed class ElfSegment
{
    /// <summary>p_type.</summary>
    public uint Type { get; set; }
    /// <summary>p_flags.</summary>
    public uint Flags { get; set; }
    /// <summary>p_offset.</summary>
    public ulong Offset { get; set; }
    /// <summary>p_vaddr.</summary>
    public ulong VirtualAddress { get; set; }
    /// <summary>p_paddr.</summary>
    public ulong PhysicalAddress { get; set; }
    /// <summary>p_filesz.</summary>
    public ulong FileSize { get; set; }
    /// <summary>p_memsz.</summary>
    public ulong MemorySize { get; set; }
    /// <summary>p_align.</summary>
    public ulong Alignment { get; set; }
}

/// <summary>A section. Links to other sections are object references; indices exist only during layout.</summary>
public class ElfSection
{
    /// <summary>Creates a section of the given type.</summary>
    public ElfSection(string name, uint type)
    {
        Name = name;
        Type = type;
    }

    /// <summary>Section name (from .shstrtab).</summary>
    public string Name { get; set; }
    /// <summary>sh_type.</summary>
    public uint Type { get; set; }
    /// <summary>sh_flags.</summary>
    public ulong Flags { get; set; }
    /// <summary>sh_addr.</summary>
    public ulong Address { get; set; }
    /// <summary>sh_addralign.</summary>
    public ulong Alignment { get; set; } = 1;
    /// <summary>sh_entsize.</summary>
    public ulong EntrySize { get; set; }
    /// <summary>The section sh_link names, when it names a section.</summary>
    public ElfSection? Link { get; set; }
    /// <summary>The section sh_info names, for relocation sections and SHF_INFO_LINK.</summary>
    public ElfSection? InfoSection { get; set; }
    /// <summary>sh_info when it is not a section index (or the raw value for unknown kinds).</summary>
    public uint Info { get; set; }
    /// <summary>sh_link when it is not a section index (kept for unknown kinds).</summary>
    public uint RawLink { get; set; }

    /// <summary>Index in the section header table; assigned on read and at layout.</summary>
    public int Index { get; internal set; }
    /// <summary>File offset; assigned on read and at layout.</summary>
    public ulong Offset { get; internal set; }

    /// <summary>Size in bytes of the section's content (sh_size).</summary>
    public virtual ulong Size => (ulong)Data.Length;

    /// <summary>The section's bytes (empty for SHT_NOBITS).</summary>
    public virtual ReadOnlyMemory<byte> Data { get; set; } = ReadOnlyMemory<byte>.Empty;

    /// <summary>Name index in .shstrtab as read; reused when the string table is unchanged.</summary>
    internal uint NameIndex { get; set; }

    /// <summary>True when SHF_ALLOC is set.</summary>
    public bool IsAlloc => (Flags & SHF_ALLOC) != 0;
    /// <summary>True when SHF_EXECINSTR is set.</summary>
    public bool IsExecutable => (Flags & SHF_EXECINSTR) != 0;

    /// <summary>Serialises derived content (symbols, relocations, strings) before layout.</summary>
    internal virtual void Encode(ElfFile file)
    {
    }

    /// <inheritdoc/>
    public override string ToString() => $"[{Index}] {Name}";
}

/// <summary>SHT_NOBITS: occupies memory, not file space.</summary>
public sealed class ElfNoBitsSection : ElfSection
{
    /// <summary>Creates a .bss-like section.</summary>
    public ElfNoBitsSection(string name, ulong size) : base(name, SHT_NOBITS) => NoBitsSize = size;

    /// <summary>sh_size.</summary>
    public ulong NoBitsSize { get; set; }

    /// <inheritdoc/>
    public override ulong Size => NoBitsSize;
}

/// <summary>A string table (SHT_STRTAB). Content is regenerated at layout when strings change.</summary>
public sealed class ElfStringTable : ElfSection
{
    /// <summary>Creates an empty string table.</summary>
    public ElfStringTable(string name) : base(name, SHT_STRTAB) => Data = new byte[] { 0 };

    /// <summary>Reads the NUL-terminated string at <paramref name="index"/>.</summary>
    public string GetString(uint index, string? file = null)
    {
        var span = Data.Span;
        if (index >= span.Length)
            throw new ElfFormatException("LG0010", $"string index {index} is past the end of {Name} ({span.Length} bytes)", file, Offset + index);
        var rest = span[(int)index..];
        var end = rest.IndexOf((byte)0);
        if (end < 0)
            throw new ElfFormatException("LG0011", $"string at index {index} in {Name} is not NUL-terminated", file, Offset + index);
        return System.Text.Encoding.UTF8.GetString(rest[..end]);
    }

    /// <summary>True when the string at <paramref name="index"/> equals <paramref name="value"/>.</summary>
    internal bool Matches(uint index, string value)
    {
        var span = Data.Span;
        if (index >= span.Length)
            return false;
        var rest = span[(int)index..];
        var end = rest.IndexOf((byte)0);
        if (end < 0 || end != System.Text.Encoding.UTF8.GetByteCount(value))
            return false;
        return System.Text.Encoding.UTF8.GetString(rest[..end]) == value;
    }
}

/// <summary>A symbol. It points at its section object; its index exists only during layout.</summary>
public sealed class ElfSymbol
{
    /// <summary>Symbol name.</summary>
    public string Name { get; set; } = "";
    /// <summary>st_value (offset in section for ET_REL).</summary>
    public ulong Value { get; set; }
    /// <summary>st_size.</summary>
    public ulong Size { get; set; }
    /// <summary>STT_* from st_info.</summary>
    public byte Type { get; set; }
    /// <summary>STB_* from st_info.</summary>
    public byte Bind { get; set; }
    /// <summary>st_other (visibility in the low bits).</summary>
    public byte Other { get; set; }
    /// <summary>The defining section, or null for undefined and special indices.</summary>
    public ElfSection? Section { get; set; }
    /// <summary>Special st_shndx (SHN_UNDEF, SHN_ABS, SHN_COMMON, SHN_LIVEPATCH...) when <see cref="Section"/> is null.</summary>
    public ushort SpecialIndex { get; set; }

    /// <summary>Name index in the string table as read; reused when the table is unchanged.</summary>
    internal uint NameIndex { get; set; }
    /// <summary>Index in the symbol table; assigned on read and at layout.</summary>
    public int Index { get; internal set; }

    /// <summary>True for undefined symbols.</summary>
    public bool IsUndefined => Section is null && SpecialIndex == SHN_UNDEF;
    /// <summary>True for STB_LOCAL.</summary>
    public bool IsLocal => Bind == STB_LOCAL;
    /// <summary>True for STT_FUNC.</summary>
    public bool IsFunction => Type == STT_FUNC;
    /// <summary>True for STT_SECTION.</summary>
    public bool IsSectionSymbol => Type == STT_SECTION;

    /// <inheritdoc/>
    public override string ToString() => IsSectionSymbol && Section is not null ? Section.Name : Name;
}

/// <summary>A relocation. It points at a symbol object, never at an index.</summary>
public sealed class ElfRelocation
{
    /// <summary>r_offset: where in the target section.</summary>
    public ulong Offset { get; set; }
    /// <summary>Relocation type (R_X86_64_*).</summary>
    public uint Type { get; set; }
    /// <summary>The symbol; null for symbol index 0.</summary>
    public ElfSymbol? Symbol { get; set; }
    /// <summary>r_addend (0 for SHT_REL).</summary>
    public long Addend { get; set; }

    /// <inheritdoc/>
    public override string ToString() => $"0x{Offset:x} type {Type} {Symbol?.ToString() ?? "<none>"}{(Addend >= 0 ? "+" : "-")}0x{Math.Abs(Addend):x}";
}
