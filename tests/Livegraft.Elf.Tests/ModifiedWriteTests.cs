using static Livegraft.Elf.ElfNative;

namespace Livegraft.Elf.Tests;

/// <summary>Edited models write files that readelf, ld -r and LibObjectFile accept.</summary>
public class ModifiedWriteTests
{
    /// <summary>A small object with function sections and debug info; like kernel objects it has no
    /// .eh_frame (removing a function would otherwise also mean removing its FDE).</summary>
    internal const string FunctionsSource = """
        int counter;
        static const char message[] = "livegraft";

        __attribute__((noinline)) int helper(int x) { return x * 3 + counter; }
        __attribute__((noinline)) int unused_function(int x) { return helper(x) + message[x & 7]; }
        int entry(int x) { counter++; return helper(x) + 1; }
        """;

    internal static string FunctionsObject() =>
        Fixtures.CompileC(FunctionsSource, "functions.c", "-O2", "-g", "-ffunction-sections", "-fdata-sections", "-fno-asynchronous-unwind-tables");

    /// <summary>Writes the model, then checks it with readelf, ld -r, LibObjectFile and our own reader.</summary>
    internal static ElfFile WriteAndCheck(ElfFile elf, string name)
    {
        var bytes = elf.ToArray();
        var path = Fixtures.WriteTemp(name, bytes);
        Fixtures.AssertReadelfClean(path);
        Fixtures.AssertLinks(path);
        Fixtures.AssertLibObjectFileReads(bytes, path);
        var back = ElfFile.Read(bytes, path);
        Fixtures.DecodeAllRelocations(back);
        // Writing what we wrote is stable.
        Assert.Equal(bytes, ElfFile.Read(bytes, path).ToArray());
        return back;
    }

    /// <summary>Adds .livegraft.test (data), a global symbol in it, and .rela.livegraft.test with
    /// relocations against the new symbol and an existing undefined one.</summary>
    internal static void AddSectionSymbolAndRelocation(ElfFile elf)
    {
        var symtab = elf.SymbolTable!;
        var data = elf.AddSection(new ElfSection(".livegraft.test", SHT_PROGBITS)
        {
            Flags = SHF_ALLOC | SHF_WRITE,
            Alignment = 8,
            Data = new byte[24],
        });
        var symbol = new ElfSymbol { Name = "livegraft_test_object", Section = data, Size = 24, Type = STT_OBJECT, Bind = STB_GLOBAL };
        symtab.Symbols.Add(symbol);
        var undefined = symtab.Symbols.FirstOrDefault(s => s.IsUndefined && s.Name.Length > 0)
            ?? AddUndefined(symtab, "livegraft_test_external");
        var rela = elf.AddSection(new ElfRelocationSection(".rela.livegraft.test", data, symtab));
        rela.Relocations.Add(new ElfRelocation { Offset = 0, Type = R_X86_64_64, Symbol = symbol, Addend = 16 });
        rela.Relocations.Add(new ElfRelocation { Offset = 8, Type = R_X86_64_64, Symbol = undefined, Addend = 0 });
        rela.Relocations.Add(new ElfRelocation { Offset = 16, Type = R_X86_64_PC32, Symbol = undefined, Addend = -4 });
    }

    private static ElfSymbol AddUndefined(ElfSymbolTable symtab, string name)
    {
        var s = new ElfSymbol { Name = name, Bind = STB_GLOBAL, Type = STT_NOTYPE };
        symtab.Symbols.Add(s);
        return s;
    }

    /// <summary>Removes <paramref name="section"/>, the relocation sections that apply to it, the
    /// symbols defined in it and every relocation elsewhere that refers to those symbols.</summary>
    internal static void RemoveSection(ElfFile elf, ElfSection section)
    {
        var symtab = elf.SymbolTable!;
        var gone = symtab.Symbols.Where(s => ReferenceEquals(s.Section, section)).ToHashSet(ReferenceEqualityComparer.Instance);
        foreach (var r in elf.RelocationsFor(section).ToList())
            elf.Sections.Remove(r);
        foreach (var r in elf.Sections.OfType<ElfRelocationSection>())
            r.Relocations.RemoveAll(x => x.Symbol is not null && gone.Contains(x.Symbol));
        foreach (var g in elf.Sections.OfType<ElfGroupSection>())
            g.Members.Remove(section);
        symtab.Symbols.RemoveAll(s => gone.Contains(s));
        elf.Sections.Remove(section);
    }

