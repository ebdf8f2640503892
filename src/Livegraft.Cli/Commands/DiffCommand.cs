using System.CommandLine;
using Livegraft.Diff;
using Livegraft.Kernel;

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
        var kernel = new Option<string>("--kernel") { Description = "Target kernel release whose special-section layouts apply (read from its prepared tree).", DefaultValueFactory = _ => KernelTarget.ReferenceRelease };
        var sizes = new Option<string?>("--sizes") { Description = "Special-section sizes by hand, e.g. alt=14,alt-len=12,bug=12 (names: " + string.Join(", ", SizesOverride.Names.Select(n => n.Name)) + "); all of them: no tree is read." };
        var json = Cli.JsonOption();
        var command = new Command("diff", "Compare a unit compiled before and after a fix and emit the livepatch object.")
        {
            orig, patched, parent, parentName, symvers, output, kernel, sizes, json,
        };
        command.SetAction(parse => Cli.Guard(parse.GetValue(json), () =>
        {
            var progress = Progress.ForStderr();
            var report = ObjectDiff.Run(new ObjectDiffRequest(parse.GetValue(orig)!.FullName, parse.GetValue(patched)!.FullName, parse.GetValue(parent)!.FullName)
            {
                ParentName = parse.GetValue(parentName),
                SymversPath = parse.GetValue(symvers)?.FullName,
                OutputPath = parse.GetValue(output)?.FullName,
                Kernel = parse.GetValue(kernel)!,
                Sizes = parse.GetValue(sizes),
            }, progress.Report);
            progress.Done();
            if (parse.GetValue(json))
                Cli.WriteJson(w => DiffJson.Write(w, report.Result, report.ExitCode, report.OutputPath));
            else
                WriteText(report);
            return (int)report.ExitCode;
        }));
        return command;
    }

    private static void WriteText(ObjectDiffReport report)
    {
        var r = report.Result;
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
        foreach (var ns in r.ImportNamespaces)
            Console.WriteLine($"import namespace: {ns}");
        foreach (var (kind, list) in r.Callbacks)
            foreach (var c in list)
                Console.WriteLine($"callback {kind}: {c}");
        foreach (var k in r.KlpRelocations)
            Console.WriteLine($"klp reloc: {k.Section}+0x{k.Offset:x} {k.SymbolName}{(k.Addend >= 0 ? "+" : "-")}0x{Math.Abs(k.Addend):x}");
        if (report.OutputPath is not null)
            Console.Error.WriteLine($"livegraft: wrote {report.OutputPath}");
    }
}
