using System.Text.RegularExpressions;
using Livegraft.Elf;
using static Livegraft.Elf.ElfNative;

namespace Livegraft.Diff;

/// <summary>Pass 1: pairs each function and object of the patched object with its twin in the
/// original, seeing through gcc's renamed clones, <c>__UNIQUE_ID_</c> counters and static locals.</summary>
internal static partial class Correlate
{
    /// <summary>Statics the compiler or macros create per use site; never matched by name, so each
    /// patched function gets a fresh copy (kpatch's "special static locals").</summary>
    private static readonly string[] SpecialStaticBases =
        ["__already_done", "__warned", "__func__", "__FUNCTION__", "__PRETTY_FUNCTION__", "__key", "_rs", "CSWTCH", "__print_once", "__done", "descriptor", "__once",
         "_entry", "_entry_ptr"];

    private static readonly string[] SpecialStaticPrefixes = ["__UNIQUE_ID_ddebug", "__compound_literal", ".Lubsan_"];

    /// <summary>Sections whose every object is a per-site special static (<c>DO_ONCE</c>'s and
    /// <c>WARN_ONCE</c>'s flags) or per-site UBSAN data.</summary>
    public static bool IsPerSiteSection(string name) =>
        name.StartsWith(".data..once", StringComparison.Ordinal) || name.Contains("..Lubsan_", StringComparison.Ordinal);

    /// <summary>True for a dynamic-debug descriptor's name: <c>__UNIQUE_ID_ddebugN</c>, or clang's
    /// <c>&lt;func&gt;.__UNIQUE_ID_ddebugN</c>.</summary>
    public static bool IsDynamicDebug(string name) =>
        name.StartsWith("__UNIQUE_ID_ddebug", StringComparison.Ordinal) || name.Contains(".__UNIQUE_ID_ddebug", StringComparison.Ordinal)
        || name.StartsWith("descriptor.", StringComparison.Ordinal) || name == "descriptor";

    /// <summary>Special statics whose bytes carry a source line or a per-build counter (dynamic
    /// debug descriptors, printk index entries, UBSAN source locations): two of them are the same
    /// reference when their names match, whatever their contents.</summary>
    public static bool CarriesLine(ElfSymbol s) =>
        IsDynamicDebug(s.Name) || (StaticLocalBase(s) ?? s.Name) is "_entry" || s.Name.StartsWith(".Lubsan_data", StringComparison.Ordinal);

    [GeneratedRegex(@"\.(constprop|isra|part|cold|lto_priv|llvm|specialized)\.\d+")]
    private static partial Regex CloneSuffix();

    [GeneratedRegex(@"^(?<base>[A-Za-z_$][A-Za-z0-9_$]*)\.\d+$")]
    private static partial Regex StaticLocal();

    [GeneratedRegex(@"^(__UNIQUE_ID_\D.*?)\d+$")]
    private static partial Regex UniqueId();

    /// <summary>Name without per-build counters, used to match renamed clones.</summary>
    public static string Normalize(string name)
    {
        var n = CloneSuffix().Replace(name, ".$1");
        var m = UniqueId().Match(n);
        return m.Success ? m.Groups[1].Value : n;
    }

    /// <summary>The base of a function-scope static (<c>count.3</c> → <c>count</c>), or null.</summary>
    public static string? StaticLocalBase(ElfSymbol s)
    {
        if (!s.IsLocal || s.Type != STT_OBJECT)
            return null;
        var m = StaticLocal().Match(s.Name);
        return m.Success ? m.Groups["base"].Value : null;
    }

    /// <summary>True for statics that are never correlated by name.</summary>
    public static bool IsSpecialStatic(ElfSymbol s, IReadOnlySet<string> ignoredStatics)
    {
        if (!s.IsLocal || s.Type is not (STT_OBJECT or STT_NOTYPE))
            return false;
        if (IsDynamicDebug(s.Name) || (s.Section is { } section && IsPerSiteSection(section.Name)))
            return true;
        var baseName = StaticLocalBase(s) ?? s.Name;
        foreach (var b in SpecialStaticBases)
            if (baseName == b)
                return true;
        foreach (var p in SpecialStaticPrefixes)
            if (s.Name.StartsWith(p, StringComparison.Ordinal))
                return true;
        return ignoredStatics.Contains(baseName);
    }

