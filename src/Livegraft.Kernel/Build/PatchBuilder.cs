using System.Diagnostics;
using Livegraft.Diff;
using Livegraft.Elf;
using Livegraft.Kernel.Parent;
using Livegraft.Kernel.Patches;
using Livegraft.Symbols;
using Livegraft.Kernel.Units;
using Livegraft.Verify;

namespace Livegraft.Kernel.Build;

/// <summary>What <c>livegraft build</c> is asked to do.</summary>
public sealed record BuildRequest(string PatchPath, KernelTarget Target)
{
    /// <summary>Patch name; defaults to the patch file's name without extension.</summary>
    public string? Name { get; init; }
    /// <summary>Where to write the module; defaults to <c>livepatch-NAME.ko</c> in the current directory.</summary>
    public string? OutputPath { get; init; }
    /// <summary><c>klp_patch.replace</c> (atomic replace, the default).</summary>
    public bool Replace { get; init; } = true;
    /// <summary>A vmlinux / bzImage / kallsyms dump to take vmlinux symbols from instead of the target's image.</summary>
    public string? SymbolsPath { get; init; }
    /// <summary>Skips build-time run-pre verification (docs/verify.md; warned, LG0354). The module
    /// still carries its load-time check.</summary>
    public bool SkipVerification { get; init; }
    /// <summary>Compiler flags added to every unit compile (<c>KCFLAGS</c>), for a target kernel
    /// that was built with flags its config does not imply. Verification proves whether they match.</summary>
    public string? ExtraCflags { get; init; }
    /// <summary>Context lines a hunk may ignore at each end (<c>patch -F N</c>); 0 applies exactly.</summary>
    public int Fuzz { get; init; }
    /// <summary>Earlier patch modules this one is cumulative over: their source patches (kept in each
    /// module) are applied first, in order, and the module records that it supersedes them, so loading
    /// it as an atomic replace drops none of their fixes.</summary>
    public IReadOnlyList<string> OnTopOf { get; init; } = [];
    /// <summary>What the patch fixes (CVE ids, notes), recorded in the module.</summary>
    public string? Fixes { get; init; }
}

/// <summary>The diff of one unit, as the build report shows it.</summary>
public sealed record UnitReport(string Unit, string Parent, DiffResult Diff);

/// <summary>What <c>livegraft build</c> produced.</summary>
public sealed record BuildReport(string ModulePath, string ModuleName, string Sha256, IReadOnlyList<UnitReport> Units,
    IReadOnlyList<KlpObjectSpec> Objects, IReadOnlyList<(string Stage, TimeSpan Time)> Timings)
{
    /// <summary>Livepatch relocations in the module.</summary>
    public int KlpRelocations { get; init; }
    /// <summary>Build-time run-pre verification; null when skipped.</summary>
    public VerifyReport? Verification { get; init; }
    /// <summary>Functions the module checks before it is enabled (load-time verification).</summary>
    public int VerifiedAtLoad { get; init; }
    /// <summary>What the tree was prepared from: <c>package=version</c> (the release's own source)
    /// or the <c>--source</c> given.</summary>
    public string Source { get; init; } = "";
    /// <summary>Hunks that applied at an offset or with fuzz (LG0345, LG0346).</summary>
    public IReadOnlyList<Diagnostic> PatchNotes { get; init; } = [];
    /// <summary>The units each changed file reached, and notes on files that reach none.</summary>
    public AffectedUnitSet? Affected { get; init; }
}

/// <summary>The build compiled and diffed every unit, and the differ refused (or found nothing to
/// patch): the refusals, with every unit's diff and the units each changed file reached, so a caller
/// can say which file and function needs what (<c>build --update</c>).</summary>
public sealed class BuildRefusedException : LivegraftException
{
    /// <summary>Creates the exception.</summary>
    public BuildRefusedException(IReadOnlyList<Diagnostic> refusals, IReadOnlyList<UnitReport> units, AffectedUnitSet affected)
        : base(ExitCode.InvalidInput, [.. refusals])
    {
        Units = units;
        Affected = affected;
    }

    /// <summary>Every unit's diff.</summary>
    public IReadOnlyList<UnitReport> Units { get; }

    /// <summary>The units each changed file reached.</summary>
    public AffectedUnitSet Affected { get; }
}

