using System.Text;

namespace Livegraft.Kernel.Symbols;

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
    public static ModuleSymbols Read(string path, ModuleSymbolView view = ModuleSymbolView.Core)
    {
        byte[] data;
        try
        {
            data = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LivegraftException(ExitCode.InvalidInput, SymbolErrors.BadElf, $"cannot read module: {e.Message}", path);
        }
        return Parse(data, path, view);
    }

    /// <summary>Reads a module's symbols from its bytes.</summary>
    public static ModuleSymbols Parse(byte[] data, string? file = null, ModuleSymbolView view = ModuleSymbolView.Core)
    {
        var elf = KernelElf.Parse(data, file);
        var symtab = elf.ReadSymbolTable()
            ?? throw SymbolErrors.Invalid(SymbolErrors.NoSymbolTable, "module has no .symtab (stripped?)", file);
        var name = ModuleName(elf, file);
        var sections = elf.Sections;
        var percpu = sections.FirstOrDefault(s => s.Name == ".data..percpu").Index;
        var exported = new HashSet<string>(StringComparer.Ordinal);
        foreach (var s in symtab)
        {
            // include/linux/export.h labels every export's struct kernel_symbol "__ksymtab_<name>". Only
            // those in __ksymtab count: is_exported() searches mod->syms, not mod->gpl_syms, so
            // /proc/kallsyms shows EXPORT_SYMBOL_GPL symbols in lower case.
            if (s.Name.StartsWith("__ksymtab_", StringComparison.Ordinal) && s.SectionIndex < (uint)sections.Count
                && sections[(int)s.SectionIndex].Name == "__ksymtab")
                exported.Add(s.Name["__ksymtab_".Length..]);
        }
        var result = new List<KernelSymbol>(symtab.Length);
        foreach (var s in symtab)
        {
            if (s.Index == 0 || s.Name.Length == 0 || s.SectionIndex == KernelElf.SHN_UNDEF)
                continue;
            if (view == ModuleSymbolView.Core && !IsCoreSymbol(s, sections, percpu))
                continue;
            var type = ElfType(s, sections, percpu);
            // s_show: module symbols are upper-case when exported, lower-case otherwise.
            type = exported.Contains(s.Name) ? char.ToUpperInvariant(type) : char.ToLowerInvariant(type);
            result.Add(new KernelSymbol(s.Name, type, s.Value, name)
            {
                Section = s.SectionIndex < (uint)sections.Count ? sections[(int)s.SectionIndex].Name : null,
                Size = s.Size,
                Kind = s.Type switch
                {
                    KernelElf.STT_NOTYPE => SymbolKind.NoType,
                    KernelElf.STT_OBJECT => SymbolKind.Object,
                    KernelElf.STT_FUNC => SymbolKind.Function,
                    KernelElf.STT_SECTION => SymbolKind.Section,
                    KernelElf.STT_FILE => SymbolKind.File,
                    _ => SymbolKind.Other,
                },
            });
        }
        return new ModuleSymbols(name, result);
    }

    /// <summary>kernel/module/kallsyms.c <c>is_core_symbol</c> with CONFIG_KALLSYMS_ALL: defined, named,
    /// in an allocated section that is not <c>.init*</c>, or in the per-cpu section.</summary>
    private static bool IsCoreSymbol(in ElfSymbolEntry s, IReadOnlyList<ElfSectionHeader> sections, int percpu)
    {
        if (s.SectionIndex >= (uint)sections.Count)
            return false;
        if (percpu != 0 && s.SectionIndex == percpu)
            return true;
        var section = sections[(int)s.SectionIndex];
        // The loader clears SHF_ALLOC on .modinfo and __versions (rewrite_section_headers), and lays
        // .init* out in the init region, which sh_entsize marks with INIT_OFFSET_MASK.
        if ((section.Flags & KernelElf.SHF_ALLOC) == 0 || section.Name is ".modinfo" or "__versions")
            return false;
        return !section.Name.StartsWith(".init", StringComparison.Ordinal);
    }

    /// <summary>kernel/module/kallsyms.c <c>elf_type</c> ("as per nm"); x86 has no ARCH_SHF_SMALL.</summary>
    private static char ElfType(in ElfSymbolEntry s, IReadOnlyList<ElfSectionHeader> sections, int percpu)
    {
        if (s.Bind == KernelElf.STB_WEAK)
            return s.Type == KernelElf.STT_OBJECT ? 'v' : 'w';
        if (s.SectionIndex == KernelElf.SHN_UNDEF)
            return 'U';
        if (s.SectionIndex == KernelElf.SHN_ABS || (percpu != 0 && s.SectionIndex == percpu))
            return 'a';
        if (s.SectionIndex >= KernelElf.SHN_LORESERVE || s.SectionIndex >= (uint)sections.Count)
            return '?';
        var section = sections[(int)s.SectionIndex];
        if ((section.Flags & KernelElf.SHF_EXECINSTR) != 0)
            return 't';
        var alloc = (section.Flags & KernelElf.SHF_ALLOC) != 0 && section.Name is not (".modinfo" or "__versions");
        if (alloc && section.Type != KernelElf.SHT_NOBITS)
            return (section.Flags & KernelElf.SHF_WRITE) == 0 ? 'r' : 'd';
        if (section.Type == KernelElf.SHT_NOBITS)
            return 'b';
        if (section.Name.StartsWith(".debug", StringComparison.Ordinal))
            return 'n';
        return '?';
    }

    private static string ModuleName(KernelElf elf, string? file)
    {
        foreach (var section in elf.Sections)
        {
            if (section.Name != ".modinfo")
                continue;
            var data = elf.SectionData(section);
            foreach (var range in data.Split((byte)0))
            {
                var entry = data[range];
                if (entry.StartsWith("name="u8))
                    return Encoding.UTF8.GetString(entry[5..]);
            }
        }
        var stem = file is null ? "module" : Path.GetFileName(file);
        if (stem.EndsWith(".ko", StringComparison.Ordinal))
            stem = stem[..^3];
        return stem.Replace('-', '_');
    }
}
