namespace Livegraft.Elf;

/// <summary>ELF constants named exactly as in <c>elf.h</c> (gABI, x86-64 psABI, Linux uapi), so the spec can be grepped.</summary>
#pragma warning disable CA1707 // names follow elf.h on purpose
public static class ElfNative
{
    public const byte ELFCLASS32 = 1;
    public const byte ELFCLASS64 = 2;
    public const byte ELFDATA2LSB = 1;
    public const byte ELFDATA2MSB = 2;
    public const byte EV_CURRENT = 1;

    public const ushort ET_NONE = 0;
    public const ushort ET_REL = 1;
    public const ushort ET_EXEC = 2;
    public const ushort ET_DYN = 3;
    public const ushort ET_CORE = 4;

    public const ushort EM_X86_64 = 62;

    public const uint PT_NULL = 0;
    public const uint PT_LOAD = 1;
    public const uint PT_NOTE = 4;

    public const uint NT_GNU_BUILD_ID = 3;

    public const int EHDR64_SIZE = 64;
    public const int SHDR64_SIZE = 64;
    public const int PHDR64_SIZE = 56;
    public const int SYM64_SIZE = 24;
    public const int RELA64_SIZE = 24;
    public const int REL64_SIZE = 16;

    public const ushort SHN_UNDEF = 0;
    public const ushort SHN_LORESERVE = 0xff00;
    public const ushort SHN_LIVEPATCH = 0xff20;
    public const ushort SHN_ABS = 0xfff1;
    public const ushort SHN_COMMON = 0xfff2;
    public const ushort SHN_XINDEX = 0xffff;

    public const uint SHT_NULL = 0;
    public const uint SHT_PROGBITS = 1;
    public const uint SHT_SYMTAB = 2;
    public const uint SHT_STRTAB = 3;
    public const uint SHT_RELA = 4;
    public const uint SHT_HASH = 5;
    public const uint SHT_DYNAMIC = 6;
    public const uint SHT_NOTE = 7;
    public const uint SHT_NOBITS = 8;
    public const uint SHT_REL = 9;
    public const uint SHT_DYNSYM = 11;
    public const uint SHT_INIT_ARRAY = 14;
    public const uint SHT_FINI_ARRAY = 15;
    public const uint SHT_PREINIT_ARRAY = 16;
    public const uint SHT_GROUP = 17;
    public const uint SHT_SYMTAB_SHNDX = 18;
    public const uint SHT_X86_64_UNWIND = 0x70000001;

    public const ulong SHF_WRITE = 0x1;
    public const ulong SHF_ALLOC = 0x2;
    public const ulong SHF_EXECINSTR = 0x4;
    public const ulong SHF_MERGE = 0x10;
    public const ulong SHF_STRINGS = 0x20;
    public const ulong SHF_INFO_LINK = 0x40;
    public const ulong SHF_LINK_ORDER = 0x80;
    public const ulong SHF_GROUP = 0x200;
    public const ulong SHF_TLS = 0x400;
    public const ulong SHF_COMPRESSED = 0x800;
    public const ulong SHF_RELA_LIVEPATCH = 0x00100000;

    public const uint GRP_COMDAT = 0x1;

    public const byte STB_LOCAL = 0;
    public const byte STB_GLOBAL = 1;
    public const byte STB_WEAK = 2;

    public const byte STT_NOTYPE = 0;
    public const byte STT_OBJECT = 1;
    public const byte STT_FUNC = 2;
    public const byte STT_SECTION = 3;
    public const byte STT_FILE = 4;
    public const byte STT_COMMON = 5;
    public const byte STT_TLS = 6;

    public const byte STV_DEFAULT = 0;

    public const uint R_X86_64_NONE = 0;
    public const uint R_X86_64_64 = 1;
    public const uint R_X86_64_PC32 = 2;
    public const uint R_X86_64_GOT32 = 3;
    public const uint R_X86_64_PLT32 = 4;
    public const uint R_X86_64_32 = 10;
    public const uint R_X86_64_32S = 11;
    public const uint R_X86_64_16 = 12;
    public const uint R_X86_64_PC16 = 13;
    public const uint R_X86_64_8 = 14;
    public const uint R_X86_64_PC8 = 15;
    public const uint R_X86_64_PC64 = 24;
    public const uint R_X86_64_GOTPCREL = 9;
    public const uint R_X86_64_GOTPCRELX = 41;
    public const uint R_X86_64_REX_GOTPCRELX = 42;

    /// <summary>Bytes a relocation of this x86-64 type writes, or 0 when unknown.</summary>
    public static int X86_64RelocationSize(uint type) => type switch
    {
        R_X86_64_64 or R_X86_64_PC64 => 8,
        R_X86_64_PC32 or R_X86_64_PLT32 or R_X86_64_32 or R_X86_64_32S or R_X86_64_GOT32
            or R_X86_64_GOTPCREL or R_X86_64_GOTPCRELX or R_X86_64_REX_GOTPCRELX => 4,
        R_X86_64_16 or R_X86_64_PC16 => 2,
        R_X86_64_8 or R_X86_64_PC8 => 1,
        _ => 0,
    };

    /// <summary>True for PC-relative x86-64 relocation types.</summary>
    public static bool X86_64IsPcRelative(uint type) =>
        type is R_X86_64_PC32 or R_X86_64_PLT32 or R_X86_64_PC16 or R_X86_64_PC8 or R_X86_64_PC64
            or R_X86_64_GOTPCREL or R_X86_64_GOTPCRELX or R_X86_64_REX_GOTPCRELX;
}
#pragma warning restore CA1707
