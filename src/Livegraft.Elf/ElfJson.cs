using System.Text.Json;

namespace Livegraft.Elf;

/// <summary>The <c>--json</c> document of an ELF file (the Core JSON conventions).</summary>
public static class ElfJson
{
    /// <summary>Sections, symbols and relocations of <paramref name="elf"/>, as <c>livegraft elf --json</c> prints them.</summary>
    public static void Write(Utf8JsonWriter w, ElfFile elf)
    {
        var index = new Dictionary<ElfSection, int>(ReferenceEqualityComparer.Instance);
        for (var i = 0; i < elf.Sections.Count; i++)
            index[elf.Sections[i]] = i;
        w.WriteStartObject();
        w.WriteBoolean("ok", true);
        if (elf.FileName is not null)
            w.WriteString("file", elf.FileName);
        w.WriteString("type", ElfPrinter.TypeName(elf.Header.Type));
        w.WriteNumber("machine", elf.Header.Machine);
        w.WriteStartArray("sections");
        for (var i = 0; i < elf.Sections.Count; i++)
        {
            var s = elf.Sections[i];
            w.WriteStartObject();
            w.WriteNumber("index", i);
            w.WriteString("name", s.Name);
            w.WriteString("type", ElfPrinter.SectionTypeName(s.Type));
            w.WriteString("flags", ElfPrinter.FlagLetters(s.Flags));
            w.WriteNumber("address", s.Address);
            w.WriteNumber("offset", s.Offset);
            w.WriteNumber("size", s.Size);
            w.WriteNumber("alignment", s.Alignment);
            if (s.Link is not null && index.TryGetValue(s.Link, out var link))
                w.WriteNumber("link", link);
            if (s.InfoSection is not null && index.TryGetValue(s.InfoSection, out var info))
                w.WriteNumber("info", info);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("symbols");
        foreach (var t in elf.Sections.OfType<ElfSymbolTable>())
            for (var i = 0; i < t.Symbols.Count; i++)
            {
                var s = t.Symbols[i];
                w.WriteStartObject();
                w.WriteString("table", t.Name);
                w.WriteNumber("index", i);
                w.WriteString("name", s.ToString());
                w.WriteNumber("value", s.Value);
                w.WriteNumber("size", s.Size);
                w.WriteString("type", ElfPrinter.SymbolTypeName(s.Type));
                w.WriteString("bind", ElfPrinter.BindName(s.Bind));
                if (s.Section is not null)
                    w.WriteString("section", s.Section.Name);
                else
                    w.WriteString("section", ElfPrinter.SpecialIndexName(s.SpecialIndex));
                w.WriteEndObject();
            }
        w.WriteEndArray();
        w.WriteStartArray("relocations");
        foreach (var r in elf.Sections.OfType<ElfRelocationSection>())
            foreach (var e in r.Relocations)
            {
                w.WriteStartObject();
                w.WriteString("section", r.Name);
                w.WriteString("target", r.Target?.Name ?? "");
                w.WriteNumber("offset", e.Offset);
                w.WriteString("type", ElfPrinter.RelocationTypeName(elf.Header.Machine, e.Type));
                w.WriteString("symbol", e.Symbol?.ToString() ?? "");
                w.WriteNumber("addend", e.Addend);
                w.WriteEndObject();
            }
        w.WriteEndArray();
        w.WriteEndObject();
    }
}
