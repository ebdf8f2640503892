using Iced.Intel;
using Livegraft.Elf;
using static Livegraft.Elf.ElfNative;

namespace Livegraft.Diff;

/// <summary>Pass 2: relocation-aware comparison of paired functions and objects.</summary>
internal sealed class Compare
{
    /// <summary>Functions that take <c>__LINE__</c> as an argument: a change that only moves the
    /// immediate loaded for them is not a change (kpatch's line-macro rule).</summary>
    private static readonly HashSet<string> LineTakers = new(StringComparer.Ordinal)
    {
        "__might_sleep", "___might_sleep", "__might_resched", "__might_fault", "__cant_sleep", "__cant_migrate",
        "__warn_printk", "warn_slowpath_fmt", "_printk", "printk", "lockdep_rcu_suspicious", "__might_resched_precision",
        "__dynamic_pr_debug", "__dynamic_dev_dbg", "__warn", "___ratelimit", "__kasan_check_read",
    };

    private readonly ObjectIndex _orig;
    private readonly ObjectIndex _patched;
    private readonly Dictionary<ElfSymbol, ElfSymbol> _twins;
    private readonly IReadOnlySet<string> _ignoredStatics;

    public Compare(ObjectIndex orig, ObjectIndex patched, Dictionary<ElfSymbol, ElfSymbol> twins, IReadOnlySet<string> ignoredStatics)
    {
        _orig = orig;
        _patched = patched;
        _twins = twins;
        _ignoredStatics = ignoredStatics;
    }

    /// <summary>True when only <c>__LINE__</c>-style immediates differ (set by <see cref="SameFunction"/>).</summary>
    public bool LastWasLineOnly { get; private set; }

    /// <summary>Compares a patched function with its twin.</summary>
    public bool SameFunction(ElfSymbol p, ElfSymbol o)
    {
        LastWasLineOnly = false;
        if (p.Size != o.Size)
            return false;
        var pr = _patched.FunctionRelocations(p);
        var or = _orig.FunctionRelocations(o);
        if (pr.Count != or.Count)
            return false;
        var mask = new bool[(int)p.Size];
        for (var i = 0; i < pr.Count; i++)
        {
            var a = pr[i];
            var b = or[i];
            if (a.Offset - p.Value != b.Offset - o.Value || a.Type != b.Type || a.Adjust != b.Adjust || !SameTarget(a.Target, b.Target))
                return false;
            var at = (int)(a.Offset - p.Value);
            var size = Math.Max(1, X86_64RelocationSize(a.Type));
            for (var k = at; k < at + size && k < mask.Length; k++)
                mask[k] = true;
        }
        var pb = ObjectIndex.Bytes(p);
        var ob = ObjectIndex.Bytes(o);
        if (pb.Length != ob.Length)
            return false;
        var differs = false;
        for (var i = 0; i < pb.Length && !differs; i++)
            differs = !mask[i] && pb[i] != ob[i];
        if (!differs)
            return true;
        if (IsLineOnlyChange(p, o, pr))
        {
            LastWasLineOnly = true;
            return true;
        }
        return false;
    }

    /// <summary>Compares a patched data object with its twin (bytes and resolved relocations).</summary>
    public bool SameObject(ElfSymbol p, ElfSymbol o)
    {
        if (p.Size != o.Size || (p.Section!.Type == SHT_NOBITS) != (o.Section!.Type == SHT_NOBITS))
            return false;
        var pr = DataRelocations(_patched, p);
        var or = DataRelocations(_orig, o);
        if (pr.Count != or.Count)
            return false;
        var mask = new bool[(int)p.Size];
        for (var i = 0; i < pr.Count; i++)
        {
            var a = pr[i];
            var b = or[i];
            if (a.Offset - p.Value != b.Offset - o.Value || a.Type != b.Type || !SameTarget(a.Target, b.Target))
                return false;
            var at = (int)(a.Offset - p.Value);
            for (var k = at; k < at + Math.Max(1, X86_64RelocationSize(a.Type)) && k < mask.Length; k++)
                mask[k] = true;
        }
        var pb = ObjectIndex.Bytes(p);
        var ob = ObjectIndex.Bytes(o);
        for (var i = 0; i < pb.Length; i++)
            if (!mask[i] && pb[i] != ob[i])
                return false;
        return true;
    }

