using System.Globalization;
using System.Text;
using static Livegraft.Elf.ElfNative;

namespace Livegraft.Elf;

/// <summary>
/// A readelf-style text dump of an <see cref="ElfFile"/>: header, section table, relocations with
/// symbol names and addends, and symbol tables. Output is deterministic, so golden tests can pin it.
/// </summary>
/// <remarks>Indices are taken from the model's current order, not from the file as read, so an
/// edited model prints the way it will be written.</remarks>
public static class ElfPrinter
{
    /// <summary>Prints <paramref name="file"/> to a string.</summary>
    public static string Print(ElfFile file)
    {
        var w = new StringWriter(CultureInfo.InvariantCulture) { NewLine = "\n" };
        Print(file, w);
        return w.ToString();
    }

    /// <summary>Prints <paramref name="file"/> to <paramref name="w"/>.</summary>
    public static void Print(ElfFile file, TextWriter w)
    {
        var index = new Dictionary<ElfSection, int>(ReferenceEqualityComparer.Instance);
        for (var i = 0; i < file.Sections.Count; i++)
            index[file.Sections[i]] = i;
        string Idx(ElfSection? s) => s is not null && index.TryGetValue(s, out var i) ? i.ToString(CultureInfo.InvariantCulture) : "0";

        var h = file.Header;
        w.WriteLine("ELF Header:");
        w.WriteLine($"  Class:   {(h.Class == ELFCLASS64 ? "ELF64" : "class " + h.Class)}");
        w.WriteLine($"  Data:    {(h.Data == ELFDATA2MSB ? "big endian" : "little endian")}");
        w.WriteLine($"  OS/ABI:  {h.OsAbi}");
        w.WriteLine($"  Type:    {TypeName(h.Type)}");
        w.WriteLine($"  Machine: {(h.Machine == EM_X86_64 ? "x86-64" : "machine " + h.Machine)}");
        w.WriteLine($"  Entry:   0x{h.Entry:x}");
        w.WriteLine($"  Flags:   0x{h.Flags:x}");
        w.WriteLine($"  Segments: {file.Segments.Count}, sections: {file.Sections.Count}, section names: {Idx(file.SectionNames)}");

        w.WriteLine();
        w.WriteLine("Section Headers:");
        w.WriteLine("  [Nr] Name                 Type            Address          Off      Size     ES Flg  Lk  Inf Al");
        for (var i = 0; i < file.Sections.Count; i++)
        {
            var s = file.Sections[i];
            var link = s.Link is not null ? Idx(s.Link) : s.RawLink.ToString(CultureInfo.InvariantCulture);
            var info = s.InfoSection is not null ? Idx(s.InfoSection) : s.Info.ToString(CultureInfo.InvariantCulture);
            w.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  [{i,2}] {s.Name,-20} {SectionTypeName(s.Type),-15} {s.Address:x16} {s.Offset:x8} {s.Size:x8} {s.EntrySize:x2} {FlagLetters(s.Flags),-4} {link,3} {info,4} {s.Alignment}"));
        }
        w.WriteLine("Key to Flags: W (write), A (alloc), X (execute), M (merge), S (strings), I (info),");
        w.WriteLine("  L (link order), O (extra OS processing required), G (group), T (TLS), C (compressed), E (exclude), x (unknown)");

        foreach (var g in file.Sections.OfType<ElfGroupSection>())
        {
            w.WriteLine();
            w.WriteLine($"{((g.GroupFlags & GRP_COMDAT) != 0 ? "COMDAT group" : "group")} section [{Idx(g),5}] `{g.Name}' [{g.Signature?.Name ?? ""}] contains {g.Members.Count} sections:");
            w.WriteLine("   [Index]    Name");
            foreach (var m in g.Members)
                w.WriteLine($"   [{Idx(m),5}]   {m.Name}");
        }

        foreach (var r in file.Sections.OfType<ElfRelocationSection>())
        {
            var rels = r.Relocations;
            w.WriteLine();
            w.WriteLine($"Relocation section '{r.Name}' at offset 0x{r.Offset:x} contains {rels.Count} {(rels.Count == 1 ? "entry" : "entries")}:");
            w.WriteLine("    Offset             Type               Symbol's Value   Symbol's Name + Addend");
            foreach (var e in rels)
            {
                var value = e.Symbol?.Value ?? 0;
                var name = e.Symbol?.ToString() ?? "";
                var addend = r.IsRela ? (e.Addend < 0 ? $" - {(ulong)-e.Addend:x}" : $" + {e.Addend:x}") : "";
                w.WriteLine($"{e.Offset:x16}  {RelocationTypeName(h.Machine, e.Type),-18} {value:x16} {name}{addend}");
            }
        }

        foreach (var t in file.Sections.OfType<ElfSymbolTable>())
        {
            w.WriteLine();
            w.WriteLine($"Symbol table '{t.Name}' contains {t.Symbols.Count} {(t.Symbols.Count == 1 ? "entry" : "entries")}:");
            w.WriteLine("   Num:    Value          Size Type    Bind   Vis      Ndx Name");
            for (var i = 0; i < t.Symbols.Count; i++)
            {
                var s = t.Symbols[i];
                var ndx = s.Section is not null ? Idx(s.Section) : SpecialIndexName(s.SpecialIndex);
                var name = s.IsSectionSymbol && s.Section is not null && s.Name.Length == 0 ? s.Section.Name : s.Name;
                w.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{i,6}: {s.Value:x16} {s.Size,5} {SymbolTypeName(s.Type),-7} {BindName(s.Bind),-6} {VisibilityName(s.Other),-8} {ndx,4} {name}"));
            }
        }
    }

