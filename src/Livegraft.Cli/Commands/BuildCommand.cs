using System.CommandLine;
using Livegraft.Kernel;
using Livegraft.Kernel.Build;
using Livegraft.Kernel.Updates;

namespace Livegraft.Cli.Commands;

/// <summary><c>livegraft build FIX.patch</c>: a kernel fix in, a livepatch module out.</summary>
internal static class BuildCommand
{
    public static Command Create()
    {
        var patch = new Argument<FileInfo?>("FIX.patch") { Description = "Unified diff against the kernel source (-p1 paths, as git diff writes).", Arity = ArgumentArity.ZeroOrOne };
        var update = new Option<string?>("--update") { Description = "Build the difference between the target's source and this update's (a Debian package=version, a tarball or a directory) instead of a patch file." };
        var partial = new Option<bool>("--partial") { Description = "With --update: build what can be live patched and say what is left out, instead of all or nothing." };
        var kernel = new Option<string>("--kernel") { Description = "Target kernel release.", DefaultValueFactory = _ => KernelTarget.ReferenceRelease };
        var symbols = new Option<FileInfo?>("--symbols") { Description = "vmlinux, bzImage or /proc/kallsyms dump of the target (default: the target's image)." };
        var name = new Option<string?>("--name") { Description = "Patch name (module livepatch-NAME); default: the patch file's name." };
        var noReplace = new Option<bool>("--no-replace") { Description = "Build a non-cumulative patch that stacks on earlier ones instead of replacing them." };
        var output = new Option<FileInfo?>("--output", "-o") { Description = "Module path (default: ./livepatch-NAME.ko)." };
        var skipVerification = new Option<bool>("--skip-verification") { Description = "Do not check the target's code at build time (unsafe; the module still checks at load time)." };
        var source = new Option<string?>("--source") { Description = "Kernel source to build from: a tarball, a directory, or a Debian package=version (default: the release's linux-source package)." };
        var config = new Option<FileInfo?>("--config") { Description = "Kernel config to prepare the tree with (default: the release's headers package config)." };
        var onTopOf = new Option<FileInfo[]>("--on-top-of") { Description = "An earlier patch module (repeatable) this one is cumulative over: its fixes are built in, and loading this one as an atomic replace keeps them." };
        var fixes = new Option<string?>("--fixes") { Description = "What the patch fixes (CVE ids, notes), recorded in the module." };
        var kcflags = new Option<string?>("--kcflags") { Description = "Extra compiler flags the target kernel was built with (KCFLAGS); verification checks they match." };
        var fuzz = new Option<int>("--fuzz") { Description = "Let a hunk ignore up to N context lines at each end, as patch -F N (default 0: exact); each hunk that needed it is reported." };
        fuzz.Validators.Add(r => { if (r.GetValueOrDefault<int>() is < 0 or > 3) r.AddError("--fuzz must be 0 to 3"); });
        var json = Cli.JsonOption();
        var command = new Command("build", "Build a livepatch module from a kernel fix or a distro update.")
        {
            patch, update, partial, kernel, source, config, kcflags, symbols, name, noReplace, output, skipVerification, onTopOf, fixes, fuzz, json,
        };
        AddSourceValidator(command, patch, update, partial);
        command.SetAction(parse => Cli.Guard(parse.GetValue(json), () =>
        {
            var progress = Progress.ForStderr();
            if (parse.GetValue(update) is { } spec)
            {
                var updateReport = UpdateBuilder.Build(new UpdateRequest(spec, new KernelTarget(parse.GetValue(kernel)!))
                {
                    Partial = parse.GetValue(partial),
                    Name = parse.GetValue(name),
                    OutputPath = parse.GetValue(output)?.FullName,
                    Replace = !parse.GetValue(noReplace),
                    Fixes = parse.GetValue(fixes),
                    OnTopOf = [.. (parse.GetValue(onTopOf) ?? []).Select(f => f.FullName)],
                }, progress.Report);
                progress.Done();
                if (parse.GetValue(json))
                    Cli.WriteJson(updateReport.WriteJson);
                else
                    WriteText(updateReport);
                return (int)updateReport.ExitCode;
            }
            var target = new KernelTarget(parse.GetValue(kernel)!)
            {
                SourceOverride = parse.GetValue(source) is { } sourceSpec ? SourceSpec.Resolve(sourceSpec, progress.Report) : null,
                ConfigOverride = parse.GetValue(config)?.FullName,
            };
            var request = new BuildRequest(parse.GetValue(patch)!.FullName, target)
            {
                ExtraCflags = parse.GetValue(kcflags),
                Name = parse.GetValue(name),
                OutputPath = parse.GetValue(output)?.FullName,
                Replace = !parse.GetValue(noReplace),
                SymbolsPath = parse.GetValue(symbols)?.FullName,
                SkipVerification = parse.GetValue(skipVerification),
                OnTopOf = [.. (parse.GetValue(onTopOf) ?? []).Select(f => f.FullName)],
                Fixes = parse.GetValue(fixes),
                Fuzz = parse.GetValue(fuzz),
            };
            var report = PatchBuilder.Build(request, progress.Report);
            progress.Done();
            if (parse.GetValue(json))
                Cli.WriteJson(w => BuildJson.Write(w, request, report));
            else
            {
                foreach (var o in report.Objects)
                    foreach (var f in o.Functions)
                        Console.WriteLine($"{o.Name}: {f.OldName}{(f.Sympos > 0 ? "," + f.Sympos : "")}");
                Console.WriteLine($"{report.ModulePath} ({report.KlpRelocations} klp relocations, sha256 {report.Sha256})");
                Console.Error.WriteLine("livegraft: " + string.Join(", ", report.Timings.Select(t => $"{t.Stage} {t.Time.TotalSeconds:0.0}s")));
            }
            return 0;
        }));
        return command;
    }

