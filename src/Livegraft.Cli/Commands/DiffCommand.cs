using System.CommandLine;
using System.Text.Json;
using Livegraft.Diff;
using Livegraft.Elf;
using Livegraft.Kernel.Parent;
using Livegraft.Symbols;

namespace Livegraft.Cli.Commands;

/// <summary><c>livegraft diff ORIG.o PATCHED.o --parent P -o OUT.o</c>: the object differ.</summary>
internal static class DiffCommand
{
    public static Command Create()
    {
        var orig = new Argument<FileInfo>("ORIG.o") { Description = "The unit compiled before the fix." };
        var patched = new Argument<FileInfo>("PATCHED.o") { Description = "The same unit compiled after the fix." };
        var parent = new Option<FileInfo>("--parent") { Description = "Symbols of the object being patched: vmlinux or bzImage, module.ko, or a /proc/kallsyms dump.", Required = true };
        var parentName = new Option<string?>("--parent-name") { Description = "klp object name: vmlinux (default) or a module name (with a kallsyms dump)." };
        var symvers = new Option<FileInfo?>("--symvers") { Description = "Module.symvers of the target kernel (which symbols are exported)." };
        var output = new Option<FileInfo?>("--output", "-o") { Description = "Where to write the output object." };
        var json = Cli.JsonOption();
        var command = new Command("diff", "Compare a unit compiled before and after a fix and emit the livepatch object.")
        {
            orig, patched, parent, parentName, symvers, output, json,
        };
        command.SetAction(parse => Cli.Guard(parse.GetValue(json), () =>
        {
            var origFile = parse.GetValue(orig)!;
            var patchedFile = parse.GetValue(patched)!;
            var parentFile = parse.GetValue(parent)!;
            var table = SymbolTable.Open(parentFile.FullName, parse.GetValue(parentName) is { } n && n != "vmlinux" ? n : null);
            var exports = parse.GetValue(symvers) is { } sv ? ModuleSymvers.Read(sv.FullName) : null;
            var options = new DiffOptions
            {
                Parent = new ParentSymbols(table, exports),
                OrigName = origFile.FullName,
                PatchedName = patchedFile.FullName,
            };
            var result = Differ.Run(ElfFile.Read(origFile.FullName), ElfFile.Read(patchedFile.FullName), options);
            var code = result.Refusals.Count > 0 ? ExitCode.InvalidInput : result.NothingChanged ? ExitCode.HostFailure : ExitCode.Success;
            var outPath = parse.GetValue(output)?.FullName;
            if (code == ExitCode.Success && outPath is not null)
                result.Output!.Write(outPath);
            if (parse.GetValue(json))
                Cli.WriteJson(w => WriteJson(w, result, code, outPath));
            else
                WriteText(result, code, outPath);
            return (int)code;
        }));
        return command;
    }

    private static void WriteText(DiffResult r, ExitCode code, string? outPath)
    {
        foreach (var d in r.Notes)
            Console.Error.WriteLine(d.ToString());
        foreach (var d in r.Refusals)
            Console.Error.WriteLine(d.ToString());
        Console.WriteLine($"object: {r.ObjectName}");
        foreach (var f in r.ChangedFunctions)
            Console.WriteLine($"changed: {f}");
        foreach (var f in r.NewFunctions)
            Console.WriteLine($"new: {f}");
        foreach (var o in r.NewObjects)
            Console.WriteLine($"new data: {o}");
        foreach (var i in r.Included)
            Console.WriteLine($"included: {i}");
        foreach (var f in r.Functions)
            Console.WriteLine($"klp_func: {f.OldName},{f.Sympos} -> {f.NewSymbol}");
        foreach (var (kind, list) in r.Callbacks)
            foreach (var c in list)
                Console.WriteLine($"callback {kind}: {c}");
        foreach (var k in r.KlpRelocations)
            Console.WriteLine($"klp reloc: {k.Section}+0x{k.Offset:x} {k.SymbolName}{(k.Addend >= 0 ? "+" : "-")}0x{Math.Abs(k.Addend):x}");
        if (code == ExitCode.HostFailure)
            Console.Error.WriteLine("livegraft: nothing functional changed; no output written");
        else if (code == ExitCode.Success && outPath is not null)
            Console.Error.WriteLine($"livegraft: wrote {outPath}");
    }

    private static void WriteJson(Utf8JsonWriter w, DiffResult r, ExitCode code, string? outPath)
    {
        w.WriteStartObject();
        w.WriteBoolean("ok", code == ExitCode.Success);
        w.WriteNumber("exitCode", (int)code);
        w.WriteString("object", r.ObjectName);
        WriteList(w, "changed", r.ChangedFunctions);
        WriteList(w, "new", r.NewFunctions);
        WriteList(w, "newData", r.NewObjects);
        WriteList(w, "included", r.Included);
        w.WriteStartArray("functions");
        foreach (var f in r.Functions)
        {
            w.WriteStartObject();
            w.WriteString("oldName", f.OldName);
            w.WriteNumber("sympos", f.Sympos);
            w.WriteString("newSymbol", f.NewSymbol);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartObject("callbacks");
        foreach (var (kind, list) in r.Callbacks)
            WriteList(w, kind, list);
        w.WriteEndObject();
        w.WriteStartArray("klpRelocations");
        foreach (var k in r.KlpRelocations)
        {
            w.WriteStartObject();
            w.WriteString("section", k.Section);
            w.WriteNumber("offset", k.Offset);
            w.WriteNumber("type", k.Type);
            w.WriteString("symbol", k.SymbolName);
            w.WriteNumber("addend", k.Addend);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("refusals");
        foreach (var d in r.Refusals)
            d.WriteJson(w);
        w.WriteEndArray();
        w.WriteStartArray("notes");
        foreach (var d in r.Notes)
            d.WriteJson(w);
        w.WriteEndArray();
        if (outPath is not null && code == ExitCode.Success)
            w.WriteString("output", outPath);
        w.WriteEndObject();
    }

    private static void WriteList(Utf8JsonWriter w, string name, IEnumerable<string> items)
    {
        w.WriteStartArray(name);
        foreach (var i in items)
            w.WriteStringValue(i);
        w.WriteEndArray();
    }
}