    /// <summary>readelf's name for an e_type.</summary>
    public static string TypeName(ushort type) => type switch
    {
        ET_NONE => "NONE",
        ET_REL => "REL (Relocatable file)",
        ET_EXEC => "EXEC (Executable file)",
        ET_DYN => "DYN (Shared object file)",
        ET_CORE => "CORE (Core file)",
        _ => $"<unknown>: 0x{type:x}",
    };

    /// <summary>readelf's name for an sh_type.</summary>
    public static string SectionTypeName(uint type) => type switch
    {
        SHT_NULL => "NULL",
        SHT_PROGBITS => "PROGBITS",
        SHT_SYMTAB => "SYMTAB",
        SHT_STRTAB => "STRTAB",
        SHT_RELA => "RELA",
        SHT_HASH => "HASH",
        SHT_DYNAMIC => "DYNAMIC",
        SHT_NOTE => "NOTE",
        SHT_NOBITS => "NOBITS",
        SHT_REL => "REL",
        SHT_DYNSYM => "DYNSYM",
        SHT_INIT_ARRAY => "INIT_ARRAY",
        SHT_FINI_ARRAY => "FINI_ARRAY",
        SHT_PREINIT_ARRAY => "PREINIT_ARRAY",
        SHT_GROUP => "GROUP",
        SHT_SYMTAB_SHNDX => "SYMTAB SECTION INDICES",
        SHT_X86_64_UNWIND => "X86_64_UNWIND",
        0x6ffffff6 => "GNU_HASH",
        0x6ffffffd => "VERDEF",
        0x6ffffffe => "VERNEED",
        0x6fffffff => "VERSYM",
        _ => $"0x{type:x}",
    };