    /// <summary>Relocations inside a data symbol's extent, resolved (no instruction adjustment).</summary>
    public static List<ResolvedRelocation> DataRelocations(ObjectIndex index, ElfSymbol s)
    {
        var list = new List<ResolvedRelocation>();
        foreach (var r in index.RelocationsIn(s.Section!, s.Value, s.Value + Math.Max(s.Size, 1)))
            list.Add(new ResolvedRelocation(r.Offset, r.Type, r.Addend, index.Resolve(r.Symbol, r.Addend), r));
        return list;
    }

    private bool SameTarget(Target a, Target b)
    {
        if (a.Kind != b.Kind)
            return false;
        if (a.Kind == TargetKind.Section && a.Text is not null && b.Text is not null && a.Section is not null && b.Section is not null)
            return a.Text == b.Text && a.Offset % (long)Math.Max(1UL, a.Section.EntrySize) == b.Offset % (long)Math.Max(1UL, b.Section.EntrySize);
        if (a.Offset != b.Offset)
            return false;
        switch (a.Kind)
        {
            case TargetKind.String:
                return a.Text == b.Text;
            case TargetKind.Section:
                return a.Section is not null && b.Section is not null && a.Section.Name == b.Section.Name
                    && a.Section.Data.Span.SequenceEqual(b.Section.Data.Span);
            default:
                var ps = a.Symbol!;
                var os = b.Symbol!;
                if (ps.IsUndefined || os.IsUndefined || ps.Section is null || os.Section is null)
                    return ps.Section is null && os.Section is null && ps.Name == os.Name && ps.SpecialIndex == os.SpecialIndex;
                if (_twins.TryGetValue(ps, out var twin))
                    return ReferenceEquals(twin, os);
                // Per-site statics (__already_done.3 vs .5): equal when the names match up to the
                // counter and the contents are the same.
                if (Correlate.IsSpecialStatic(ps, _ignoredStatics) && Correlate.IsSpecialStatic(os, _ignoredStatics))
                    return (Correlate.StaticLocalBase(ps) ?? ps.Name) == (Correlate.StaticLocalBase(os) ?? os.Name)
                        && ps.Size == os.Size && ObjectIndex.Bytes(ps).SequenceEqual(ObjectIndex.Bytes(os));
                return false;
        }
    }

    private static bool IsLineOnlyChange(ElfSymbol p, ElfSymbol o, List<ResolvedRelocation> relocations)
    {
        if (!relocations.Any(r => r.Target.Kind == TargetKind.Symbol && LineTakers.Contains(r.Target.Symbol!.Name)))
            return false;
        var pi = ObjectIndex.Decode(p);
        var oi = ObjectIndex.Decode(o);
        if (pi.Count != oi.Count)
            return false;
        var pb = ObjectIndex.Bytes(p);
        var ob = ObjectIndex.Bytes(o);
        for (var i = 0; i < pi.Count; i++)
        {
            var a = pi[i];
            var b = oi[i];
            if (a.Length != b.Length || a.IP - p.Value != b.IP - o.Value)
                return false;
            var start = (int)(a.IP - p.Value);
            if (pb.Slice(start, a.Length).SequenceEqual(ob.Slice(start, b.Length)))
                continue;
            // Only `mov $imm, %reg` (the line argument) may differ, in its immediate.
            if (a.Code != b.Code || a.Code is not (Code.Mov_r32_imm32 or Code.Mov_rm32_imm32 or Code.Mov_r64_imm64 or Code.Mov_rm64_imm32 or Code.Mov_r16_imm16))
                return false;
            if (a.Op0Kind != OpKind.Register || a.Op0Register != b.Op0Register)
                return false;
            // ...and only when it is an argument of the next call, which must take __LINE__
            // (kpatch's rule): a constant elsewhere in a function that also calls printk is a real change.
            if (!NextCallTakesLine(relocations, a.NextIP))
                return false;
        }
        return true;
    }

    /// <summary>True when the first call (PLT32) at or after <paramref name="after"/> goes to a <see cref="LineTakers"/> function.</summary>
    private static bool NextCallTakesLine(List<ResolvedRelocation> relocations, ulong after)
    {
        foreach (var r in relocations)
            if (r.Offset >= after && r.Type == R_X86_64_PLT32 && r.Target.Kind == TargetKind.Symbol)
                return LineTakers.Contains(r.Target.Symbol!.Name);
        return false;
    }
}
