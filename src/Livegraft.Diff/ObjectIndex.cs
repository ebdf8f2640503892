using Iced.Intel;
using Livegraft.Elf;
using static Livegraft.Elf.ElfNative;

namespace Livegraft.Diff;

/// <summary>What a relocation points at once section symbols and addends are resolved.</summary>
internal enum TargetKind
{
    /// <summary>A named symbol (function, object, undefined or special) plus an offset into it.</summary>
    Symbol,
    /// <summary>A NUL-terminated string in a mergeable string section.</summary>
    String,
    /// <summary>A place in a section no symbol describes.</summary>
    Section,
}

/// <summary>A resolved relocation target. <see cref="Offset"/> is the real target offset (for
/// PC-relative code relocations the addend is corrected by the distance from the field to the end of
/// its instruction, decoded with Iced).</summary>
internal readonly record struct Target(TargetKind Kind, ElfSymbol? Symbol, ElfSection? Section, long Offset, string? Text);

/// <summary>A relocation of a function or entry, with its resolved target.</summary>
internal sealed record ResolvedRelocation(ulong Offset, uint Type, long Addend, Target Target, ElfRelocation? Source)
{
    /// <summary>Bytes between the relocated field and the end of its instruction (0 for data).</summary>
    public long Adjust { get; init; }

    /// <summary>The field is the displacement of a direct call or jump (whatever its relocation
    /// type: <c>PLT32</c>, or <c>PC32</c> from binutils before 2.31): control goes there, no address
    /// is taken.</summary>
    public bool IsBranch { get; init; }

    /// <summary>The relocation belongs to a special-section entry or replacement code that
    /// describes included code (ORC, jump tables, alternatives...): it refers to the code as copied,
    /// never to the original a pointer would keep.</summary>
    public bool DescribesCode { get; init; }
}

/// <summary>Index over one object: symbols by section and offset, relocations by target section,
/// decoded instructions of functions.</summary>
internal sealed class ObjectIndex
{
    private readonly Dictionary<ElfSection, ElfSymbol[]> _symbolsBySection = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<ElfSection, ElfRelocation[]> _relocations = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<ElfSymbol, List<ResolvedRelocation>> _functionRelocations = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<ElfSection, ElfSymbol> _sectionSymbols = new(ReferenceEqualityComparer.Instance);

    public ObjectIndex(ElfFile file, string name)
    {
        File = file;
        Name = name;
        Symbols = file.SymbolTable ?? throw new LivegraftException(ExitCode.InvalidInput, DiffErrors.NoSymbolTable, "object has no symbol table", name);
        var bySection = new Dictionary<ElfSection, List<ElfSymbol>>(ReferenceEqualityComparer.Instance);
        foreach (var s in Symbols.Symbols)
        {
            if (s.Section is null || s.IsSectionSymbol || s.Type == STT_FILE)
                continue;
            if (!bySection.TryGetValue(s.Section, out var l))
                bySection[s.Section] = l = [];
            l.Add(s);
        }
        foreach (var (section, list) in bySection)
            _symbolsBySection[section] = list.OrderBy(s => s.Value).ThenByDescending(s => s.Size).ToArray();
        foreach (var s in Symbols.Symbols)
            if (s.IsSectionSymbol && s.Section is not null)
                _sectionSymbols.TryAdd(s.Section, s);
        foreach (var rs in file.Sections.OfType<ElfRelocationSection>())
        {
            if (rs.Target is null || (rs.Flags & SHF_RELA_LIVEPATCH) != 0)
                continue;
            if (!rs.Target.IsAlloc && !rs.Target.Name.StartsWith(".livegraft.", StringComparison.Ordinal))
                continue; // debug info and other non-loaded sections are never compared
            var list = rs.Relocations.OrderBy(r => r.Offset).ToArray();
            _relocations[rs.Target] = _relocations.TryGetValue(rs.Target, out var prev) ? [.. prev.Concat(list).OrderBy(r => r.Offset)] : list;
        }
        Functions = Symbols.Symbols.Where(s => s.IsFunction && s.Section is not null).ToList();
        Objects = Symbols.Symbols.Where(s => s.Type == STT_OBJECT && s.Section is not null).ToList();
    }

    public ElfFile File { get; }
    public string Name { get; }
    public ElfSymbolTable Symbols { get; }
    public List<ElfSymbol> Functions { get; }
    public List<ElfSymbol> Objects { get; }