    /// <summary>readelf's flag letters (see <c>readelf -S</c>'s key).</summary>
    public static string FlagLetters(ulong flags)
    {
        var b = new StringBuilder();
        void Add(ulong bit, char c)
        {
            if ((flags & bit) != 0)
            {
                b.Append(c);
                flags &= ~bit;
            }
        }
        Add(SHF_WRITE, 'W');
        Add(SHF_ALLOC, 'A');
        Add(SHF_EXECINSTR, 'X');
        Add(SHF_MERGE, 'M');
        Add(SHF_STRINGS, 'S');
        Add(SHF_INFO_LINK, 'I');
        Add(SHF_LINK_ORDER, 'L');
        Add(0x100, 'O'); // SHF_OS_NONCONFORMING
        Add(SHF_GROUP, 'G');
        Add(SHF_TLS, 'T');
        Add(SHF_COMPRESSED, 'C');
        Add(0x80000000, 'E'); // SHF_EXCLUDE
        if (flags != 0)
            b.Append('x');
        return b.ToString();
    }

    /// <summary>Name of an x86-64 relocation type, or its number for other machines and unknown types.</summary>
    public static string RelocationTypeName(ushort machine, uint type)
    {
        if (machine != EM_X86_64)
            return $"0x{type:x}";
        return type switch
        {
            R_X86_64_NONE => "R_X86_64_NONE",
            R_X86_64_64 => "R_X86_64_64",
            R_X86_64_PC32 => "R_X86_64_PC32",
            R_X86_64_GOT32 => "R_X86_64_GOT32",
            R_X86_64_PLT32 => "R_X86_64_PLT32",
            R_X86_64_GOTPCREL => "R_X86_64_GOTPCREL",
            R_X86_64_32 => "R_X86_64_32",
            R_X86_64_32S => "R_X86_64_32S",
            R_X86_64_16 => "R_X86_64_16",
            R_X86_64_PC16 => "R_X86_64_PC16",
            R_X86_64_8 => "R_X86_64_8",
            R_X86_64_PC8 => "R_X86_64_PC8",
            R_X86_64_PC64 => "R_X86_64_PC64",
            R_X86_64_GOTPCRELX => "R_X86_64_GOTPCRELX",
            R_X86_64_REX_GOTPCRELX => "R_X86_64_REX_GOTPCRELX",
            8 => "R_X86_64_RELATIVE",
            6 => "R_X86_64_GLOB_DAT",
            7 => "R_X86_64_JUMP_SLOT",
            5 => "R_X86_64_COPY",
            16 => "R_X86_64_DTPMOD64",
            17 => "R_X86_64_DTPOFF64",
            18 => "R_X86_64_TPOFF64",
            19 => "R_X86_64_TLSGD",
            20 => "R_X86_64_TLSLD",
            21 => "R_X86_64_DTPOFF32",
            22 => "R_X86_64_GOTTPOFF",
            23 => "R_X86_64_TPOFF32",
            _ => $"0x{type:x}",
        };
    }

    /// <summary>readelf's name for an STT_* value.</summary>
    public static string SymbolTypeName(byte type) => type switch
    {
        STT_NOTYPE => "NOTYPE",
        STT_OBJECT => "OBJECT",
        STT_FUNC => "FUNC",
        STT_SECTION => "SECTION",
        STT_FILE => "FILE",
        STT_COMMON => "COMMON",
        STT_TLS => "TLS",
        10 => "IFUNC",
        _ => $"<{type}>",
    };

    /// <summary>readelf's name for an STB_* value.</summary>
    public static string BindName(byte bind) => bind switch
    {
        STB_LOCAL => "LOCAL",
        STB_GLOBAL => "GLOBAL",
        STB_WEAK => "WEAK",
        10 => "UNIQUE",
        _ => $"<{bind}>",
    };

    /// <summary>readelf's name for the visibility in st_other.</summary>
    public static string VisibilityName(byte other) => (other & 3) switch
    {
        0 => "DEFAULT",
        1 => "INTERNAL",
        2 => "HIDDEN",
        _ => "PROTECTED",
    };

    /// <summary>readelf's name for a special st_shndx.</summary>
    public static string SpecialIndexName(ushort index) => index switch
    {
        SHN_UNDEF => "UND",
        SHN_ABS => "ABS",
        SHN_COMMON => "COM",
        SHN_LIVEPATCH => "LIVEPATCH",
        _ => $"0x{index:x}",
    };
}
