using System.Globalization;
using System.Text.Json;
using Livegraft.Kernel.Build;
using Livegraft.Kernel.Patches;
using Livegraft.Kernel.Units;

namespace Livegraft.Kernel.Updates;

/// <summary>What <c>livegraft build --update</c> is asked to do.</summary>
/// <param name="Update">The update's source: a Debian <c>package=version</c>, a source tarball or a directory.</param>
/// <param name="Target">The running kernel the patch is for (its exact source is the base).</param>
public sealed record UpdateRequest(string Update, KernelTarget Target)
{
    /// <summary>Build a patch of what is safe and say what it leaves out, instead of all or nothing.</summary>
    public bool Partial { get; init; }
    /// <summary>Patch name; default <c>update-&lt;version&gt;</c>.</summary>
    public string? Name { get; init; }
    /// <summary>Where to write the module; default <c>livepatch-NAME.ko</c>.</summary>
    public string? OutputPath { get; init; }
    /// <summary>Atomic replace (the default: an update's patch is cumulative by nature).</summary>
    public bool Replace { get; init; } = true;
    /// <summary>What the update fixes, recorded in the module; default the update's name.</summary>
    public string? Fixes { get; init; }
    /// <summary>Earlier patches this one is cumulative over.</summary>
    public IReadOnlyList<string> OnTopOf { get; init; } = [];
}

/// <summary>What became of one changed file.</summary>
public enum FileOutcome
{
    /// <summary>Its change is in the patch.</summary>
    Patched,
    /// <summary>It reaches built units, but no function the kernel runs changed in this configuration.</summary>
    NotNeeded,
    /// <summary>This configuration builds nothing from it.</summary>
    NotBuilt,
    /// <summary>Not code (packaging, documentation, another architecture, build files).</summary>
    Ignored,
    /// <summary>Its change cannot be live patched: the host needs the new kernel.</summary>
    Refused,
}

/// <summary>One changed file of the update.</summary>
/// <param name="Path">Tree-relative path.</param>
/// <param name="Kind">Modified, added or deleted.</param>
/// <param name="Outcome">What became of it.</param>
/// <param name="Reason">Why (for every outcome but <see cref="FileOutcome.Patched"/>).</param>
/// <param name="Units">The units it reached.</param>
/// <param name="Diagnostics">The refusals that concern it.</param>
public sealed record UpdateFile(string Path, FileChangeKind Kind, FileOutcome Outcome, string? Reason, IReadOnlyList<string> Units, IReadOnlyList<Diagnostic> Diagnostics);

/// <summary>One function the update changes.</summary>
/// <param name="Object">vmlinux or the module.</param>
/// <param name="Name">The function.</param>
/// <param name="Unit">The unit it is in.</param>
/// <param name="Patched">True when the patch replaces it; false when its unit was refused.</param>
public sealed record UpdateFunction(string Object, string Name, string Unit, bool Patched);

