using System.Diagnostics;
using System.Text;
using static Livegraft.Elf.ElfNative;

namespace Livegraft.Elf.Tests;

/// <summary>Extended section indices, groups, unwind tables, notes and compressed debug sections
/// survive a round trip and an edited write.</summary>
public class SpecialSectionTests
{
    private const int ManyFunctions = 70000;
    private readonly ITestOutputHelper _output;

    public SpecialSectionTests(ITestOutputHelper output) => _output = output;

    /// <summary>C source whose object has a COMDAT group, a note, an SHT_X86_64_UNWIND section
    /// (gas's <c>@unwind</c>; this gas emits .eh_frame as PROGBITS) and, with -g -gz, compressed debug info.</summary>
    internal const string SpecialSource = """
        asm(".section .text.comdat_function,\"axG\",@progbits,comdat_function,comdat\n"
            ".globl comdat_function\n.type comdat_function,@function\n"
            "comdat_function:\n call helper\n ret\n.size comdat_function,.-comdat_function\n"
            ".section .data.comdat_function,\"awG\",@progbits,comdat_function,comdat\n.quad comdat_function\n"
            ".section .livegraft_unwind,\"a\",@unwind\n.quad caller\n"
            ".section .note.livegraft,\"a\",@note\n.balign 4\n.long 4, 4, 1\n.asciz \"LGT\"\n.long 0x12345678\n"
            ".previous\n");

        int shared;
        int helper(int x) { return x + shared; }
        int caller(int x) { return helper(x) * 2; }
        """;

    internal static string SpecialObject() =>
        Fixtures.CompileC(SpecialSource, "special.c", "-O2", "-g", "-gz", "-ffunction-sections", "-fasynchronous-unwind-tables");

    private static string ManySectionsObject()
    {
        var source = new StringBuilder();
        for (var i = 0; i < ManyFunctions; i++)
            source.Append("int f").Append(i).Append("(void) { return ").Append(i).Append("; }\n");
        // A relocation from a low section to a function in a high one.
        source.Append("int call_last(void) { return f").Append(ManyFunctions - 1).Append("() + 1; }\n");
        return Fixtures.CompileC(source.ToString(), "many.c", "-O0", "-ffunction-sections", "-fno-asynchronous-unwind-tables");
    }

    [Fact]
    public void MoreThan65280SectionsRoundTripWithSymtabShndx()
    {
        var path = ManySectionsObject();
        var bytes = File.ReadAllBytes(path);
        var sw = Stopwatch.StartNew();
        var elf = ElfFile.Read(bytes, path);
        _output.WriteLine($"{elf.Sections.Count} sections read in {sw.ElapsedMilliseconds} ms");
        Assert.True(elf.Sections.Count > 0xff00 + 1000);
        Assert.Equal(0, bytes[60] | bytes[61]); // e_shnum escaped into section 0 (gABI)
        Assert.Contains(elf.Sections, s => s.Type == SHT_SYMTAB_SHNDX);

        var symtab = elf.SymbolTable!;
        var high = 0;
        foreach (var n in new[] { 0, 1, 30000, 65000, 65300, 69998, ManyFunctions - 1 })
        {
            var symbol = symtab.Find("f" + n)!;
            Assert.Equal(".text.f" + n, symbol.Section!.Name);
            Assert.Same(elf.Sections[symbol.Section.Index], symbol.Section);
            if (symbol.Section.Index >= SHN_LORESERVE)
                high++;
        }
        Assert.True(high >= 3);

        Assert.Null(RoundTripTests.RoundTrip(bytes, path));

        // An edited write: a new section and symbol at the very end, in the extended range.
        sw.Restart();
        var rela = elf.RelocationsFor(elf.FindSection(".text.call_last")!).Single();
        var last = elf.AddSection(new ElfSection(".text.livegraft_last", SHT_PROGBITS) { Flags = SHF_ALLOC | SHF_EXECINSTR, Data = new byte[] { 0xc3 } });
        symtab.Symbols.Add(new ElfSymbol { Name = "livegraft_last", Section = last, Size = 1, Type = STT_FUNC, Bind = STB_GLOBAL });
        var written = elf.ToArray();
        _output.WriteLine($"edited write in {sw.ElapsedMilliseconds} ms");
        var back = ElfFile.Read(written, "many-edited.o");
        Assert.Equal(elf.Sections.Count, back.Sections.Count);
        Assert.Equal(".text.livegraft_last", back.SymbolTable!.Find("livegraft_last")!.Section!.Name);
        Assert.Equal(".text.f" + (ManyFunctions - 1), back.SymbolTable.Find("f" + (ManyFunctions - 1))!.Section!.Name);
        var backRela = back.RelocationsFor(back.FindSection(".text.call_last")!).Single();
        Assert.Equal(rela.Relocations.Select(r => r.Symbol?.Name), backRela.Relocations.Select(r => r.Symbol?.Name));

        var file = Fixtures.WriteTemp("many-edited.o", written);
        var readelf = Fixtures.Run("readelf", ["-S", "-s", "-W", file]);
        Assert.True(readelf.ExitCode == 0 && readelf.Stderr.Length == 0, readelf.Stderr);
        Assert.Contains(".text.livegraft_last", readelf.Stdout, StringComparison.Ordinal);
        Fixtures.AssertLinks(file);
    }

