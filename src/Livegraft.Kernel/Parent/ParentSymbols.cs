using Livegraft.Diff;
using Livegraft.Elf;
using Livegraft.Symbols;
using static Livegraft.Elf.ElfNative;

namespace Livegraft.Kernel.Parent;

/// <summary>
/// The differ's view of a parent object (vmlinux or a module) built from its kallsyms-ordered symbol
/// table and the kernel's Module.symvers. Duplicate static names are pinned by neighbourhood: the
/// linker keeps one translation unit's symbols together, so the right copy is the one surrounded by
/// the other symbols of the object being patched.
/// </summary>
public sealed class ParentSymbols : IParentSymbols
{
    private readonly SymbolTable _symbols;
    private readonly ModuleSymvers? _exports;
    private Neighbourhood? _neighbourhood;

    /// <summary>Creates the view.</summary>
    public ParentSymbols(SymbolTable symbols, ModuleSymvers? exports)
    {
        _symbols = symbols;
        _exports = exports;
    }

    /// <summary>Optional content matcher (run-pre, <c>Verify.RunPreVerifier.ContentMatcher</c>): does
    /// the copy at this kallsyms index have this function's code? When exactly one candidate of a
    /// duplicated function name matches, it decides the sympos; otherwise neighbourhood does.</summary>
    public Func<ElfSymbol, ElfFile, int, bool>? ContentMatcher { get; init; }

    /// <summary>The modules the parent module's <c>.modinfo</c> <c>depends=</c> names (empty for vmlinux).</summary>
    public IReadOnlySet<string> Dependencies { get; init; } = new HashSet<string>(StringComparer.Ordinal);

    /// <inheritdoc/>
    public string ObjectName => _symbols.ObjectName;

    /// <inheritdoc/>
    public bool DependsOn(string moduleName) => Dependencies.Contains(moduleName);

    /// <inheritdoc/>
    public bool IsExported(string name) => _exports?.IsExported(name) ?? false;

    /// <inheritdoc/>
    public bool Defines(string name) => _symbols.Contains(name);

    /// <inheritdoc/>
    public string? ExportNamespace(string name) => _exports?.Find(name) is { Namespace.Length: > 0 } e ? e.Namespace : null;

    /// <inheritdoc/>
    public string? ExportedBy(string name) => _exports?.Find(name)?.ModuleName;

    /// <inheritdoc/>
    /// <remarks>Decided by content (<see cref="ContentMatcher"/>): when no copy of the name in the
    /// parent has the unit's code, the linker kept another (strong) definition. Without a content
    /// matcher (a kallsyms dump) this cannot be told and the answer is false; run-pre verification
    /// then compares the replaced function with what the kernel runs.</remarks>
    public bool RunsOtherDefinition(ElfSymbol weakDefinition, ElfFile origObject)
    {
        if (ContentMatcher is not { } matches || weakDefinition.Type != STT_FUNC)
            return false;
        var all = _symbols.IndicesOf(weakDefinition.Name).ToArray();
        return all.Length > 0 && !all.Any(i => matches(weakDefinition, origObject, i));
    }

    /// <inheritdoc/>
    public int Sympos(ElfSymbol symbol, ElfFile origObject)
    {
        var all = _symbols.IndicesOf(symbol.Name).ToArray();
        if (all.Length == 0)
            throw new LivegraftException(ExitCode.InvalidInput, "LG0109",
                $"'{symbol.Name}' is not in {ObjectName}'s symbols (inlined or discarded there?)", origObject.FileName);
        if (all.Length == 1)
            return 0;
        var indices = all;
        if (ContentMatcher is { } matches && symbol.Type == STT_FUNC)
        {
            var byContent = indices.Where(i => matches(symbol, origObject, i)).ToArray();
            if (byContent.Length == 1)
                return _symbols.SymPos(byContent[0]);
            if (byContent.Length > 1)
                indices = byContent;
        }
        // Score each copy by how many symbols within a window around it carry the name of another
        // function or object of this unit. The window grows with the unit's size.
        var neighbourhood = NeighbourhoodOf(origObject);
        var own = neighbourhood.Names.Contains(symbol.Name);
        var window = (neighbourhood.Names.Count - (own ? 1 : 0)) * 2 + 16;
        var scores = indices.Select(i =>
        {
            var score = CountWithin(neighbourhood.Positions, i - window, i + window);
            if (own)
                score -= CountWithin(all, i - window, i + window);
            return (Index: i, Score: score);
        }).OrderByDescending(x => x.Score).ToList();
        if (scores[0].Score == 0 || scores[0].Score == scores[1].Score)
            throw new LivegraftException(ExitCode.InvalidInput, "LG0110",
                $"'{symbol.Name}' occurs {indices.Length} times in {ObjectName} and its neighbours do not tell which one this object's copy is", origObject.FileName);
        return _symbols.SymPos(scores[0].Index);
    }

    /// <summary>The names of the unit's own functions and objects (without per-build suffixes such as
    /// <c>.constprop.0</c>) and, sorted, every parent index that carries one of them. One diff asks for
    /// many symbols of the same object, so the last one is kept.</summary>
    private Neighbourhood NeighbourhoodOf(ElfFile origObject)
    {
        if (_neighbourhood is { } last && ReferenceEquals(last.Object, origObject))
            return last;
        var names = origObject.SymbolTable!.Symbols
            .Where(s => s.Section is not null && s.Type is STT_FUNC or STT_OBJECT && !s.Name.Contains('.'))
            .Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
        var positions = new List<int>();
        foreach (var name in names)
            positions.AddRange(_symbols.IndicesOf(name));
        var sorted = positions.ToArray();
        Array.Sort(sorted);
        return _neighbourhood = new Neighbourhood(origObject, names, sorted);
    }

    /// <summary>How many of the ascending <paramref name="sorted"/> lie in [<paramref name="low"/>, <paramref name="high"/>].</summary>
    private static int CountWithin(int[] sorted, int low, int high) => LowerBound(sorted, high + 1) - LowerBound(sorted, low);

    private static int LowerBound(int[] sorted, int value)
    {
        var i = Array.BinarySearch(sorted, value);
        if (i < 0)
            return ~i;
        while (i > 0 && sorted[i - 1] == value)
            i--;
        return i;
    }

    private sealed record Neighbourhood(ElfFile Object, HashSet<string> Names, int[] Positions);
}