/// <summary>What <c>livegraft build --update</c> found and built.</summary>
/// <param name="Release">The target.</param>
/// <param name="Update">The update's source as given.</param>
/// <param name="Files">Every changed file.</param>
/// <param name="Functions">Every changed function of the units built.</param>
/// <param name="Build">The module, when one was written.</param>
/// <param name="Diagnostics">Refusals, and what a partial patch leaves out.</param>
public sealed record UpdateReport(string Release, string Update, IReadOnlyList<UpdateFile> Files, IReadOnlyList<UpdateFunction> Functions,
    BuildReport? Build, IReadOnlyList<Diagnostic> Diagnostics)
{
    /// <summary>Success when a module was written; invalid input when nothing could be (all or
    /// nothing refused it, or nothing needs patching).</summary>
    public ExitCode ExitCode => Build is null ? ExitCode.InvalidInput : ExitCode.Success;

    /// <summary>The files whose change needs the new kernel (a reboot: <c>livegraft reboot --kexec</c>).</summary>
    public IEnumerable<UpdateFile> NeedReboot => Files.Where(f => f.Outcome == FileOutcome.Refused);

    /// <summary>The <c>--json</c> document.</summary>
    public void WriteJson(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        Json.WriteOutcome(w, ExitCode);
        w.WriteString("kernel", Release);
        w.WriteString("update", Update);
        if (Build is not null)
        {
            w.WriteString("module", Build.ModulePath);
            w.WriteString("moduleName", Build.ModuleName);
            w.WriteString("sha256", Build.Sha256);
        }
        w.WriteStartObject("counts");
        foreach (var o in Enum.GetValues<FileOutcome>())
            w.WriteNumber(Json.CamelCase(Json.Kebab(o.ToString())), Files.Count(f => f.Outcome == o));
        w.WriteEndObject();
        w.WriteStartArray("files");
        foreach (var f in Files)
        {
            w.WriteStartObject();
            w.WriteString("path", f.Path);
            w.WriteString("change", Json.Kebab(f.Kind.ToString()));
            w.WriteString("outcome", Json.Kebab(f.Outcome.ToString()));
            Json.WriteNullable(w, "reason", f.Reason);
            Json.WriteStrings(w, "units", f.Units);
            Json.WriteDiagnostics(w, f.Diagnostics);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("functions");
        foreach (var f in Functions)
        {
            w.WriteStartObject();
            w.WriteString("object", f.Object);
            w.WriteString("name", f.Name);
            w.WriteString("unit", f.Unit);
            w.WriteString("outcome", f.Patched ? "patched" : "refused");
            w.WriteEndObject();
        }
        w.WriteEndArray();
        Json.WriteStrings(w, "needReboot", NeedReboot.Select(f => f.Path));
        Json.WriteDiagnostics(w, Diagnostics);
        w.WriteEndObject();
    }
}

/// <summary>
/// A distro update becomes a live patch: the running target's exact source against the update's,
/// restricted to code, built as one cumulative patch. All or nothing by default: if any change that
/// matters cannot be live patched, no module is written and the report says what needs the new
/// kernel; with <see cref="UpdateRequest.Partial"/> the refused files are left out and the rest is built.
/// </summary>
public static class UpdateBuilder
{
    /// <summary>Runs the update build.</summary>
    public static UpdateReport Build(UpdateRequest request, Action<string>? progress = null, CancellationToken cancellationToken = default)
    {
        var target = request.Target;
        progress?.Invoke($"preparing {target.Release}");
        target.EnsureImage(progress);
        var tree = KernelTree.Ensure(target, progress, cancellationToken);
        var update = SourceSpec.Resolve(request.Update, progress);
        SourceTreeDiff diff;
        using (tree.Lock(progress, cancellationToken))
        {
            // The tree is the target's source only when no build has a patch applied to it.
            tree.RecoverJournal(progress);
            diff = SourceTreeDiff.Compute(tree.Root, update, File.Exists(target.SourceTarball) ? target.SourceTarball : null, progress, cancellationToken);
        }
        var catalog = UnitCatalog.Load(tree, progress, cancellationToken);

        // Files decided before any compile: not code; a struct layout change; a new or deleted
        // compilation unit (which changes the build, so only the new kernel has it).
        var outcomes = new Dictionary<string, UpdateFile>(StringComparer.Ordinal);
        foreach (var f in diff.Files.Where(f => f.Ignored is not null))
            outcomes[f.Path] = new UpdateFile(f.Path, f.Kind, FileOutcome.Ignored, f.Ignored, [], []);
        foreach (var f in diff.Code)
        {
            var isUnitSource = Path.GetExtension(f.Path) is ".c" or ".S";
            var filePatch = f.Kind == FileChangeKind.Modified ? PatchSet.ParseText(f.Diff!, f.Path) : null;
            if (filePatch is not null && StructLayoutChanges.Find(filePatch, tree.Root) is { Count: > 0 } layouts)
            {
                // A layout only matters where this configuration builds something that uses it.
                outcomes[f.Path] = UnitsReached(tree, filePatch, catalog) is { } reached
                    ? new UpdateFile(f.Path, f.Kind, FileOutcome.Refused, layouts[0].Message, reached, layouts)
                    : new UpdateFile(f.Path, f.Kind, FileOutcome.NotBuilt, "this configuration builds nothing that uses it", [], []);
                continue;
            }
            if (f.Kind == FileChangeKind.Added && isUnitSource)
                outcomes[f.Path] = Refused(f, "a new compilation unit: it changes the build, so only the new kernel has it",
                    new Diagnostic(KernelErrors.NotBuilt, Severity.Error, "a new source file cannot be live patched", f.Path));
            else if (f.Kind == FileChangeKind.Deleted && isUnitSource)
                outcomes[f.Path] = catalog.BySource(f.Path) is null
                    ? new UpdateFile(f.Path, f.Kind, FileOutcome.NotBuilt, "deleted, and not built in this configuration", [], [])
                    : Refused(f, "a deleted compilation unit: it changes the build", new Diagnostic(KernelErrors.NotBuilt, Severity.Error, "removing a built source cannot be live patched", f.Path));
        }

        var work = Directory.CreateTempSubdirectory("livegraft-update-").FullName;
        var version = VersionOf(request.Update, update);
        var name = request.Name ?? "update-" + version;
        var output = Path.GetFullPath(request.OutputPath ?? LivepatchModule.FileStem(name) + ".ko");
        var diagnostics = new List<Diagnostic>();
        try
        {
            // Every file is decided, even when all or nothing will refuse the update: refused files
            // are taken out and the rest built again, until what is left builds or nothing is left.
            // The module is written to the output only when the update (or --partial) allows it.
            BuildReport? build = null;
            IReadOnlyList<UnitReport> units = [];
            Diagnostic? nothing = null;
            while (true)
            {
                var remaining = diff.Code.Where(f => !outcomes.ContainsKey(f.Path)).ToList();
                if (remaining.Count == 0)
                    break;
                var patchPath = Path.Combine(work, name + ".patch");
                File.WriteAllText(patchPath, diff.PatchOf(remaining), System.Text.Encoding.Latin1);
                progress?.Invoke($"building {remaining.Count} changed files for {target.Release}");
                try
                {
                    build = PatchBuilder.Build(new BuildRequest(patchPath, target)
                    {
                        Name = name,
                        OutputPath = Path.Combine(work, "module.ko"),
                        Replace = request.Replace,
                        Fixes = request.Fixes ?? $"update to {version}",
                        OnTopOf = request.OnTopOf,
                    }, progress, cancellationToken);
                    units = build.Units;
                    Settle(outcomes, remaining, build.Units, build.Affected!, []);
                    break;
                }
                catch (BuildRefusedException e)
                {
                    units = e.Units;
                    var onlyNothing = e.Diagnostics.All(d => d.Id == Diff.DiffErrors.NothingChanged);
                    Settle(outcomes, remaining, e.Units, e.Affected, onlyNothing ? [] : e.Diagnostics);
                    if (onlyNothing)
                    {
                        nothing = e.Diagnostics[0];
                        break;
                    }
                    var refusedNow = remaining.Where(f => outcomes[f.Path].Outcome == FileOutcome.Refused).ToList();
                    if (refusedNow.Count == 0)
                        throw; // refused, but not for any file: nothing to take out
                    foreach (var f in remaining.Except(refusedNow))
                        outcomes.Remove(f.Path);
                }
            }

            var refused = outcomes.Values.Where(f => f.Outcome == FileOutcome.Refused).Select(f => f.Path).Order(StringComparer.Ordinal).ToList();
            if (refused.Count > 0 && !request.Partial)
            {
                diagnostics.Add(new Diagnostic(KernelErrors.UpdateNeedsReboot, Severity.Error,
                    $"{refused.Count} changed file(s) cannot be live patched ({string.Join(", ", refused)}), so no patch was written " +
                    "(all or nothing; --partial builds the rest): the host needs the new kernel for them (livegraft reboot --kexec)", request.Update));
                return Report(request, outcomes, diff, units, null, diagnostics);
            }
            if (build is null)
            {
                diagnostics.Add(nothing is null
                    ? new Diagnostic(KernelErrors.UpdateNeedsReboot, Severity.Error,
                        $"nothing of the update can be live patched ({string.Join(", ", refused)}): the host needs the new kernel (livegraft reboot --kexec)", request.Update)
                    : nothing with { Message = "nothing to live patch: the update changes no function this configuration runs", File = request.Update });
                return Report(request, outcomes, diff, units, null, diagnostics);
            }
            PatchBuilder.WriteOutput(build.ModulePath, output);
            build = build with { ModulePath = output };
            if (refused.Count > 0)
                diagnostics.Add(new Diagnostic(KernelErrors.UpdatePartial, Severity.Warning,
                    $"--partial: the patch leaves out {string.Join(", ", refused)}, which only the new kernel has; " +
                    "the host still needs a reboot for them (livegraft reboot --kexec)", output));
            return Report(request, outcomes, diff, units, build, diagnostics);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>The units this configuration builds from the file <paramref name="patch"/> changes (or
    /// that include it), or null when there are none.</summary>
    private static List<string>? UnitsReached(KernelTree tree, PatchSet patch, UnitCatalog catalog)
    {
        try
        {
            return [.. AffectedUnits.Find(tree, patch, catalog, maxUnits: int.MaxValue).Units.Select(u => u.Object)];
        }
        catch (LivegraftException e) when (e.Diagnostics.Any(d => d.Id == KernelErrors.NothingToBuild))
        {
            return null;
        }
    }

    private static UpdateFile Refused(ChangedSourceFile f, string reason, Diagnostic d) =>
        new(f.Path, f.Kind, FileOutcome.Refused, reason, [], [d]);

    /// <summary>Decides every remaining file from the units it reached: refused when one of them was,
    /// patched when one of them changed, not needed when none did, not built when it reached none.</summary>
    private static void Settle(Dictionary<string, UpdateFile> outcomes, IReadOnlyList<ChangedSourceFile> files, IReadOnlyList<UnitReport> units,
        AffectedUnitSet affected, IReadOnlyList<Diagnostic> refusals)
    {
        var byUnit = units.ToDictionary(u => u.Unit, StringComparer.Ordinal);
        foreach (var f in files)
        {
            var reached = affected.Units.Where(u => u.ChangedFiles.Contains(f.Path, StringComparer.Ordinal) && byUnit.ContainsKey(u.Object)).Select(u => u.Object).ToList();
            var against = refusals.Where(d => reached.Contains(d.File ?? "", StringComparer.Ordinal)).ToList();
            if (against.Count > 0)
                outcomes[f.Path] = new UpdateFile(f.Path, f.Kind, FileOutcome.Refused, string.Join("; ", against.Select(d => $"{d.Id}: {d.Message}").Distinct()), reached, against);
            else if (reached.Count == 0)
                outcomes[f.Path] = new UpdateFile(f.Path, f.Kind, FileOutcome.NotBuilt,
                    affected.Notes.FirstOrDefault(n => n.File == f.Path)?.Message ?? "this configuration builds nothing that uses it", [], []);
            else if (reached.Any(u => !byUnit[u].Diff.NothingChanged))
                outcomes[f.Path] = new UpdateFile(f.Path, f.Kind, FileOutcome.Patched, null, reached, []);
            else
                outcomes[f.Path] = new UpdateFile(f.Path, f.Kind, FileOutcome.NotNeeded, "no function this configuration runs changed", reached, []);
        }
    }

    private static UpdateReport Report(UpdateRequest request, Dictionary<string, UpdateFile> outcomes, SourceTreeDiff diff, IReadOnlyList<UnitReport> units,
        BuildReport? build, List<Diagnostic> diagnostics)
    {
        var files = diff.Files.Select(f => outcomes.TryGetValue(f.Path, out var o) ? o
            : new UpdateFile(f.Path, f.Kind, FileOutcome.NotBuilt, "this configuration builds nothing that uses it", [], [])).ToList();
        // The units the differ refused (their refusals name them); a file refused before any
        // compile (a struct layout) leaves the units it reaches to their own changes.
        var refusedUnits = files.Where(f => f.Outcome == FileOutcome.Refused).SelectMany(f => f.Diagnostics).Select(d => d.File)
            .OfType<string>().ToHashSet(StringComparer.Ordinal);
        var functions = units.SelectMany(u => u.Diff.ChangedFunctions.Concat(u.Diff.NewFunctions)
            .Select(fn => new UpdateFunction(u.Parent, fn, u.Unit, build is not null && !refusedUnits.Contains(u.Unit)))).ToList();
        return new UpdateReport(request.Target.Release, request.Update, files, functions, build, diagnostics);
    }

    /// <summary>The update's version: that of <c>package=version</c>, else the tarball or directory name.</summary>
    private static string VersionOf(string spec, string resolved)
    {
        var eq = spec.IndexOf('=', StringComparison.Ordinal);
        if (eq > 0 && !File.Exists(spec) && !Directory.Exists(spec))
            return spec[(eq + 1)..].Replace(':', '-').Replace('~', '-');
        var stem = Path.GetFileName(resolved.TrimEnd('/'));
        foreach (var ext in new[] { ".tar.xz", ".tar.gz", ".tar.bz2", ".tar.zst", ".tar" })
            if (stem.EndsWith(ext, StringComparison.Ordinal))
                stem = stem[..^ext.Length];
        return stem.ToString(CultureInfo.InvariantCulture);
    }
}
