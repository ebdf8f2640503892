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
    private readonly Lazy<LineTable?> _patchedLines;
    private readonly Lazy<LineTable?> _origLines;

    public Compare(ObjectIndex orig, ObjectIndex patched, Dictionary<ElfSymbol, ElfSymbol> twins, IReadOnlySet<string> ignoredStatics)
    {
        _orig = orig;
        _patched = patched;
        _twins = twins;
        _ignoredStatics = ignoredStatics;
        _patchedLines = new Lazy<LineTable?>(() => LineTable.Read(patched.File));
        _origLines = new Lazy<LineTable?>(() => LineTable.Read(orig.File));
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
        if (a.Kind == TargetKind.Section && a.Section is { } sa && b.Section is { } sb)
        {
            // static_cpu_has's slow path: where the assembler put it in .altinstr_aux moves with
            // every other user of the section.
            if (sa.Name.StartsWith(".altinstr_aux", StringComparison.Ordinal) && sb.Name.StartsWith(".altinstr_aux", StringComparison.Ordinal))
                return true;
            // UBSAN's per-site source locations (renumbered, and their lines move) and type descriptors.
            if (Correlate.IsPerSiteSection(sa.Name) && Correlate.IsPerSiteSection(sb.Name))
                return UbsanKind(sa.Name) == UbsanKind(sb.Name) && a.Offset == b.Offset
                    && (UbsanKind(sa.Name) == "data" || sa.Data.Span.SequenceEqual(sb.Data.Span));
        }
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
                // counter and the contents are the same; for those whose contents carry a line or a
                // counter (dynamic debug, printk index, UBSAN), the names alone decide.
                if (Correlate.IsSpecialStatic(ps, _ignoredStatics) && Correlate.IsSpecialStatic(os, _ignoredStatics))
                    return SpecialName(ps) == SpecialName(os) && ps.Size == os.Size
                        && ((Correlate.CarriesLine(ps) && Correlate.CarriesLine(os)) || ObjectIndex.Bytes(ps).SequenceEqual(ObjectIndex.Bytes(os)));
                return false;
        }
    }

    /// <summary>A special static's name without its per-build counters (<c>__UNIQUE_ID_ddebug123.4</c>
    /// and clang's <c>f.__UNIQUE_ID_ddebug9</c> are both dynamic-debug descriptors).</summary>
    private static string SpecialName(ElfSymbol s) =>
        Correlate.IsDynamicDebug(s.Name) ? "ddebug" : Correlate.Normalize(Correlate.StaticLocalBase(s) ?? s.Name);

    private static string UbsanKind(string section) => section.Contains("..Lubsan_data", StringComparison.Ordinal) ? "data" : "type";

    private bool IsLineOnlyChange(ElfSymbol p, ElfSymbol o, List<ResolvedRelocation> relocations)
    {
        var pi = ObjectIndex.Decode(p);
        var oi = ObjectIndex.Decode(o);
        if (pi.Count != oi.Count)
            return false;
        var pb = ObjectIndex.Bytes(p);
        var ob = ObjectIndex.Bytes(o);
        var candidates = new List<(Instruction Patched, Instruction Orig)>();
        for (var i = 0; i < pi.Count; i++)
        {
            var a = pi[i];
            var b = oi[i];
            if (a.Length != b.Length || a.IP - p.Value != b.IP - o.Value)
                return false;
            var start = (int)(a.IP - p.Value);
            if (pb.Slice(start, a.Length).SequenceEqual(ob.Slice(start, b.Length)))
                continue;
            // Only `mov $imm, %reg` into an argument register may differ, in its immediate, with a
            // call after it: the line argument of that call.
            if (a.Code != b.Code || a.Code is not (Code.Mov_r32_imm32 or Code.Mov_rm32_imm32 or Code.Mov_r64_imm64 or Code.Mov_rm64_imm32 or Code.Mov_r16_imm16))
                return false;
            if (a.Op0Kind != OpKind.Register || a.Op0Register != b.Op0Register || !IsArgumentRegister(a.Op0Register) || NextCall(relocations, a.NextIP) is null)
                return false;
            candidates.Add((a, b));
        }
        // Which calls take __LINE__ is read from the code when it has line tables (read only now,
        // for the rare function that gets this far): an immediate that moved by exactly as much as
        // its statement's line is a line number, whatever the callee. Without line tables, the
        // known takers only (kpatch's rule): a constant elsewhere in a function that also calls
        // printk is a real change.
        if (_patchedLines.Value is { } pl && _origLines.Value is { } ol)
            return candidates.TrueForAll(c => MovedWithItsLine(pl, ol, p, o, c.Patched, c.Orig));
        return candidates.TrueForAll(c => NextCallTakesLine(relocations, c.Patched.NextIP));
    }

    /// <summary>The registers of the first six integer arguments (x86-64 psABI), any width.</summary>
    private static bool IsArgumentRegister(Register r) =>
        r.GetFullRegister() is Register.RDI or Register.RSI or Register.RDX or Register.RCX or Register.R8 or Register.R9;

    /// <summary>True when the immediates of <paramref name="a"/> (patched) and <paramref name="b"/>
    /// (original), an argument of a call, are each within a few lines of the source line of their
    /// own statement (the last row of the function's own file at or before the instruction), and
    /// moved by exactly as much as that line did. Derived from the code, so any callee counts
    /// (<c>__btrfs_abort_transaction</c>, ext4's <c>__ext4_journal_start_sb</c> behind an inline
    /// helper), and a constant that changed where no line moved is a change.</summary>
    private static bool MovedWithItsLine(LineTable patchedLines, LineTable origLines, ElfSymbol p, ElfSymbol o, Instruction a, Instruction b)
    {
        var pl = patchedLines.OwnLineAt(p.Section!, p.Value, p.Value + p.Size, a.IP);
        var ol = origLines.OwnLineAt(o.Section!, o.Value, o.Value + o.Size, b.IP);
        if (pl is not { } pline || ol is not { } oline || pline == oline)
            return false;
        var pi = (long)a.GetImmediate(1);
        var oi = (long)b.GetImmediate(1);
        const int Span = 8; // a statement spread over a few lines
        return pi - oi == pline - oline && Math.Abs(pi - pline) <= Span && Math.Abs(oi - oline) <= Span;
    }

    private static ResolvedRelocation? NextCall(List<ResolvedRelocation> relocations, ulong after)
    {
        foreach (var r in relocations)
            if (r.Offset >= after && r.IsBranch && r.Target.Kind == TargetKind.Symbol)
                return r;
        return null;
    }

    /// <summary>True when the first direct call (PLT32, or PC32 from older binutils) at or after
    /// <paramref name="after"/> goes to a <see cref="LineTakers"/> function.</summary>
    private static bool NextCallTakesLine(List<ResolvedRelocation> relocations, ulong after) =>
        NextCall(relocations, after) is { } r && LineTakers.Contains(r.Target.Symbol!.Name);
}
