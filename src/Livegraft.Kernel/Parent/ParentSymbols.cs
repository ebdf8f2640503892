using Livegraft.Diff;
using Livegraft.Elf;
using Livegraft.Kernel.Symbols;
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

    /// <inheritdoc/>
    public string ObjectName => _symbols.ObjectName;

    /// <inheritdoc/>
    public bool IsExported(string name) => _exports?.Find(name) is not null;

    /// <inheritdoc/>
    public bool Defines(string name) => _symbols.CountOf(name) > 0;

    /// <inheritdoc/>
    public int Sympos(ElfSymbol symbol, ElfFile origObject)
    {
        var indices = _symbols.IndicesOf(symbol.Name).ToArray();
        if (indices.Length == 0)
            throw new LivegraftException(ExitCode.InvalidInput, "LG0109",
                $"'{symbol.Name}' is not in {ObjectName}'s symbols (inlined or discarded there?)", origObject.FileName);
        if (indices.Length == 1)
            return 0;
        if (ContentMatcher is { } matches && symbol.Type == STT_FUNC)
        {
            var byContent = indices.Where(i => matches(symbol, origObject, i)).ToArray();
            if (byContent.Length == 1)
                return _symbols.SymPos(byContent[0]);
            if (byContent.Length > 1)
                indices = byContent;
        }
        var neighbours = origObject.SymbolTable!.Symbols
            .Where(s => s.Section is not null && s.Type is STT_FUNC or STT_OBJECT && s.Name != symbol.Name && !s.Name.Contains('.'))
            .Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
        var window = neighbours.Count * 2 + 16;
        var scores = indices.Select(i =>
        {
            var score = 0;
            for (var k = Math.Max(0, i - window); k < Math.Min(_symbols.Count, i + window + 1); k++)
                if (neighbours.Contains(_symbols.Symbols[k].Name))
                    score++;
            return (Index: i, Score: score);
        }).OrderByDescending(x => x.Score).ToList();
        if (scores[0].Score == 0 || scores[0].Score == scores[1].Score)
            throw new LivegraftException(ExitCode.InvalidInput, "LG0110",
                $"'{symbol.Name}' occurs {indices.Length} times in {ObjectName} and its neighbours do not tell which one this object's copy is", origObject.FileName);
        return _symbols.SymPos(scores[0].Index);
    }
}
