using System.Buffers.Binary;
using Livegraft.Elf;
using static Livegraft.Elf.ElfNative;

namespace Livegraft.Diff;

/// <summary>
/// Turns the differ's <c>.livegraft.klp_relocs</c> table in a linked livepatch module into real
/// livepatch relocation sections (<c>.klp.rela.&lt;obj&gt;.&lt;section&gt;</c>, SHF_ALLOC |
/// SHF_RELA_LIVEPATCH) and <c>.klp.sym.&lt;obj&gt;.&lt;name&gt;,&lt;sympos&gt;</c> symbols with
/// SHN_LIVEPATCH, as Documentation/livepatch/module-elf-format.rst requires. It runs after kbuild's
/// link because modpost would reject the unresolved symbols and <c>ld -r</c> would fold the klp
/// sections into ordinary ones.
/// </summary>
public static class KlpPostLink
{
    /// <summary>Converts the module at <paramref name="koPath"/> in place (atomically); returns how
    /// many livepatch relocations it now carries.</summary>
    public static int Process(string koPath)
    {
        var ko = ElfFile.Read(koPath);
        var count = Process(ko);
        ko.Write(koPath);
        return count;
    }

    /// <summary>Converts a module in memory; returns the number of livepatch relocations.</summary>
    public static int Process(ElfFile ko)
    {
        var table = ko.FindSection(Emitter.KlpRelocsSection);
        var strings = ko.FindSection(Emitter.KlpStringsSection);
        if (table is null)
            return 0;
        var symtab = ko.SymbolTable ?? throw new LivegraftException(ExitCode.InvalidInput, "LG0120", "module has no symbol table", ko.FileName);
        if (strings is null || table.Size % Emitter.KlpEntrySize != 0)
            throw new LivegraftException(ExitCode.InvalidInput, "LG0120", $"{Emitter.KlpRelocsSection} is malformed", ko.FileName, Emitter.KlpRelocsSection);
        var rela = ko.RelocationsFor(table).ToList();
        var byOffset = rela.SelectMany(r => r.Relocations).ToDictionary(r => r.Offset);
        var symbols = new Dictionary<string, ElfSymbol>(StringComparer.Ordinal);
        var klpSections = new Dictionary<ElfSection, ElfRelocationSection>(ReferenceEqualityComparer.Instance);
        var entries = (int)(table.Size / Emitter.KlpEntrySize);
        for (var i = 0; i < entries; i++)
        {
            var at = (ulong)(i * Emitter.KlpEntrySize);
            var e = table.Data.Span.Slice((int)at, Emitter.KlpEntrySize);
            if (!byOffset.TryGetValue(at, out var place) || !byOffset.TryGetValue(at + 8, out var nameRef)
                || place.Symbol?.Section is not { } target || nameRef.Symbol?.Section is not { } strs)
                throw new LivegraftException(ExitCode.InvalidInput, "LG0120", $"entry {i} lacks its place or name relocation", ko.FileName, Emitter.KlpRelocsSection);
            var offset = (ulong)((long)place.Symbol.Value + place.Addend);
            var name = ReadString(strs, (long)nameRef.Symbol.Value + nameRef.Addend);
            var addend = BinaryPrimitives.ReadInt64LittleEndian(e[16..]);
            var type = BinaryPrimitives.ReadUInt32LittleEndian(e[24..]);
            var objName = name[".klp.sym.".Length..name.IndexOf('.', ".klp.sym.".Length)];
            if (!symbols.TryGetValue(name, out var sym))
            {
                sym = new ElfSymbol { Name = name, Bind = STB_GLOBAL, Type = STT_NOTYPE, SpecialIndex = SHN_LIVEPATCH };
                symtab.Symbols.Add(sym);
                symbols[name] = sym;
            }
            if (!klpSections.TryGetValue(target, out var klp))
            {
                klp = ko.AddSection(new ElfRelocationSection($".klp.rela.{objName}.{target.Name}", target, symtab)
                {
                    Flags = SHF_ALLOC | SHF_INFO_LINK | SHF_RELA_LIVEPATCH,
                });
                klpSections[target] = klp;
            }
            klp.Relocations.Add(new ElfRelocation { Offset = offset, Type = type, Symbol = sym, Addend = addend });
        }
        // Drop the carrier sections and any symbol that pointed into them.
        var removed = new HashSet<ElfSection>(ReferenceEqualityComparer.Instance) { table, strings };
        foreach (var r in rela)
            removed.Add(r);
        ko.Sections.RemoveAll(removed.Contains);
        symtab.Symbols.RemoveAll(s => s.Section is not null && removed.Contains(s.Section));
        // Keep the string and symbol tables last so the new sections sit with the content.
        return klpSections.Values.Sum(k => k.Relocations.Count);
    }

    private static string ReadString(ElfSection s, long offset)
    {
        var data = s.Data.Span;
        if (offset < 0 || offset >= data.Length)
            throw new LivegraftException(ExitCode.InvalidInput, "LG0120", $"klp symbol name offset {offset} is outside {s.Name}");
        var rest = data[(int)offset..];
        var end = rest.IndexOf((byte)0);
        return System.Text.Encoding.UTF8.GetString(end < 0 ? rest : rest[..end]);
    }
}