    /// <summary>Runs the pass: returns patched → original twins.</summary>
    public static Dictionary<ElfSymbol, ElfSymbol> Run(ObjectIndex orig, ObjectIndex patched, IReadOnlySet<string> ignoredStatics, List<Diagnostic> refusals)
    {
        var twins = new Dictionary<ElfSymbol, ElfSymbol>(ReferenceEqualityComparer.Instance);
        var taken = new HashSet<ElfSymbol>(ReferenceEqualityComparer.Instance);
        static bool Candidate(ElfSymbol s) => s.Section is not null && s.Type is STT_FUNC or STT_OBJECT;

        var origGlobals = new Dictionary<string, ElfSymbol>(StringComparer.Ordinal);
        var origLocals = new Dictionary<string, List<ElfSymbol>>(StringComparer.Ordinal);
        foreach (var s in orig.Symbols.Symbols)
        {
            if (!Candidate(s))
                continue;
            if (!s.IsLocal)
                origGlobals.TryAdd(s.Name, s);
            else if (StaticLocalBase(s) is null && !IsSpecialStatic(s, ignoredStatics))
                Add(origLocals, Normalize(s.Name), s);
        }
        var patchedLocals = new Dictionary<string, List<ElfSymbol>>(StringComparer.Ordinal);
        var deferred = new List<ElfSymbol>();
        foreach (var s in patched.Symbols.Symbols)
        {
            if (!Candidate(s) || IsSpecialStatic(s, ignoredStatics))
                continue;
            if (!s.IsLocal)
            {
                if (origGlobals.TryGetValue(s.Name, out var o) && o.Type == s.Type)
                    Pair(s, o);
            }
            else if (StaticLocalBase(s) is not null)
                deferred.Add(s);
            else
                Add(patchedLocals, Normalize(s.Name), s);
        }
        foreach (var (key, ps) in patchedLocals)
        {
            if (!origLocals.TryGetValue(key, out var os))
                continue;
            if (ps.Count == 1 && os.Count(o => o.Type == ps[0].Type) == 1)
            {
                Pair(ps[0], os.First(o => o.Type == ps[0].Type));
                continue;
            }
            foreach (var p in ps) // several clones of one function: only exact names are trusted
            {
                var exact = os.Where(o => o.Name == p.Name && o.Type == p.Type).ToList();
                if (exact.Count == 1 && !taken.Contains(exact[0]))
                    Pair(p, exact[0]);
            }
        }

        // Static locals: matched through the functions that reference them.
        var referencedBy = ReferencingFunctions(patched);
        var origReferencedBy = ReferencingFunctions(orig);
        foreach (var s in deferred)
        {
            var baseName = StaticLocalBase(s)!;
            var candidates = new HashSet<ElfSymbol>(ReferenceEqualityComparer.Instance);
            var users = referencedBy.GetValueOrDefault(s) ?? [];
            foreach (var f in users)
            {
                if (!twins.TryGetValue(f, out var of))
                    continue;
                foreach (var r in orig.FunctionRelocations(of))
                    if (r.Target.Kind == TargetKind.Symbol && r.Target.Symbol is { } t && StaticLocalBase(t) == baseName && t.Type == s.Type)
                        candidates.Add(t);
            }
            if (users.Count == 0)
            {
                // Referenced only from data: fall back to a unique name base.
                foreach (var o in orig.Objects)
                    if (StaticLocalBase(o) == baseName && o.Type == s.Type)
                        candidates.Add(o);
                if (candidates.Count > 1)
                    candidates.Clear(); // ambiguous and unused by code: treat as new data
            }
            if (candidates.Count > 1 && PairByUse(s, baseName, users) is { } byUse)
            {
                candidates.Clear();
                candidates.Add(byUse);
            }
            var readOnly = s.Section is { } sec && (sec.Flags & SHF_WRITE) == 0 && sec.Type != SHT_NOBITS;
            if (candidates.Count == 1)
            {
                var o = candidates.First();
                if (taken.Contains(o))
                {
                    if (!readOnly) // a constant can simply be carried as a new copy
                        refusals.Add(new Diagnostic(DiffErrors.StaticLocal, Severity.Error, $"static local '{s.Name}' cannot be matched unambiguously: '{o.Name}' already pairs with another variable", patched.Name, s.Section?.Name));
                }
                else
                    Pair(s, o);
            }
            else if (candidates.Count > 1 && !readOnly)
                refusals.Add(new Diagnostic(DiffErrors.StaticLocal, Severity.Error, $"static local '{s.Name}' is ambiguous: it may be any of {string.Join(", ", candidates.Select(c => c.Name).Order(StringComparer.Ordinal))}", patched.Name, s.Section?.Name));
        }

        // A static local the original code used but the patched code lost.
        foreach (var o in orig.Objects)
        {
            if (StaticLocalBase(o) is null || taken.Contains(o) || IsSpecialStatic(o, ignoredStatics)
                || (o.Section is { } os && (os.Flags & SHF_WRITE) == 0 && os.Type != SHT_NOBITS))
                continue; // a constant has no state to carry over
            var users = origReferencedBy.GetValueOrDefault(o) ?? [];
            var user = users.FirstOrDefault(f => twins.Values.Contains(f, ReferenceEqualityComparer.Instance));
            if (user is not null)
                refusals.Add(new Diagnostic(DiffErrors.StaticLocal, Severity.Error, $"static local '{o.Name}' of '{user.Name}' was removed by the patch; its state cannot be carried over", orig.Name, o.Section?.Name));
        }
        return twins;

        void Pair(ElfSymbol p, ElfSymbol o)
        {
            twins[p] = o;
            taken.Add(o);
        }

        // Several statics of one base name in one function (NL_SET_ERR_MSG's __msg.N, trace events'
        // symbols.N): the k-th one the patched function uses is the k-th one its twin uses, when
        // both use as many and type and size agree.
        ElfSymbol? PairByUse(ElfSymbol s, string baseName, List<ElfSymbol> users)
        {
            foreach (var f in users)
            {
                if (!twins.TryGetValue(f, out var of))
                    continue;
                var mine = UsedInOrder(patched, f, baseName, s.Type);
                var theirs = UsedInOrder(orig, of, baseName, s.Type);
                var k = mine.IndexOf(s);
                if (k < 0 || mine.Count != theirs.Count)
                    continue;
                var o = theirs[k];
                if (o.Size == s.Size && !taken.Contains(o))
                    return o;
            }
            return null;
        }
    }

