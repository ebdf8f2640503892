using System.CommandLine;
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
                    Cli.WriteJson(w => ElfJson.Write(w, elf));
                else
                    ElfPrinter.Print(elf, Console.Out);
                return (int)ExitCode.Success;
            });
        });
        return command;
    }
}