    [Fact]
    public void GroupsUnwindNotesAndCompressedDebugRoundTrip()
    {
        var path = SpecialObject();
        var bytes = File.ReadAllBytes(path);
        var elf = ElfFile.Read(bytes, path);
        AssertSpecialSections(elf);
        Assert.Null(RoundTripTests.RoundTrip(bytes, path));
    }

    [Fact]
    public void GroupsUnwindNotesAndCompressedDebugSurviveAnEditedWrite()
    {
        var path = SpecialObject();
        var elf = ElfFile.Read(path);
        var before = elf.Sections.Where(s => s.Type is SHT_NOTE or SHT_X86_64_UNWIND || (s.Flags & SHF_COMPRESSED) != 0)
            .ToDictionary(s => s.Name, s => s.Data.ToArray());
        // A section inserted first moves every index; then add a section, a symbol and relocations.
        elf.Sections.Insert(1, new ElfSection(".livegraft.first", SHT_PROGBITS) { Data = new byte[] { 1, 2, 3 } });
        ModifiedWriteTests.AddSectionSymbolAndRelocation(elf);
        var back = ModifiedWriteTests.WriteAndCheck(elf, "special-edited.o");
        AssertSpecialSections(back);
        foreach (var (name, data) in before)
            Assert.True(data.AsSpan().SequenceEqual(back.FindSection(name)!.Data.Span), name);
        var readelf = Fixtures.Run("readelf", ["-n", "-g", "-W", Fixtures.WriteTemp("special-edited.o", elf.ToArray())]);
        Assert.Contains("COMDAT group section", readelf.Stdout, StringComparison.Ordinal);
        Assert.Contains("description data: 78 56 34 12", readelf.Stdout, StringComparison.Ordinal);
        Assert.Empty(readelf.Stderr);
    }

    private static void AssertSpecialSections(ElfFile elf)
    {
        var group = elf.Sections.OfType<ElfGroupSection>().Single(g => g.Signature?.Name == "comdat_function");
        Assert.Equal(GRP_COMDAT, group.GroupFlags);
        string[] expected = [".data.comdat_function", ".rela.data.comdat_function", ".rela.text.comdat_function", ".text.comdat_function"];
        Assert.Equal(expected, group.Members.Select(m => m.Name).Order(StringComparer.Ordinal));
        Assert.All(group.Members, m => Assert.True((m.Flags & SHF_GROUP) != 0, m.Name));

        var unwind = elf.FindSection(".livegraft_unwind")!;
        Assert.Equal(SHT_X86_64_UNWIND, unwind.Type);
        Assert.Equal("caller", elf.RelocationsFor(unwind).Single().Relocations.Single().Symbol!.Name);
        Assert.NotEmpty(elf.RelocationsFor(elf.FindSection(".eh_frame")!).Single().Relocations);

        var note = elf.FindSection(".note.livegraft")!;
        Assert.Equal(SHT_NOTE, note.Type);
        Assert.Equal(20, note.Data.Length);

        var compressed = elf.Sections.Where(s => (s.Flags & SHF_COMPRESSED) != 0).ToList();
        Assert.Contains(compressed, s => s.Name == ".debug_info");
        var debugInfoRelocations = elf.RelocationsFor(elf.FindSection(".debug_info")!).Single();
        Assert.NotEmpty(debugInfoRelocations.Relocations);
    }
}