    /// <summary>The static locals of base <paramref name="baseName"/> that <paramref name="f"/>
    /// references, in the order of their first reference.</summary>
    private static List<ElfSymbol> UsedInOrder(ObjectIndex index, ElfSymbol f, string baseName, byte type)
    {
        var list = new List<ElfSymbol>();
        foreach (var r in index.FunctionRelocations(f))
            if (r.Target.Kind == TargetKind.Symbol && r.Target.Symbol is { } t && t.Type == type && StaticLocalBase(t) == baseName && !list.Contains(t))
                list.Add(t);
        return list;
    }

    private static void Add(Dictionary<string, List<ElfSymbol>> map, string key, ElfSymbol s)
    {
        if (!map.TryGetValue(key, out var list))
            map[key] = list = [];
        list.Add(s);
    }

    /// <summary>For each symbol, the functions whose code refers to it.</summary>
    public static Dictionary<ElfSymbol, List<ElfSymbol>> ReferencingFunctions(ObjectIndex index)
    {
        var map = new Dictionary<ElfSymbol, List<ElfSymbol>>(ReferenceEqualityComparer.Instance);
        foreach (var f in index.Functions)
        {
            if (f.Section is null || f.Section.Type == SHT_NOBITS)
                continue;
            foreach (var r in index.FunctionRelocations(f))
                if (r.Target.Kind == TargetKind.Symbol && r.Target.Symbol is { } t)
                {
                    if (!map.TryGetValue(t, out var list))
                        map[t] = list = [];
                    if (!list.Contains(f))
                        list.Add(f);
                }
        }
        return map;
    }
}