/// <summary>
/// The whole build: prepared tree → affected units compiled before and after → one diff per unit →
/// objects grouped by parent → livepatch module through kbuild → klp relocations converted. Nothing
/// is written to the output path unless every step succeeded, and the source tree is restored.
/// </summary>
public static class PatchBuilder
{
    /// <summary>Runs the build.</summary>
    public static BuildReport Build(BuildRequest request, Action<string>? progress = null, CancellationToken cancellationToken = default)
    {
        var timings = new List<(string, TimeSpan)>();
        var clock = Stopwatch.StartNew();
        void Stage(string name)
        {
            timings.Add((name, clock.Elapsed));
            clock.Restart();
        }

        var target = request.Target;
        var patchPath = Path.GetFullPath(request.PatchPath);
        var (source, supersedes) = CumulativeSource(request, patchPath);
        var patch = PatchSet.ParseText(source, patchPath);
        patch.Fuzz = request.Fuzz;
        var name = SanitizeName(request.Name ?? Path.GetFileNameWithoutExtension(patchPath));
        var output = Path.GetFullPath(request.OutputPath ?? LivepatchModule.FileStem(name) + ".ko");

        progress?.Invoke($"preparing {target.Release}");
        target.EnsureImage(progress);
        var tree = KernelTree.Ensure(target, progress, cancellationToken);
        Stage("prepare");
        if (StructLayoutChanges.Find(patch, tree.Root) is { Count: > 0 } layouts)
        {
            // A layout matters only where this configuration builds something that uses it (a
            // struct of a driver it does not build is the NothingToBuild of that file, not a refusal).
            var reached = AffectedUnits.Find(tree, patch, UnitCatalog.Load(tree, progress, cancellationToken), maxUnits: int.MaxValue)
                .Units.SelectMany(u => u.ChangedFiles).ToHashSet(StringComparer.Ordinal);
            if (layouts.Where(d => d.File is { } f && reached.Contains(f)).ToList() is { Count: > 0 } refusals)
                throw new LivegraftException(ExitCode.InvalidInput, [.. refusals]);
        }

        // Unique per build, not per process: one process may build the same patch twice at once (tests do).
        var work = Path.Combine(target.CacheDirectory, "builds", $"{name}-{Environment.ProcessId}-{Random.Shared.Next():x8}");
        if (Directory.Exists(work))
            Directory.Delete(work, recursive: true);
        Directory.CreateDirectory(work);
        var diffPaths = new Dictionary<DiffResult, string>(ReferenceEqualityComparer.Instance);
        try
        {
            var units = UnitCompiler.CompileBeforeAfter(tree, patch, Path.Combine(work, "units"), out var affected, progress: progress, cancellationToken: cancellationToken, extraCflags: request.ExtraCflags);
            Stage("compile");

            progress?.Invoke("reading symbols");
            var exports = ModuleSymvers.Read(Path.Combine(target.HeadersDirectory, "Module.symvers"));
            var sizes = tree.Features.Sizes;
            var parents = new Dictionary<string, IParentSymbols>(StringComparer.Ordinal);
            // The target's code per parent (vmlinux from the image, modules from their .ko): symbols,
            // run-pre verification and sympos by content all read it, so the image is decompressed once.
            var codes = new Dictionary<string, ITargetCode>(StringComparer.Ordinal);
            ITargetCode CodeOf(string parent) => codes.TryGetValue(parent, out var c) ? c
                : codes[parent] = parent == "vmlinux" ? ImageCode.Open(target.KernelImage) : new ModuleCode(FindModule(target, parent));
            IParentSymbols ParentOf(string parent)
            {
                if (parents.TryGetValue(parent, out var p))
                    return p;
                var table = parent == "vmlinux" && request.SymbolsPath is { } sp ? SymbolTable.Open(sp) : CodeOf(parent).Symbols;
                return parents[parent] = new ParentSymbols(table, exports)
                {
                    Dependencies = parent == "vmlinux" ? new HashSet<string>(StringComparer.Ordinal) : ModuleInfo.Read(FindModule(target, parent)).Depends,
                    ContentMatcher = parent == "vmlinux" && request.SymbolsPath is not null ? null : RunPreVerifier.ContentMatcher(CodeOf(parent), sizes),
                };
            }

            var reports = new List<UnitReport>();
            var refusals = new List<Diagnostic>();
            var index = 0;
            var objects = units.Select(u => (Orig: ElfFile.Read(u.OrigObject), Patched: ElfFile.Read(u.PatchedObject))).ToList();
            var moduleDefines = NewGlobals(objects);
            foreach (var unit in units)
            {
                progress?.Invoke($"diffing {unit.Path}");
                var options = new DiffOptions
                {
                    Parent = ParentOf(unit.Parent),
                    UnitTag = "u" + index,
                    Sizes = sizes,
                    OrigName = unit.Path,
                    PatchedName = unit.Path,
                    ModuleDefines = moduleDefines,
                };
                var result = Differ.Run(objects[index].Orig, objects[index].Patched, options);
                objects[index] = default; // one unit's objects at a time stay in memory
                reports.Add(new UnitReport(unit.Path, unit.Parent, result));
                refusals.AddRange(result.Refusals);
                if (result.Output is not null)
                {
                    var diffPath = Path.Combine(work, $"diff-u{index}.o");
                    result.Output.Write(diffPath);
                    diffPaths[result] = diffPath;
                }
                index++;
            }
            Stage("diff");
            if (refusals.Count > 0)
                throw new BuildRefusedException(refusals, reports, affected);
            if (reports.All(r => r.Diff.NothingChanged))
                throw new BuildRefusedException([ObjectDiff.NothingChanged(patchPath)], reports, affected);

            // Run-pre verification (docs/verify.md): the original objects' code must be the target's.
            var expectations = new List<FunctionExpectation>();
            var expected = new HashSet<(string, string, int)>();
            for (var u = 0; u < units.Count; u++)
            {
                if (reports[u].Diff.NothingChanged)
                    continue;
                foreach (var e in RunPreVerifier.Expectations(ElfFile.Read(units[u].OrigObject), reports[u].Diff, sizes))
                    if (expected.Add((e.Object, e.Name, e.Sympos)))
                        expectations.Add(e);
            }
            VerifyReport? verification = null;
            if (request.SkipVerification)
            {
                progress?.Invoke($"warning {VerifyErrors.Skipped}: build-time verification SKIPPED: nothing proves this patch was built from the code {target.Release} runs (the module still checks at load time)");
            }
            else
            {
                progress?.Invoke($"verifying {expectations.Count} functions against {target.Release}");
                verification = RunPreVerifier.Check(expectations, CodeOf);
                Stage("verify");
                verification.ThrowIfFailed(patchPath);
            }

            var klpObjects = reports.Where(r => !r.Diff.NothingChanged).GroupBy(r => r.Parent, StringComparer.Ordinal)
                .OrderBy(g => g.Key == "vmlinux" ? "" : g.Key, StringComparer.Ordinal)
                .Select(g => new KlpObjectSpec(
                    g.Key,
                    g.SelectMany(r => r.Diff.Functions).Select(f => new KlpFunctionSpec(f.OldName, f.NewSymbol, f.Sympos)).ToList(),
                    Callbacks(g, "pre_patch"), Callbacks(g, "post_patch"), Callbacks(g, "pre_unpatch"), Callbacks(g, "post_unpatch"))
                {
                    DiffObjects = g.Where(r => diffPaths.ContainsKey(r.Diff)).Select(r => diffPaths[r.Diff]).ToList(),
                })
                .ToList();
            // Load-time verification: each object's pre_patch callback checks the running code first.
            var moduleRequest = new LivepatchModuleRequest(name, target, klpObjects)
            {
                ImportNamespaces = [.. reports.SelectMany(r => r.Diff.ImportNamespaces).Distinct(StringComparer.Ordinal)],
                Replace = request.Replace,
                PatchSha256 = patch.Sha256,
                Source = source,
                Supersedes = supersedes,
                Fixes = request.Fixes,
                KernelBuildId = request.SymbolsPath is null && CodeOf("vmlinux") is ImageCode image ? image.BuildId : null,
                Verification = expectations,
                ClearRelocationsOnModuleRemoval = !tree.Features.ClearsKlpRelocations,
            };
            var built = LivepatchModule.Build(moduleRequest, Path.Combine(work, "module"), progress, cancellationToken);
            Stage("module");

            WriteOutput(built.KoPath, output);
            return new BuildReport(output, built.ModuleName, Sha256Hash.HashFile(output), reports, klpObjects, timings)
            {
                Affected = affected,
                KlpRelocations = built.KlpRelocations,
                Verification = verification,
                VerifiedAtLoad = expectations.Count,
                Source = target.SourceOverride ?? $"{tree.Stamp.GetValueOrDefault("source-package")}={tree.Stamp.GetValueOrDefault("source-version")}",
                PatchNotes = [.. patch.ApplyNotes],
            };
        }
        finally
        {
            if (Environment.GetEnvironmentVariable("LIVEGRAFT_KEEP_WORK") is null && Directory.Exists(work))
                Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>Global functions and objects the patched units define anew (absent from their
    /// original objects): a patch may add one in one file and call it from another, and such
    /// references resolve inside the module.</summary>
    private static HashSet<string> NewGlobals(IEnumerable<(ElfFile Orig, ElfFile Patched)> units)
    {
        var result = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (orig, patched) in units)
        {
            var before = orig.SymbolTable?.Symbols.Where(s => s.Section is not null && !s.IsLocal).Select(s => s.Name).ToHashSet(StringComparer.Ordinal) ?? [];
            foreach (var s in patched.SymbolTable?.Symbols ?? [])
                if (s.Section is not null && !s.IsLocal && s.Type is ElfNative.STT_FUNC or ElfNative.STT_OBJECT && !before.Contains(s.Name))
                    result.Add(s.Name);
        }
        return result;
    }

    /// <summary>Copies a built module to <paramref name="output"/> through a temporary file renamed
    /// into place, so a full disk or a kill leaves either the old file or the new one, never half of
    /// it (LG0401 names the path when it cannot be written).</summary>
    internal static void WriteOutput(string built, string output)
    {
        var tmp = output + ".tmp-" + Environment.ProcessId;
        try
        {
            using (var from = File.OpenRead(built))
            using (var to = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                from.CopyTo(to);
                to.Flush(flushToDisk: true);
            }
            File.Move(tmp, output, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try
            {
                File.Delete(tmp);
            }
            catch (IOException)
            {
                // Nothing more can be done; the message names the path.
            }
            throw new LivegraftException(ExitCode.HostFailure, KernelErrors.OutputWriteFailed, $"cannot write the module: {e.Message}", output);
        }
    }

    /// <summary>The source to build: the sources of the <see cref="BuildRequest.OnTopOf"/> modules in
    /// order, then the patch; and the names of the patches it supersedes (theirs included).</summary>
    private static (string Source, IReadOnlyList<string> Supersedes) CumulativeSource(BuildRequest request, string patchPath)
    {
        string text;
        try
        {
            text = File.ReadAllText(patchPath, System.Text.Encoding.Latin1);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LivegraftException(ExitCode.InvalidInput, KernelErrors.PatchMalformed, $"cannot read patch: {e.Message}", patchPath);
        }
        if (request.OnTopOf.Count == 0)
            return (text, []);
        var sources = new System.Text.StringBuilder();
        var supersedes = new List<string>();
        foreach (var ko in request.OnTopOf)
        {
            var elf = ElfFile.Read(ko);
            var info = ModuleInfo.Of(elf);
            if (info.Get(LivegraftInfo.KernelRelease) is { } release && release != request.Target.Release)
                throw new LivegraftException(ExitCode.InvalidInput, KernelErrors.OnTopOfInvalid, $"the patch is for {release}, not {request.Target.Release}", ko);
            var section = elf.FindSection(LivepatchModule.SourceSection)
                ?? throw new LivegraftException(ExitCode.InvalidInput, KernelErrors.OnTopOfInvalid,
                    "the module carries no source patch (built by another tool or an older Livegraft): a cumulative patch cannot include its fixes", ko);
            var earlier = System.Text.Encoding.Latin1.GetString(section.Data.Span);
            sources.Append(earlier);
            if (earlier.Length > 0 && earlier[^1] != '\n')
                sources.Append('\n');
            supersedes.Add(info.Get("name") ?? ModuleInfo.NameFromFileName(ko));
            supersedes.AddRange((info.Get(LivegraftInfo.Supersedes) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries));
        }
        return (sources.Append(text).ToString(), [.. supersedes.Distinct(StringComparer.Ordinal)]);
    }

    private static List<string> Callbacks(IEnumerable<UnitReport> reports, string kind) =>
        reports.SelectMany(r => r.Diff.Callbacks.GetValueOrDefault(kind) ?? []).ToList();

    /// <summary>The <c>.ko</c> of a module of the target's image package.</summary>
    public static string FindModule(KernelTarget target, string module)
    {
        var wanted = module.Replace('-', '_');
        foreach (var ko in Directory.EnumerateFiles(target.ModulesDirectory, "*.ko", SearchOption.AllDirectories))
            if (Path.GetFileNameWithoutExtension(ko).Replace('-', '_') == wanted)
                return ko;
        throw new LivegraftException(ExitCode.InvalidInput, KernelErrors.ModuleNotShipped, $"module '{module}' is not in {target.ModulesDirectory}");
    }

    private static string SanitizeName(string name)
    {
        var chars = name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' ? c : '-').ToArray();
        var clean = new string(chars).Trim('-');
        if (clean.StartsWith("livepatch-", StringComparison.Ordinal))
            clean = clean["livepatch-".Length..];
        return clean.Length == 0 ? "patch" : clean;
    }

}