    /// <summary>Either a patch file or <c>--update</c>; <c>--partial</c> only with <c>--update</c>.</summary>
    internal static void AddSourceValidator(Command command, Argument<FileInfo?> patch, Option<string?> update, Option<bool> partial) =>
        command.Validators.Add(result =>
        {
            var hasPatch = result.GetResult(patch) is { Tokens.Count: > 0 };
            var hasUpdate = result.GetResult(update) is not null;
            if (hasPatch == hasUpdate)
                result.AddError("give either FIX.patch or --update, not both");
            else if (result.GetResult(partial) is not null && !hasUpdate)
                result.AddError("--partial goes with --update");
        });

    /// <summary>The text report of an update build.</summary>
    internal static void WriteText(UpdateReport r)
    {
        foreach (var d in r.Diagnostics)
            Console.Error.WriteLine(d);
        foreach (var f in r.Files.Where(f => f.Outcome != FileOutcome.Ignored))
            Console.WriteLine($"{Json.Kebab(f.Outcome.ToString()),-10} {f.Path}{(f.Reason is null ? "" : $"  ({f.Reason})")}");
        var ignored = r.Files.Count(f => f.Outcome == FileOutcome.Ignored);
        if (ignored > 0)
            Console.WriteLine($"ignored    {ignored} file(s): packaging, documentation, other architectures, build files");
        foreach (var f in r.Functions)
            Console.WriteLine($"{(f.Patched ? "patched" : "refused"),-10} {f.Object}: {f.Name} ({f.Unit})");
        if (r.NeedReboot.Any())
            Console.WriteLine($"needs the new kernel (livegraft reboot --kexec): {string.Join(", ", r.NeedReboot.Select(f => f.Path))}");
        if (r.Build is not null)
            Console.WriteLine($"{r.Build.ModulePath} ({r.Build.KlpRelocations} klp relocations, sha256 {r.Build.Sha256})");
    }
}
