using System.Text.RegularExpressions;
using Livegraft.Kernel.Patches;

namespace Livegraft.Kernel.Units;

/// <summary>A unit to compile before and after the patch.</summary>
/// <param name="Object">Tree-relative object, e.g. <c>fs/proc/cmdline.o</c>.</param>
/// <param name="Source">Tree-relative source file.</param>
/// <param name="Parent"><c>vmlinux</c> or the module name, as the catalog (kbuild's dry run) says.</param>
/// <param name="ChangedFiles">The changed files that make this unit affected: the source itself,
/// or headers (and included <c>.c</c> files) it includes directly or through other headers.</param>
public sealed record AffectedUnit(string Object, string Source, string Parent, IReadOnlyList<string> ChangedFiles)
{
    /// <summary>True when the unit's own source is not changed, only files it includes. Such units
    /// are dropped after the unpatched compile if kbuild's dependency list shows they do not
    /// include any changed file after all (the include was preprocessed out).</summary>
    public bool ViaIncludesOnly => !ChangedFiles.Contains(Source, StringComparer.Ordinal);
}

/// <summary>The units a patch affects, plus what was ignored and why.</summary>
public sealed record AffectedUnitSet(IReadOnlyList<AffectedUnit> Units, IReadOnlyList<Diagnostic> Notes);

/// <summary>
/// Maps changed files to the units to compile.
/// </summary>
/// <remarks>
/// Rule: a changed <c>.c</c>/<c>.S</c> that kbuild builds for this config (it is in the
/// <see cref="UnitCatalog"/>) is a unit, and so is every built <c>.c</c> of the same directory that
/// includes it. A changed header — or a changed <c>.c</c> that is not built
/// itself — affects every built <c>.c</c> that includes it, directly or through other headers. Includes are
/// found textually: <c>#include &lt;x&gt;</c> resolved against <c>include/</c>,
/// <c>arch/x86/include/</c> and their <c>uapi/</c> and <c>generated/</c> variants, and
/// <c>#include "x"</c> resolved against the including file's directory first and those directories
/// second. A textual include inside an inactive <c>#if</c> makes a false candidate; the compiler
/// then settles it (see <see cref="AffectedUnit.ViaIncludesOnly"/>). Changes to other files
/// (Documentation, Kconfig, Makefiles, other architectures' sources) are reported as notes and
/// ignored; a patch adding a new compilation unit is refused.
/// </remarks>
public static class AffectedUnits
{
    /// <summary>System include directories of an x86-64 kbuild compile, tree-relative.</summary>
    public static readonly IReadOnlyList<string> IncludeDirectories =
    [
        "arch/x86/include", "arch/x86/include/generated", "include", "arch/x86/include/uapi",
        "arch/x86/include/generated/uapi", "include/uapi", "include/generated/uapi",
    ];

    private static readonly Regex Include = new(@"^\s*#\s*include\s*([<""])([^>""]+)[>""]", RegexOptions.Multiline | RegexOptions.CultureInvariant);
    private static readonly string[] SkippedDirectories = ["Documentation", "tools", "scripts", "samples", "usr", "LICENSES", ".git", TreeJournal.DirectoryName];

