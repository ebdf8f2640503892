using Livegraft.Elf;
using static Livegraft.Elf.ElfNative;

namespace Livegraft.Diff.Tests;

/// <summary>The differ over the C pairs of cases.txt, compiled at test time.</summary>
public sealed class DifferCaseTests
{
    /// <summary>Every case name.</summary>
    public static TheoryData<string> AllCases => new(CaseTable.Cases.Select(c => c.Name));

    /// <summary>Cases that must produce a patch.</summary>
    public static TheoryData<string> AcceptedCases => new(CaseTable.Cases.Where(c => c.Outcome == Outcome.Accept).Select(c => c.Name));

    [Fact]
    public void TableAndFixturesMatch()
    {
        var dirs = Directory.GetDirectories(FixtureBuild.FixturesDirectory).Select(d => Path.GetFileName(d)!).Order(StringComparer.Ordinal).ToList();
        var names = CaseTable.Cases.Select(c => c.Name).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(dirs, names);
        Assert.Equal(names.Count, names.Distinct(StringComparer.Ordinal).Count());
    }

    [Theory]
    [MemberData(nameof(AllCases))]
    public void Diff(string name)
    {
        var c = CaseTable.Get(name);
        var result = Run(c, out _);
        var refusals = result.Refusals.Select(d => d.Id).Distinct().Order(StringComparer.Ordinal).ToList();
        var context = string.Join('\n', result.Refusals.Concat(result.Notes));
        switch (c.Outcome)
        {
            case Outcome.Refuse:
                Assert.True(refusals.SequenceEqual(c.RefusalIds.Order(StringComparer.Ordinal)), $"expected refusal {string.Join(',', c.RefusalIds)}, got:\n{context}");
                Assert.Null(result.Output);
                return;
            case Outcome.NoChange:
                Assert.True(refusals.Count == 0, context);
                Assert.True(result.NothingChanged, $"changed: {string.Join(' ', result.ChangedFunctions)}; new: {string.Join(' ', result.NewFunctions)}");
                Assert.Null(result.Output);
                break;
            case Outcome.Accept:
                Assert.True(refusals.Count == 0, context);
                Assert.False(result.NothingChanged);
                Assert.NotNull(result.Output);
                break;
        }
        AssertSet(c.List("changed"), result.ChangedFunctions, "changed functions");
        AssertSet(c.List("new"), result.NewFunctions, "new functions");
        AssertSet(c.List("objects"), result.NewObjects, "new objects");
        AssertSet(c.List("notes"), result.Notes.Select(n => n.Id).Distinct(), "notes");
        var obj = result.ObjectName;
        AssertSet(c.List("klp").Select(k => k.Contains(':', StringComparison.Ordinal) ? $".klp.sym.{k.Replace(':', '.')}" : $".klp.sym.{obj}.{k}"), result.KlpRelocations.Select(k => k.SymbolName).Distinct(), "klp relocation symbols");
        AssertSet(c.List("callbacks"), result.Callbacks.Select(k => $"{k.Key}:{k.Value.Count}"), "callbacks");
        AssertSet(c.List("imports"), result.ImportNamespaces, "imported namespaces");
        if (c.Has("funcs"))
            AssertSet(c.List("funcs"), result.Functions.Select(f => $"{f.OldName},{f.Sympos}"), "klp_func entries");
        // Every changed existing function has exactly one klp_func entry, except those patched
        // through their callers (note LG0151); new ones have none.
        if (c.Outcome == Outcome.Accept)
            Assert.Equal(result.ChangedFunctions.Count, result.Functions.Count + result.Notes.Count(n => n.Id == "LG0151"));
    }

