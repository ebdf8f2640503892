using System.CommandLine;
using System.Text.Json;
using Livegraft.Elf;

namespace Livegraft.Cli.Commands;

/// <summary><c>livegraft elf FILE [--json]</c>: a readelf-style dump of an ELF64 file.</summary>
internal static class ElfCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "ELF64 object, module or vmlinux to print." };
        var json = Cli.JsonOption();
        var command = new Command("elf", "Print an ELF file's sections, relocations and symbols, like readelf.");
        command.Arguments.Add(file);
        command.Options.Add(json);
        command.SetAction(parse =>
        {
            var asJson = parse.GetValue(json);
            return Cli.Guard(asJson, () =>
            {
                var elf = ElfFile.Read(parse.GetValue(file)!);
                if (asJson)
                    Cli.WriteJson(w => WriteJson(w, elf));
                else
                    ElfPrinter.Print(elf, Console.Out);
                return (int)ExitCode.Success;
            });
        });
        return command;
    }

    private static void WriteJson(Utf8JsonWriter w, ElfFile elf)
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