    /// <summary>Finds the units <paramref name="patch"/> affects in <paramref name="tree"/> (unpatched);
    /// header changes reaching more than <paramref name="maxUnits"/> units are refused (LG0335).</summary>
    public static AffectedUnitSet Find(KernelTree tree, PatchSet patch, UnitCatalog catalog, int maxUnits = 200, Action<string>? progress = null)
    {
        var notes = new List<Diagnostic>();
        var units = new Dictionary<string, (CatalogEntry Entry, SortedSet<string> Why)>(StringComparer.Ordinal);
        void AddUnit(CatalogEntry e, string why)
        {
            if (!units.TryGetValue(e.Object, out var u))
                units[e.Object] = u = (e, new SortedSet<string>(StringComparer.Ordinal));
            u.Why.Add(why);
        }

        var includeTargets = new List<string>();
        var localTargets = new List<string>();
        foreach (var file in patch.Files)
        {
            var path = file.Path;
            var ext = Path.GetExtension(path);
            if (file.Kind == FileChangeKind.Renamed && (IsSource(file.OldPath!) || IsSource(path)))
                throw new LivegraftException(ExitCode.InvalidInput, KernelErrors.NotBuilt,
                    $"renaming {file.OldPath} to {path} changes the build; Livegraft cannot carry it", path);
            if (ext is ".c" or ".S")
            {
                var entry = catalog.BySource(path);
                if (entry is not null)
                {
                    if (file.Kind == FileChangeKind.Deleted)
                        throw new LivegraftException(ExitCode.InvalidInput, KernelErrors.NotBuilt,
                            $"{path} is deleted but this kernel builds it; removing a compilation unit cannot be live patched", path);
                    AddUnit(entry, path);
                    // A built .c may also be #included by another unit (kernel/sched/build_policy.c
                    // includes rt.c); that happens within a directory, so only it is searched.
                    localTargets.Add(path);
                    continue;
                }
                if (file.Kind == FileChangeKind.Added)
                    throw new LivegraftException(ExitCode.InvalidInput, KernelErrors.NotBuilt,
                        $"{path} is a new file; new compilation units cannot be live patched (put the code in an existing unit)", path);
                includeTargets.Add(path); // maybe #included by a built unit; reported below if not
                continue;
            }
            if (ext is ".h" or ".inc" or ".lds")
            {
                includeTargets.Add(path);
                continue;
            }
            notes.Add(new Diagnostic(KernelErrors.NotBuilt, Severity.Warning,
                "not a C source or header; the change is ignored (live patches carry code, not build or config changes)", path));
        }

        foreach (var group in localTargets.GroupBy(t => Path.GetDirectoryName(t) ?? "", StringComparer.Ordinal))
        {
            var found = FindIncluders(tree.Root, [.. group], group.Key);
            foreach (var (target, list) in found)
                foreach (var src in list)
                    if (catalog.BySource(src) is { } entry)
                        AddUnit(entry, target);
        }

        if (includeTargets.Count > 0)
        {
            progress?.Invoke($"finding units that include {string.Join(", ", includeTargets)}");
            var includers = FindIncluders(tree.Root, includeTargets);
            foreach (var target in includeTargets)
            {
                var found = includers.TryGetValue(target, out var list) ? list : [];
                var any = false;
                foreach (var src in found)
                {
                    var entry = catalog.BySource(src);
                    if (entry is null)
                        continue;
                    AddUnit(entry, target);
                    any = true;
                }
                var isBuiltSource = catalog.BySource(target) is not null;
                if (!any && !isBuiltSource)
                    notes.Add(new Diagnostic(KernelErrors.NotBuilt, Severity.Warning,
                        "nothing this kernel configuration builds uses this file; the change is ignored", target));
            }
        }

        var result = units.Values
            .Select(u => new AffectedUnit(u.Entry.Object, u.Entry.Source, u.Entry.Parent, [.. u.Why]))
            .OrderBy(u => u.Object, StringComparer.Ordinal)
            .ToList();
        if (result.Count == 0)
            throw new LivegraftException(ExitCode.InvalidInput, [
                new Diagnostic(KernelErrors.NothingToBuild, Severity.Error, "the patch changes no code this kernel configuration builds", patch.SourcePath),
                .. notes,
            ]);
        var viaIncludes = result.Count(u => u.ViaIncludesOnly);
        if (viaIncludes > maxUnits)
            throw new LivegraftException(ExitCode.InvalidInput, KernelErrors.TooManyUnits,
                $"the header changes reach {viaIncludes} units (limit {maxUnits}); narrow the change or raise the limit", patch.SourcePath);
        return new AffectedUnitSet(result, notes);
    }

    private static bool IsSource(string path) => Path.GetExtension(path) is ".c" or ".S" or ".h";

