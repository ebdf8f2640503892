using System.Buffers.Binary;
using Livegraft.Elf;
using static Livegraft.Elf.ElfNative;

namespace Livegraft.Diff;

/// <summary>One livepatch relocation waiting in a <see cref="KlpRelocationTable"/>: the klp object
/// whose <c>.klp.rela.&lt;object&gt;.*</c> section carries it (klp applies it when that object is
/// loaded), the place (section and offset of an object being built), the relocation type, the
/// <c>.klp.sym.&lt;obj&gt;.&lt;name&gt;,&lt;sympos&gt;</c> symbol (whose object may be another module
/// the first one depends on) and the addend.</summary>
public readonly record struct KlpTableEntry(string Object, ElfSection Section, ulong Offset, uint Type, string SymbolName, long Addend);

/// <summary>
/// <c>.livegraft.klp_relocs</c>: how objects linked into a livepatch module carry livepatch
/// relocations through kbuild, whose modpost rejects unresolved non-exported symbols and whose
/// <c>ld -r</c> would fold <c>.klp.rela.*</c> into ordinary relocation sections. Each 32-byte entry
/// holds place(8) name(8) addend(8) type(4) pad(4); place and name are <c>R_X86_64_64</c>
/// relocations the linker keeps up to date, the name pointing into <c>.livegraft.klp_strs</c> at
/// <c>&lt;object&gt;:&lt;klp symbol&gt;</c> (module names have no colon).
/// The differ's output and the module descriptor write tables; <see cref="KlpPostLink"/> reads
/// them back from the linked module. The layout is defined here only.
/// </summary>
public static class KlpRelocationTable
{
    /// <summary>The table section.</summary>
    public const string Section = ".livegraft.klp_relocs";
    /// <summary>The klp symbol names the table points at.</summary>
    public const string StringsSection = ".livegraft.klp_strs";
    /// <summary>Bytes per entry.</summary>
    public const int EntrySize = 32;

    /// <summary>Adds the table and its strings to <paramref name="file"/>. <paramref name="sectionSymbol"/>
    /// gives (or creates) a section's STT_SECTION symbol; <paramref name="relocationsFor"/> gives
    /// (or creates) the relocation section of a section. Nothing is added when there are no entries.</summary>
    public static void Write(ElfFile file, IReadOnlyList<KlpTableEntry> entries,
        Func<ElfSection, ElfSymbol> sectionSymbol, Func<ElfSection, ElfRelocationSection> relocationsFor)
    {
        if (entries.Count == 0)
            return;
        var names = new List<byte>();
        var nameAt = new Dictionary<string, int>(StringComparer.Ordinal);
        var table = new byte[entries.Count * EntrySize];
        var strs = file.AddSection(new ElfSection(StringsSection, SHT_PROGBITS) { Alignment = 1 });
        var relocs = file.AddSection(new ElfSection(Section, SHT_PROGBITS) { Alignment = 8, EntrySize = EntrySize });
        var strsSym = sectionSymbol(strs);
        for (var i = 0; i < entries.Count; i++)
        {
            var (obj, section, offset, type, klpName, addend) = entries[i];
            var name = obj + ":" + klpName;
            if (!nameAt.TryGetValue(name, out var at))
            {
                nameAt[name] = at = names.Count;
                names.AddRange(System.Text.Encoding.UTF8.GetBytes(name));
                names.Add(0);
            }
            var e = table.AsSpan(i * EntrySize, EntrySize);
            BinaryPrimitives.WriteInt64LittleEndian(e[16..], addend);
            BinaryPrimitives.WriteUInt32LittleEndian(e[24..], type);
            var place = sectionSymbol(section);
            relocationsFor(relocs).Relocations.Add(new ElfRelocation { Offset = (ulong)(i * EntrySize), Type = R_X86_64_64, Symbol = place, Addend = (long)offset });
            relocationsFor(relocs).Relocations.Add(new ElfRelocation { Offset = (ulong)(i * EntrySize + 8), Type = R_X86_64_64, Symbol = strsSym, Addend = at });
        }
        strs.Data = names.ToArray();
        relocs.Data = table;
    }

    /// <summary>The entries of a linked module's table, with places resolved to the module's
    /// sections. LG0120 when the table is malformed.</summary>
    public static IReadOnlyList<KlpTableEntry> Read(ElfFile ko)
    {
        var table = ko.FindSection(Section);
        if (table is null)
            return [];
        var strings = ko.FindSection(StringsSection);
        if (strings is null || table.Size % EntrySize != 0)
            throw new LivegraftException(ExitCode.InvalidInput, DiffErrors.KlpTableMalformed, $"{Section} is malformed", ko.FileName, Section);
        var byOffset = ko.RelocationsFor(table).SelectMany(r => r.Relocations).ToDictionary(r => r.Offset);
        var result = new List<KlpTableEntry>();
        var count = (int)(table.Size / EntrySize);
        for (var i = 0; i < count; i++)
        {
            var at = (ulong)(i * EntrySize);
            var e = table.Data.Span.Slice((int)at, EntrySize);
            if (!byOffset.TryGetValue(at, out var place) || !byOffset.TryGetValue(at + 8, out var nameRef)
                || place.Symbol?.Section is not { } target || nameRef.Symbol?.Section is not { } strs)
                throw new LivegraftException(ExitCode.InvalidInput, DiffErrors.KlpTableMalformed, $"entry {i} lacks its place or name relocation", ko.FileName, Section);
            var name = ReadString(strs, (long)nameRef.Symbol.Value + nameRef.Addend);
            var colon = name.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
                throw new LivegraftException(ExitCode.InvalidInput, DiffErrors.KlpTableMalformed, $"entry {i} names no object: '{name}'", ko.FileName, Section);
            result.Add(new KlpTableEntry(name[..colon], target, (ulong)((long)place.Symbol.Value + place.Addend),
                BinaryPrimitives.ReadUInt32LittleEndian(e[24..]), name[(colon + 1)..], BinaryPrimitives.ReadInt64LittleEndian(e[16..])));
        }
        return result;
    }

    /// <summary>Removes the table, its strings, their relocation sections and symbols from <paramref name="ko"/>.</summary>
    public static void Remove(ElfFile ko)
    {
        var removed = new HashSet<ElfSection>(ReferenceEqualityComparer.Instance);
        foreach (var name in new[] { Section, StringsSection })
            if (ko.FindSection(name) is { } s)
            {
                removed.Add(s);
                foreach (var r in ko.RelocationsFor(s))
                    removed.Add(r);
            }
        ko.Sections.RemoveAll(removed.Contains);
        ko.SymbolTable?.Symbols.RemoveAll(s => s.Section is not null && removed.Contains(s.Section));
    }

    private static string ReadString(ElfSection s, long offset)
    {
        var data = s.Data.Span;
        if (offset < 0 || offset >= data.Length)
            throw new LivegraftException(ExitCode.InvalidInput, DiffErrors.KlpTableMalformed, $"klp symbol name offset {offset} is outside {s.Name}");
        var rest = data[(int)offset..];
        var end = rest.IndexOf((byte)0);
        return System.Text.Encoding.UTF8.GetString(end < 0 ? rest : rest[..end]);
    }
}
