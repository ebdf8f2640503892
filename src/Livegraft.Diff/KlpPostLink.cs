using Livegraft.Elf;
using static Livegraft.Elf.ElfNative;

namespace Livegraft.Diff;

/// <summary>
/// Turns the <see cref="KlpRelocationTable"/> in a linked livepatch module into real livepatch
/// relocation sections (<c>.klp.rela.&lt;obj&gt;.&lt;section&gt;</c>, SHF_ALLOC |
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
        if (ko.FindSection(KlpRelocationTable.Section) is null)
            return 0;
        var symtab = ko.SymbolTable ?? throw new LivegraftException(ExitCode.InvalidInput, DiffErrors.KlpTableMalformed, "module has no symbol table", ko.FileName);
        var entries = KlpRelocationTable.Read(ko);
        var symbols = new Dictionary<string, ElfSymbol>(StringComparer.Ordinal);
        // One .klp.rela section per (object, place section): the kernel resolves a section's symbols
        // when its object loads, so entries of two objects (which share merged sections such as
        // .rodata, and the verify table's addresses) must not share a section.
        var klpSections = new Dictionary<(string, ElfSection), ElfRelocationSection>();
        foreach (var (objName, target, offset, type, name, addend) in entries)
        {
            if (!symbols.TryGetValue(name, out var sym))
            {
                sym = new ElfSymbol { Name = name, Bind = STB_GLOBAL, Type = STT_NOTYPE, SpecialIndex = SHN_LIVEPATCH };
                symtab.Symbols.Add(sym);
                symbols[name] = sym;
            }
            if (!klpSections.TryGetValue((objName, target), out var klp))
            {
                klp = ko.AddSection(new ElfRelocationSection($".klp.rela.{objName}.{target.Name}", target, symtab)
                {
                    Flags = SHF_ALLOC | SHF_INFO_LINK | SHF_RELA_LIVEPATCH,
                });
                klpSections[(objName, target)] = klp;
            }
            klp.Relocations.Add(new ElfRelocation { Offset = offset, Type = type, Symbol = sym, Addend = addend });
        }
        KlpRelocationTable.Remove(ko);
        return klpSections.Values.Sum(k => k.Relocations.Count);
    }
}