    /// <summary>For each target file, every file that includes it, directly or through other
    /// included files (tree-relative paths); with <paramref name="scope"/>, only files directly in
    /// that tree-relative directory are searched. Exposed for tests.</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> FindIncluders(string root, IReadOnlyList<string> targets, string? scope = null)
    {
        var index = IncludeIndex(root, scope);
        var result = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        var direct = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        List<string> DirectIncluders(string target)
        {
            if (direct.TryGetValue(target, out var list))
                return list;
            list = [];
            if (index.TryGetValue(Path.GetFileName(target), out var candidates))
                foreach (var (includer, quoted, name) in candidates)
                    if (Resolves(includer, quoted, name, target) && (list.Count == 0 || list[^1] != includer))
                        list.Add(includer);
            return direct[target] = list;
        }
        foreach (var target in targets)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal) { target };
            var queue = new Queue<string>();
            queue.Enqueue(target);
            var all = new List<string>();
            while (queue.Count > 0)
                foreach (var inc in DirectIncluders(queue.Dequeue()))
                    if (seen.Add(inc))
                    {
                        all.Add(inc);
                        queue.Enqueue(inc);
                    }
            all.Sort(StringComparer.Ordinal);
            result[target] = all;
        }
        return result;
    }

    /// <summary>Every <c>#include</c> in the tree's sources, by the included name's file name:
    /// one pass over the files (a few seconds for a kernel tree), after which the transitive
    /// closure of even a core header is cheap.</summary>
    private static Dictionary<string, List<(string Includer, bool Quoted, string Name)>> IncludeIndex(string root, string? scope)
    {
        var files = scope is null ? EnumerateSources(root).ToList() : EnumerateDirectory(root, scope).ToList();
        var perFile = new List<(string, bool, string)>[files.Count];
        Parallel.For(0, files.Count, i =>
        {
            string text;
            try
            {
                text = File.ReadAllText(Path.Combine(root, files[i]), System.Text.Encoding.Latin1);
            }
            catch (IOException)
            {
                return;
            }
            if (!text.Contains("include", StringComparison.Ordinal))
                return;
            List<(string, bool, string)>? list = null;
            foreach (Match m in Include.Matches(text))
                (list ??= []).Add((files[i], m.Groups[1].Value == "\"", m.Groups[2].Value.Trim()));
            perFile[i] = list!;
        });
        var index = new Dictionary<string, List<(string, bool, string)>>(StringComparer.Ordinal);
        foreach (var list in perFile)
        {
            if (list is null)
                continue;
            foreach (var entry in list)
            {
                var key = Path.GetFileName(entry.Item3);
                if (!index.TryGetValue(key, out var l))
                    index[key] = l = [];
                l.Add(entry);
            }
        }
        return index;
    }

    /// <summary>Whether <c>#include</c> of <paramref name="name"/> in <paramref name="includer"/>
    /// can mean <paramref name="target"/>.</summary>
    internal static bool Resolves(string includer, bool quoted, string name, string target)
    {
        if (quoted)
        {
            var dir = Path.GetDirectoryName(includer) ?? "";
            if (NormalizeRelative(Path.Combine(dir, name)) == target)
                return true;
        }
        foreach (var inc in IncludeDirectories)
            if (NormalizeRelative(inc + "/" + name) == target)
                return true;
        // Directory Makefiles add -I$(srctree)/… or -I$(src); a quoted include naming a
        // tree-relative path is resolved against the tree root.
        return quoted && NormalizeRelative(name) == target;
    }

    private static string? NormalizeRelative(string path)
    {
        var parts = new List<string>();
        foreach (var p in path.Replace('\\', '/').Split('/'))
        {
            if (p.Length == 0 || p == ".")
                continue;
            if (p == "..")
            {
                if (parts.Count == 0)
                    return null;
                parts.RemoveAt(parts.Count - 1);
                continue;
            }
            parts.Add(p);
        }
        return string.Join('/', parts);
    }

    private static IEnumerable<string> EnumerateDirectory(string root, string dir)
    {
        var full = dir.Length == 0 ? root : Path.Combine(root, dir);
        if (!Directory.Exists(full))
            yield break;
        foreach (var f in Directory.EnumerateFiles(full))
            if (Path.GetExtension(f) is ".c" or ".h" or ".S" or ".inc")
                yield return dir.Length == 0 ? Path.GetFileName(f) : dir + "/" + Path.GetFileName(f);
    }

    private static IEnumerable<string> EnumerateSources(string root)
    {
        var options = new EnumerationOptions { RecurseSubdirectories = false, IgnoreInaccessible = true, AttributesToSkip = FileAttributes.ReparsePoint };
        var stack = new Stack<string>();
        stack.Push("");
        while (stack.Count > 0)
        {
            var rel = stack.Pop();
            var full = rel.Length == 0 ? root : Path.Combine(root, rel);
            foreach (var d in Directory.EnumerateDirectories(full, "*", options))
            {
                var name = Path.GetFileName(d);
                if (rel.Length == 0 && SkippedDirectories.Contains(name))
                    continue;
                if (name == TreeJournal.DirectoryName || name.StartsWith('.'))
                    continue;
                stack.Push(rel.Length == 0 ? name : rel + "/" + name);
            }
            foreach (var f in Directory.EnumerateFiles(full, "*", options))
            {
                var ext = Path.GetExtension(f);
                if (ext is ".c" or ".h" or ".S" or ".inc" or ".lds")
                    yield return rel.Length == 0 ? Path.GetFileName(f) : rel + "/" + Path.GetFileName(f);
            }
        }
    }
}
