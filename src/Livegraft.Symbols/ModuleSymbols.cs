using Livegraft.Elf;
using static Livegraft.Elf.ElfNative;

namespace Livegraft.Symbols;

/// <summary>Which of a module's symbol lists the kernel is walking (kernel/module/kallsyms.c).</summary>
public enum ModuleSymbolView
{
    /// <summary><c>mod->core_kallsyms</c>: after init, what <c>/proc/kallsyms</c> shows and what klp
    /// walks when the patch is loaded after the module (the usual case).</summary>
    Core,
    /// <summary>The full <c>.symtab</c>, which <c>mod->kallsyms</c> points at while the module is still
    /// loading: what klp walks when the module loads after the patch (<c>klp_module_coming</c>).</summary>
    Full,
}

/// <summary>
/// The symbols a <c>.ko</c> contributes to kallsyms, in symtab order (klp counts a module's
/// <c>sympos</c> in this order), read from the file's own <c>.symtab</c>.
/// </summary>
public sealed class ModuleSymbols
{
    private ModuleSymbols(string name, IReadOnlyList<KernelSymbol> symbols)
    {
        Name = name;
        Symbols = symbols;
    }

    /// <summary>Module name as the kernel knows it (<c>.modinfo</c> <c>name=</c>, else the file name with dashes as underscores).</summary>
    public string Name { get; }

    /// <summary>The symbols of the requested view, in symtab order; addresses are section-relative.</summary>
    public IReadOnlyList<KernelSymbol> Symbols { get; }

    /// <summary>Reads a module from disk.</summary>
    public static ModuleSymbols Read(string path, ModuleSymbolView view = ModuleSymbolView.Core) => From(ElfFile.Read(path), path, view);

    /// <summary>Reads a module's symbols from its bytes.</summary>
    public static ModuleSymbols Parse(byte[] data, string? file = null, ModuleSymbolView view = ModuleSymbolView.Core) =>
        From(ElfFile.Read(data, file), file, view);

    /// <summary>A module's symbols from its ELF model.</summary>
    public static ModuleSymbols From(ElfFile elf, string? file = null, ModuleSymbolView view = ModuleSymbolView.Core)
    {
        var symtab = elf.SymbolTable
            ?? throw SymbolErrors.Invalid(SymbolErrors.NoSymbolTable, "module has no .symtab (stripped?)", file);
        var name = ModuleInfo.Of(elf).Get("name") ?? ModuleInfo.NameFromFileName(file ?? "module");
        var percpu = elf.FindSection(".data..percpu");
        var exported = new HashSet<string>(StringComparer.Ordinal);
        foreach (var s in symtab.Symbols)
        {
            // include/linux/export.h labels every export's struct kernel_symbol "__ksymtab_<name>". Only
            // those in __ksymtab count: is_exported() searches mod->syms, not mod->gpl_syms, so
            // /proc/kallsyms shows EXPORT_SYMBOL_GPL symbols in lower case.
            if (s.Name.StartsWith("__ksymtab_", StringComparison.Ordinal) && s.Section?.Name == "__ksymtab")
                exported.Add(s.Name["__ksymtab_".Length..]);
        }
        var result = new List<KernelSymbol>(symtab.Symbols.Count);
        for (var i = 1; i < symtab.Symbols.Count; i++)
        {
            var s = symtab.Symbols[i];
            if (s.Name.Length == 0 || s.IsUndefined)
                continue;
            if (view == ModuleSymbolView.Core && !IsCoreSymbol(s, percpu))
                continue;
            var type = ElfType(s, percpu);
            // s_show: module symbols are upper-case when exported, lower-case otherwise.
            type = exported.Contains(s.Name) ? char.ToUpperInvariant(type) : char.ToLowerInvariant(type);
            result.Add(new KernelSymbol(s.Name, type, s.Value, name)
            {
                Section = s.Section?.Name,
                Size = s.Size,
                Kind = s.Type switch
                {
                    STT_NOTYPE => SymbolKind.NoType,
                    STT_OBJECT => SymbolKind.Object,
                    STT_FUNC => SymbolKind.Function,
                    STT_SECTION => SymbolKind.Section,
                    STT_FILE => SymbolKind.File,
                    _ => SymbolKind.Other,
                },
            });
        }
        return new ModuleSymbols(name, result);
    }

    /// <summary>kernel/module/kallsyms.c <c>is_core_symbol</c> with CONFIG_KALLSYMS_ALL: defined, named,
    /// in an allocated section that is not <c>.init*</c>, or in the per-cpu section.</summary>
    private static bool IsCoreSymbol(ElfSymbol s, ElfSection? percpu)
    {
        if (s.Section is not { } section)
            return false;
        if (ReferenceEquals(section, percpu))
            return true;
        // The loader clears SHF_ALLOC on .modinfo and __versions (rewrite_section_headers), and lays
        // .init* out in the init region, which sh_entsize marks with INIT_OFFSET_MASK.
        if (!section.IsAlloc || section.Name is ".modinfo" or "__versions")
            return false;
        return !section.Name.StartsWith(".init", StringComparison.Ordinal);
    }

    /// <summary>kernel/module/kallsyms.c <c>elf_type</c> ("as per nm"); x86 has no ARCH_SHF_SMALL.</summary>
    private static char ElfType(ElfSymbol s, ElfSection? percpu)
    {
        if (s.Bind == STB_WEAK)
            return s.Type == STT_OBJECT ? 'v' : 'w';
        if (s.IsUndefined)
            return 'U';
        if (s.SpecialIndex == SHN_ABS || (percpu is not null && ReferenceEquals(s.Section, percpu)))
            return 'a';
        if (s.Section is not { } section)
            return '?';
        if (section.IsExecutable)
            return 't';
        var alloc = section.IsAlloc && section.Name is not (".modinfo" or "__versions");
        if (alloc && section.Type != SHT_NOBITS)
            return (section.Flags & SHF_WRITE) == 0 ? 'r' : 'd';
        if (section.Type == SHT_NOBITS)
            return 'b';
        if (section.Name.StartsWith(".debug", StringComparison.Ordinal))
            return 'n';
        return '?';
    }
}
