using Livegraft.Elf;
using static Livegraft.Elf.ElfNative;

namespace Livegraft.Diff.Tests;

/// <summary>The post-link conversion of the klp relocation table into <c>.klp.rela</c> sections.</summary>
public sealed class KlpPostLinkTests
{
    [Fact]
    public void EntriesOfTwoObjectsInOneSectionGetASectionPerObject()
    {
        // The verify table's address array holds one entry per verified function of every object:
        // the kernel applies a .klp.rela.<obj>.* section when <obj> loads, so garp's section must
        // not carry mrp's symbols (6.1 then refuses to load garp: mrp is not there to resolve them).
        var elf = new ElfFile { FileName = "two-objects.o" };
        var symtab = elf.SymbolTable!;
        var sectionSymbols = new Dictionary<ElfSection, ElfSymbol>(ReferenceEqualityComparer.Instance);
        var relas = new Dictionary<ElfSection, ElfRelocationSection>(ReferenceEqualityComparer.Instance);
        ElfSymbol SectionSymbol(ElfSection s)
        {
            if (!sectionSymbols.TryGetValue(s, out var sym))
            {
                sectionSymbols[s] = sym = new ElfSymbol { Type = STT_SECTION, Bind = STB_LOCAL, Section = s };
                symtab.Symbols.Add(sym);
            }
            return sym;
        }
        ElfRelocationSection RelaFor(ElfSection s)
        {
            if (!relas.TryGetValue(s, out var r))
                relas[s] = r = elf.AddSection(new ElfRelocationSection(".rela" + s.Name, s, symtab));
            return r;
        }
        var data = elf.AddSection(new ElfSection(".data..livegraft_verify", SHT_PROGBITS) { Flags = SHF_ALLOC | SHF_WRITE, Alignment = 8, Data = new byte[32] });
        KlpRelocationTable.Write(elf, [
            new KlpTableEntry("garp", data, 0, R_X86_64_64, ".klp.sym.garp.garp_pdu_rcv,0", 0),
            new KlpTableEntry("garp", data, 8, R_X86_64_64, ".klp.sym.garp.garp_attr_event,0", 0),
            new KlpTableEntry("mrp", data, 16, R_X86_64_64, ".klp.sym.mrp.mrp_rcv,0", 0),
            new KlpTableEntry("mrp", data, 24, R_X86_64_64, ".klp.sym.mrp.mrp_pdu_parse_vecattr_event,0", 0),
        ], SectionSymbol, RelaFor);
        var path = Path.Combine(Path.GetTempPath(), $"livegraft-klp-{Environment.ProcessId}-{Random.Shared.Next():x8}.o");
        try
        {
            elf.Write(path);
            var ko = ElfFile.Read(path);
            Assert.Equal(4, KlpPostLink.Process(ko));
            var klp = ko.Sections.OfType<ElfRelocationSection>().Where(s => s.Name.StartsWith(".klp.rela.", StringComparison.Ordinal))
                .ToDictionary(s => s.Name, s => s.Relocations.Select(r => (r.Offset, r.Symbol!.Name)).Order().ToList());
            Assert.Equal(2, klp.Count);
            Assert.Equal([(0UL, ".klp.sym.garp.garp_pdu_rcv,0"), (8UL, ".klp.sym.garp.garp_attr_event,0")], klp[".klp.rela.garp..data..livegraft_verify"]);
            Assert.Equal([(16UL, ".klp.sym.mrp.mrp_rcv,0"), (24UL, ".klp.sym.mrp.mrp_pdu_parse_vecattr_event,0")], klp[".klp.rela.mrp..data..livegraft_verify"]);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