    /// <summary>Symbols defined in <paramref name="section"/>, by address.</summary>
    public ElfSymbol[] SymbolsIn(ElfSection section) => _symbolsBySection.TryGetValue(section, out var a) ? a : [];

    /// <summary>The section symbol of <paramref name="section"/>, if the object has one.</summary>
    public ElfSymbol? SectionSymbol(ElfSection section) => _sectionSymbols.GetValueOrDefault(section);

    /// <summary>Relocations that apply to <paramref name="section"/>, by offset.</summary>
    public ElfRelocation[] RelocationsOf(ElfSection section) => _relocations.TryGetValue(section, out var a) ? a : [];

    /// <summary>Relocations whose field lies in [start, end) of <paramref name="section"/>.</summary>
    public IEnumerable<ElfRelocation> RelocationsIn(ElfSection section, ulong start, ulong end)
    {
        var all = RelocationsOf(section);
        var lo = 0;
        var hi = all.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) / 2;
            if (all[mid].Offset < start) lo = mid + 1; else hi = mid;
        }
        for (var i = lo; i < all.Length && all[i].Offset < end; i++)
            yield return all[i];
    }

    /// <summary>The function or object covering <paramref name="offset"/> of <paramref name="section"/>.</summary>
    public ElfSymbol? SymbolAt(ElfSection section, long offset)
    {
        ElfSymbol? best = null;
        foreach (var s in SymbolsIn(section))
        {
            if ((long)s.Value > offset)
                break;
            var end = (long)(s.Value + Math.Max(s.Size, 1));
            if (offset < end && (s.Type is STT_FUNC or STT_OBJECT || best is null))
                best = s;
        }
        return best;
    }

    /// <summary>The object or function whose extent ends exactly at <paramref name="offset"/> when
    /// nothing covers that offset, or null.</summary>
    public ElfSymbol? EndingAt(ElfSection section, long offset)
    {
        ElfSymbol? found = null;
        foreach (var s in SymbolsIn(section))
        {
            if ((long)s.Value >= offset)
                break;
            if (s.Size > 0 && (long)(s.Value + s.Size) == offset && s.Type is STT_FUNC or STT_OBJECT)
                found = s;
        }
        return found;
    }

    /// <summary>True when the section holds NUL-terminated strings (SHF_MERGE|SHF_STRINGS).</summary>
    public static bool IsStringSection(ElfSection s) => (s.Flags & (SHF_MERGE | SHF_STRINGS)) == (SHF_MERGE | SHF_STRINGS);

    /// <summary>The bytes of a symbol's extent.</summary>
    public static ReadOnlySpan<byte> Bytes(ElfSymbol s)
    {
        if (s.Section is null || s.Section.Type == SHT_NOBITS)
            return [];
        var data = s.Section.Data.Span;
        var start = (int)Math.Min(s.Value, (ulong)data.Length);
        var len = (int)Math.Min(s.Size, (ulong)(data.Length - start));
        return data.Slice(start, len);
    }

    /// <summary>Reads the string starting at or containing <paramref name="offset"/>; returns its start.</summary>
    public static string StringAt(ElfSection s, long offset, out long start)
    {
        var data = s.Data.Span;
        if (offset < 0 || offset >= data.Length)
        {
            start = offset;
            return "";
        }
        var i = (int)offset;
        while (i > 0 && data[i - 1] != 0)
            i--;
        start = i;
        var end = data[i..].IndexOf((byte)0);
        return System.Text.Encoding.UTF8.GetString(end < 0 ? data[i..] : data.Slice(i, end));
    }

    /// <summary>Decoded instructions of a function (offsets relative to the section).</summary>
    public static List<Instruction> Decode(ElfSymbol function)
    {
        var bytes = Bytes(function).ToArray();
        var decoder = Iced.Intel.Decoder.Create(64, new ByteArrayCodeReader(bytes), function.Value, DecoderOptions.None);
        var list = new List<Instruction>();
        var end = function.Value + (ulong)bytes.Length;
        while (decoder.IP < end)
        {
            decoder.Decode(out var instr);
            list.Add(instr);
        }
        return list;
    }

    /// <summary>The relocations of a function with their targets resolved, plus synthetic ones for
    /// PC-relative references the assembler resolved inside a shared section (they must be
    /// relocated once the function moves to its own section).</summary>
    public List<ResolvedRelocation> FunctionRelocations(ElfSymbol f)
    {
        if (_functionRelocations.TryGetValue(f, out var cached))
            return cached;
        var section = f.Section!;
        var start = f.Value;
        var end = f.Value + f.Size;
        var instructions = Decode(f);
        var result = new List<ResolvedRelocation>();
        var covered = new HashSet<ulong>();
        foreach (var r in RelocationsIn(section, start, end))
        {
            var at = InstructionAt(instructions, r.Offset);
            var adjust = IsPcRelative(r.Type) ? (at is { } i ? (long)i.NextIP : (long)r.Offset + 4) - (long)r.Offset : 0;
            var branch = at is { } b && IsPcRelative(r.Type) && IsDirectBranch(b) && (long)b.NextIP - (long)r.Offset == 4;
            result.Add(new ResolvedRelocation(r.Offset, r.Type, r.Addend, Resolve(r.Symbol, r.Addend + adjust), r) { Adjust = adjust, IsBranch = branch });
            covered.Add(r.Offset);
        }
        if (SymbolsIn(section).Length > 1 || section.Size > f.Size)
        {
            // A shared section (.sched.text, .noinstr.text, .text of assembly): branches to other
            // functions of the same section carry no relocation. Make them explicit.
            var decoderBytes = Bytes(f).ToArray();
            var decoder = Iced.Intel.Decoder.Create(64, new ByteArrayCodeReader(decoderBytes), f.Value, DecoderOptions.None);
            foreach (var instr in instructions)
            {
                var offsets = decoder.GetConstantOffsets(instr);
                ulong target;
                int fieldInInstr;
                if ((instr.IsCallNear || instr.IsJmpNear || instr.IsJccNear) && instr.Op0Kind is OpKind.NearBranch64 && offsets.ImmediateSize == 4)
                {
                    target = instr.NearBranch64;
                    fieldInInstr = offsets.ImmediateOffset;
                }
                else if (instr.IsIPRelativeMemoryOperand && offsets.DisplacementSize == 4)
                {
                    target = instr.IPRelativeMemoryAddress;
                    fieldInInstr = offsets.DisplacementOffset;
                }
                else
                    continue;
                var field = instr.IP + (ulong)fieldInInstr;
                if (covered.Contains(field) || (target >= start && target < end))
                    continue;
                var adjust = (long)(instr.NextIP - field);
                var sym = SectionSymbol(section);
                if (sym is null)
                    continue;
                var synthetic = new ResolvedRelocation(field, R_X86_64_PC32, (long)target - adjust, Resolve(sym, (long)target), null) { Adjust = adjust, IsBranch = IsDirectBranch(instr) };
                result.Add(synthetic);
            }
            result.Sort((a, b) => a.Offset.CompareTo(b.Offset));
        }
        _functionRelocations[f] = result;
        return result;
    }

    private static bool IsPcRelative(uint type) => X86_64IsPcRelative(type);

    /// <summary>The decoded instruction holding <paramref name="field"/>, or null (data in text:
    /// the field's own end is then the instruction end).</summary>
    private static Instruction? InstructionAt(List<Instruction> instructions, ulong field)
    {
        var lo = 0;
        var hi = instructions.Count - 1;
        while (lo <= hi)
        {
            var mid = (lo + hi) / 2;
            var ins = instructions[mid];
            if (field < ins.IP) hi = mid - 1;
            else if (field >= ins.NextIP) lo = mid + 1;
            else return ins;
        }
        return null;
    }

    private static bool IsDirectBranch(in Instruction i) => (i.IsCallNear || i.IsJmpNear || i.IsJccNear) && i.Op0Kind is OpKind.NearBranch64;

    /// <summary>Resolves a symbol plus real offset into a comparable target.</summary>
    public Target Resolve(ElfSymbol? symbol, long realOffset)
    {
        if (symbol is null)
            return new Target(TargetKind.Section, null, null, realOffset, null);
        if (!symbol.IsSectionSymbol && symbol.Type == STT_NOTYPE && symbol.IsLocal && symbol.Section is not null)
        {
            // A compiler label (.LC6 in .rodata.cst2): its name is a per-build counter, so resolve
            // it through its section like a section symbol.
            return ResolveInSection(symbol.Section, (long)symbol.Value + realOffset);
        }
        if (!symbol.IsSectionSymbol)
        {
            if (symbol.Section is not null && IsStringSection(symbol.Section))
            {
                var text = StringAt(symbol.Section, (long)symbol.Value + realOffset, out var begin);
                return new Target(TargetKind.String, null, symbol.Section, (long)symbol.Value + realOffset - begin, text);
            }
            return new Target(TargetKind.Symbol, symbol, symbol.Section, realOffset, null);
        }
        return ResolveInSection(symbol.Section!, realOffset);
    }

    private Target ResolveInSection(ElfSection section, long realOffset)
    {
        if (IsStringSection(section))
        {
            var text = StringAt(section, realOffset, out var begin);
            return new Target(TargetKind.String, null, section, realOffset - begin, text);
        }
        var covering = SymbolAt(section, realOffset);
        if (covering is not null && covering.Type is STT_FUNC or STT_OBJECT)
            return new Target(TargetKind.Symbol, covering, section, realOffset - (long)covering.Value, null);
        // One past the end (&tbl[N], ARRAY_SIZE loops) belongs to the object it ends, not to
        // whatever the linker puts next.
        if (EndingAt(section, realOffset) is { } ending)
            return new Target(TargetKind.Symbol, ending, section, realOffset - (long)ending.Value, null);
        if ((section.Flags & SHF_MERGE) != 0 && section.EntrySize > 0 && section.Type != SHT_NOBITS)
        {
            // A mergeable constant pool (.rodata.cst8): what matters is the constant, not where the
            // assembler put it, so other constants coming and going do not count as a change.
            var size = (long)section.EntrySize;
            var start = realOffset - realOffset % size;
            var data = section.Data.Span;
            var text = start >= 0 && start + size <= data.Length ? Convert.ToHexString(data.Slice((int)start, (int)size)) : null;
            return new Target(TargetKind.Section, null, section, realOffset, text is null ? null : "cst:" + text);
        }
        return new Target(TargetKind.Section, null, section, realOffset, null);
    }

    /// <summary>The fentry call offset of a function, or -1 when it has none. A site is the call
    /// to <c>__fentry__</c> at the entry (after an ENDBR), whatever its relocation type:
    /// <c>PLT32</c>, <c>PC32</c> (older binutils) or <c>R_X86_64_NONE</c> over a 5-byte NOP
    /// (recordmcount, objtool <c>--mnop</c>); or, with no relocation at all, a 5-byte NOP that a
    /// <c>__mcount_loc</c> entry points at (<c>-mnop-mcount</c>, clang).</summary>
    public long FentryOffset(ElfSymbol f) => FentrySite(f).Offset;

    /// <summary>The fentry site of a function: its offset (-1 when none) and whether the code holds
    /// a NOP there instead of the call (the output must carry the call: ftrace expects one).</summary>
    public (long Offset, bool Nop) FentrySite(ElfSymbol f)
    {
        foreach (var r in FunctionRelocations(f))
        {
            if (r.Offset > f.Value + 8)
                break;
            if (r.Target.Kind == TargetKind.Symbol && r.Target.Symbol!.Name is "__fentry__" or "__mcount" && r.Offset is var o && (o == f.Value + 1 || o == f.Value + 5))
                return ((long)(o - f.Value - 1), r.Type == R_X86_64_NONE);
        }
        _mcountSites ??= McountSites();
        foreach (var at in (ReadOnlySpan<ulong>)[f.Value, f.Value + 4])
            if (_mcountSites.Contains((f.Section!, at)) && Bytes(f) is var code && (int)(at - f.Value) + 5 <= code.Length
                && code.Slice((int)(at - f.Value), 5).SequenceEqual(Nop5))
                return ((long)(at - f.Value), true);
        return (-1, false);
    }

    /// <summary>The 5-byte NOP (<c>nopl 0x0(%rax,%rax,1)</c>) compilers and objtool write over fentry calls.</summary>
    private static ReadOnlySpan<byte> Nop5 => [0x0f, 0x1f, 0x44, 0x00, 0x00];

    private HashSet<(ElfSection, ulong)>? _mcountSites;

    private HashSet<(ElfSection, ulong)> McountSites()
    {
        var sites = new HashSet<(ElfSection, ulong)>();
        foreach (var section in File.Sections)
        {
            if (section.Name is not ("__mcount_loc" or "__patchable_function_entries"))
                continue;
            foreach (var r in RelocationsOf(section))
                if (r.Symbol?.Section is { } target)
                    sites.Add((target, (ulong)((long)(r.Symbol.IsSectionSymbol ? 0 : r.Symbol.Value) + r.Addend)));
        }
        return sites;
    }
}