    [Theory]
    [MemberData(nameof(AcceptedCases))]
    public void OutputLinksAndPostLinks(string name)
    {
        var c = CaseTable.Get(name);
        var result = Run(c, out var parent);
        Assert.True(result.Output is not null, string.Join('\n', result.Refusals));
        var dir = Path.Combine(FixtureBuild.TempDirectory, name, "out");
        Directory.CreateDirectory(dir);
        var outPath = Path.Combine(dir, "out.o");
        result.Output.Write(outPath);
        AssertReadelfClean(outPath);

        // The generated module code reaches the new code through these global aliases.
        var symbols = ElfFile.Read(outPath).SymbolTable!.Symbols;
        foreach (var alias in result.Functions.Select(f => f.NewSymbol).Concat(result.Callbacks.Values.SelectMany(v => v)))
            Assert.Contains(symbols, s => s.Name == alias && s.Bind == STB_GLOBAL && s.Section is not null);
        // Whatever stays unresolved must be exported or defined by another unit of the patch:
        // everything else goes through klp relocations.
        var others = c.List("module-defines");
        foreach (var s in symbols.Where(s => s.IsUndefined && s.Name.Length > 0))
            Assert.True(parent.IsExported(s.Name) || others.Contains(s.Name), $"'{s.Name}' is undefined in the output but not exported");

        // kbuild links the module objects with ld -r; then the post-link step runs on the .ko.
        // Entries describing included code (ORC, jump tables, bug and exception tables...) refer to
        // the copy: a klp relocation from them to a replaced function would describe the old code.
        var replaced = result.Functions.Select(f => $".klp.sym.{result.ObjectName}.{f.OldName},{f.Sympos}").ToHashSet(StringComparer.Ordinal);
        foreach (var k in result.KlpRelocations)
            Assert.False(!k.Section.StartsWith(".text", StringComparison.Ordinal) && replaced.Contains(k.SymbolName), $"{k.Section} refers to the replaced {k.SymbolName}");

        var ko = Path.Combine(dir, "patch.ko");
        var ld = FixtureBuild.Run("ld", ["-r", "-o", ko, outPath]);
        Assert.True(ld.ExitCode == 0, $"ld -r failed:\n{ld.Stderr}");
        var converted = KlpPostLink.Process(ko);
        Assert.Equal(result.KlpRelocations.Count, converted);
        AssertReadelfClean(ko);

        var module = ElfFile.Read(ko);
        // x86-64 apply_relocate_add refuses to write a field that is not zero (RELA: the addend
        // carries the value), for ordinary and livepatch relocations alike.
        foreach (var rela in module.Sections.OfType<ElfRelocationSection>().Where(r => r.Target is { IsAlloc: true }))
            foreach (var r in rela.Relocations)
                Assert.True(rela.Target!.Data.Span.Slice((int)r.Offset, X86_64RelocationSize(r.Type)).IndexOfAnyExcept((byte)0) < 0,
                    $"{rela.Name}: the field at 0x{r.Offset:x} is not zero");
        Assert.Null(module.FindSection(".livegraft.klp_relocs"));
        Assert.Null(module.FindSection(".livegraft.klp_strs"));
        foreach (var k in result.KlpRelocations)
        {
            var klpName = $".klp.rela.{result.ObjectName}.{k.Section}";
            var rela = module.Sections.OfType<ElfRelocationSection>().SingleOrDefault(s => s.Name == klpName);
            Assert.True(rela is not null, $"no {klpName} in the linked module");
            Assert.Equal(SHF_RELA_LIVEPATCH | SHF_ALLOC, rela.Flags & (SHF_RELA_LIVEPATCH | SHF_ALLOC));
            Assert.Equal(k.Section, rela.Target?.Name);
            var match = rela.Relocations.Where(r => r.Offset == k.Offset && r.Type == k.Type && r.Addend == k.Addend && r.Symbol?.Name == k.SymbolName).ToList();
            Assert.True(match.Count == 1, $"{klpName} lacks {k}");
            Assert.Null(match[0].Symbol!.Section);
            Assert.Equal(SHN_LIVEPATCH, match[0].Symbol!.SpecialIndex);
        }
        foreach (var s in module.SymbolTable!.Symbols.Where(s => s.Name.StartsWith(".klp.sym.", StringComparison.Ordinal)))
            Assert.Equal(SHN_LIVEPATCH, s.SpecialIndex);
        // Nothing that needed a klp relocation may be left undefined for the module loader.
        foreach (var s in module.SymbolTable.Symbols.Where(s => s.IsUndefined && s.Name.Length > 0))
            Assert.True(parent.IsExported(s.Name) || others.Contains(s.Name), $"'{s.Name}' is undefined in the module but not exported");
    }

    private static DiffResult Run(DiffCase c, out TestParent parent)
    {
        var orig = FixtureBuild.Read(c.Name, "orig", c.List("cflags"), c.List("transform"));
        var patched = FixtureBuild.Read(c.Name, "patched", c.List("cflags"), c.List("transform"));
        foreach (var required in c.List("requires"))
            if (orig.SymbolTable!.Find(required) is null || patched.SymbolTable!.Find(required) is null)
                Assert.Skip($"this gcc did not produce '{required}', which the case is about");
        parent = new TestParent(orig, c);
        return Differ.Run(orig, patched, new DiffOptions
        {
            Parent = parent,
            OrigName = $"{c.Name}/orig.o",
            PatchedName = $"{c.Name}/patched.o",
            Sizes = c.Columns.TryGetValue("sizes", out var sizes) ? SizesOverride.Parse(sizes, SpecialSectionSizes.Linux61) : SpecialSectionSizes.Linux61,
            ModuleDefines = c.List("module-defines").ToHashSet(StringComparer.Ordinal),
        });
    }

    private static void AssertReadelfClean(string path)
    {
        var r = FixtureBuild.Run("readelf", ["-a", "-W", path]);
        Assert.True(r.ExitCode == 0 && r.Stderr.Length == 0, $"readelf -a -W {Path.GetFileName(path)}: exit {r.ExitCode}\n{r.Stderr}");
        var copy = path + ".relinked.o";
        var ld = FixtureBuild.Run("ld", ["-r", "-o", copy, path]);
        Assert.True(ld.ExitCode == 0 && ld.Stderr.Length == 0, $"ld -r {Path.GetFileName(path)}: exit {ld.ExitCode}\n{ld.Stderr}");
    }

    private static void AssertSet(IEnumerable<string> expected, IEnumerable<string> actual, string what)
    {
        var e = expected.Order(StringComparer.Ordinal).ToList();
        var a = actual.Distinct().Order(StringComparer.Ordinal).ToList();
        Assert.True(e.SequenceEqual(a), $"{what}: expected [{string.Join(' ', e)}], got [{string.Join(' ', a)}]");
    }
}