    [Fact]
    public void KernelObjectWithAddedSectionSymbolAndRelocation()
    {
        var path = Fixtures.KernelObject("fs/proc/cmdline.o");
        var elf = ElfFile.Read(path);
        var sections = elf.Sections.Count;
        AddSectionSymbolAndRelocation(elf);
        var back = WriteAndCheck(elf, "cmdline-added.o");
        Assert.Equal(sections + 2, back.Sections.Count);
        var rela = (ElfRelocationSection)back.FindSection(".rela.livegraft.test")!;
        Assert.Same(back.FindSection(".livegraft.test"), rela.Target);
        Assert.Equal(3, rela.Relocations.Count);
        Assert.Equal(("livegraft_test_object", 16L), (rela.Relocations[0].Symbol!.Name, rela.Relocations[0].Addend));
        Assert.True(rela.Relocations[1].Symbol!.IsUndefined);
        Assert.Equal(-4L, rela.Relocations[2].Addend);
        Assert.Same(back.FindSection(".livegraft.test"), back.SymbolTable!.Find("livegraft_test_object")!.Section);
    }

    [Fact]
    public void RemovingAFunctionSectionKeepsTheObjectValid()
    {
        var elf = ElfFile.Read(FunctionsObject());
        var text = elf.FindSection(".text.unused_function")!;
        Assert.NotNull(text);
        Assert.NotEmpty(elf.RelocationsFor(text));
        RemoveSection(elf, text);
        AddSectionSymbolAndRelocation(elf);
        var back = WriteAndCheck(elf, "functions-removed.o");
        Assert.Null(back.FindSection(".text.unused_function"));
        Assert.Null(back.FindSection(".rela.text.unused_function"));
        Assert.Null(back.SymbolTable!.Find("unused_function"));
        Assert.Same(back.FindSection(".text.helper"), back.SymbolTable.Find("helper")!.Section);
        // entry's call to helper survived with its symbol.
        var entryRelocations = back.RelocationsFor(back.FindSection(".text.entry")!).Single().Relocations;
        Assert.Contains(entryRelocations, r => r.Symbol?.Name == "helper" && r.Type == R_X86_64_PLT32);
    }

    [Fact]
    public void ObjectBuiltFromScratch()
    {
        var elf = new ElfFile();
        var symtab = elf.SymbolTable!;
        // call external_function; ret
        var text = elf.AddSection(new ElfSection(".text", SHT_PROGBITS)
        {
            Flags = SHF_ALLOC | SHF_EXECINSTR,
            Alignment = 16,
            Data = new byte[] { 0xe8, 0, 0, 0, 0, 0xc3 },
        });
        elf.AddSection(new ElfSection(".note.GNU-stack", SHT_PROGBITS));
        symtab.Symbols.Add(new ElfSymbol { Name = "scratch.c", Type = STT_FILE, Bind = STB_LOCAL, SpecialIndex = SHN_ABS });
        // A global added before a local: the writer must put locals first (gABI).
        symtab.Symbols.Add(new ElfSymbol { Name = "scratch_function", Section = text, Size = 6, Type = STT_FUNC, Bind = STB_GLOBAL });
        symtab.Symbols.Add(new ElfSymbol { Section = text, Type = STT_SECTION, Bind = STB_LOCAL });
        var external = new ElfSymbol { Name = "external_function", Type = STT_NOTYPE, Bind = STB_GLOBAL };
        symtab.Symbols.Add(external);
        var rela = elf.AddSection(new ElfRelocationSection(".rela.text", text, symtab));
        rela.Relocations.Add(new ElfRelocation { Offset = 1, Type = R_X86_64_PLT32, Symbol = external, Addend = -4 });

        var back = WriteAndCheck(elf, "scratch.o");
        var t = back.SymbolTable!;
        Assert.Equal(3, (int)t.Info); // null, FILE, SECTION are local
        Assert.Same(back.FindSection(".text"), t.Find("scratch_function")!.Section);
        var r = ((ElfRelocationSection)back.FindSection(".rela.text")!).Relocations.Single();
        Assert.Equal(("external_function", R_X86_64_PLT32, -4L, 1UL), (r.Symbol!.Name, r.Type, r.Addend, r.Offset));
        Assert.True(r.Symbol.IsUndefined);

        var nm = Fixtures.Run("nm", [Fixtures.WriteTemp("scratch-nm.o", elf.ToArray())]);
        Assert.Contains("T scratch_function", nm.Stdout, StringComparison.Ordinal);
        Assert.Contains("U external_function", nm.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void WritingASymbolWhoseSectionWasRemovedIsRefused()
    {
        var elf = ElfFile.Read(FunctionsObject());
        elf.Sections.Remove(elf.FindSection(".text.helper")!);
        var e = Assert.Throws<LivegraftException>(() => elf.ToArray());
        Assert.Equal("LG0034", e.Diagnostics[0].Id);
    }
}
