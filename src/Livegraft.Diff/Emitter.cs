using System.Buffers.Binary;
using Livegraft.Elf;
using static Livegraft.Elf.ElfNative;

namespace Livegraft.Diff;

/// <summary>Pass 4: builds the output object from the included functions and objects, mapping every
/// reference either into the output, to an exported symbol (normal relocation) or to a livepatch
/// symbol (recorded in <c>.livegraft.klp_relocs</c>, turned into <c>.klp.rela.*</c> after the module link).</summary>
internal sealed class Emitter
{
    private readonly DiffRun _run;
    private readonly ElfFile _out = new();
    private readonly ElfSymbolTable _symtab;
    private readonly Dictionary<ElfSymbol, ElfSymbol> _included = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<string, ElfSymbol> _externals = new(StringComparer.Ordinal);
    private readonly Dictionary<ElfSection, ElfSymbol> _sectionSymbols = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<ElfSection, (ElfSection Section, ElfSymbol Symbol)> _copiedSections = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<string, (ElfSection Section, List<byte> Bytes, Dictionary<string, int> Offsets)> _strings = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DataSectionBuilder> _data = new(StringComparer.Ordinal);
    private readonly Dictionary<ElfSection, ElfRelocationSection> _relas = new(ReferenceEqualityComparer.Instance);
    private readonly Queue<Action> _work = new();
    private readonly List<(ElfSection Section, ulong Offset, uint Type, string Name, long Addend)> _klp = [];
    private readonly HashSet<string> _sectionNames = new(StringComparer.Ordinal);
    private readonly List<(ElfSection Section, ulong Offset, int Size)> _clears = [];

    /// <summary>How the restored fentry call's undefined <c>__fentry__</c> is bound (it is exported
    /// by vmlinux: the site ftrace needs, not a reference of the patched code).</summary>
    private static readonly ElfSymbol FentryLike = new() { Name = "__fentry__", Bind = STB_GLOBAL };

    public Emitter(DiffRun run)
    {
        _run = run;
        _symtab = _out.SymbolTable!;
    }

    /// <summary>Functions included so far (patched symbol → output symbol).</summary>
    public IReadOnlyDictionary<ElfSymbol, ElfSymbol> Included => _included;

    public IReadOnlyList<(ElfSection Section, ulong Offset, uint Type, string Name, long Addend)> KlpRelocations => _klp;

    /// <summary>Runs queued work until nothing is left (including pulls in what it references).</summary>
    public void Drain()
    {
        while (_work.TryDequeue(out var next))
            next();
    }

    /// <summary>Includes a function or data object of the patched object; returns its output symbol.</summary>
    public ElfSymbol Include(ElfSymbol p)
    {
        if (_included.TryGetValue(p, out var existing))
            return existing;
        if (_run.Elements[p] is { } element)
            element.Included = true;
        return p.IsFunction ? IncludeFunction(p) : IncludeObject(p);
    }

    private string UniqueSectionName(string name)
    {
        var candidate = name;
        for (var i = 1; !_sectionNames.Add(candidate); i++)
            candidate = $"{name}.{i}";
        return candidate;
    }

    private ElfSymbol IncludeFunction(ElfSymbol f)
    {
        var src = f.Section!;
        var ownsSection = f.Value == 0 && f.Size == src.Size && _run.Patched.SymbolsIn(src).Count(s => s.IsFunction) == 1;
        var name = UniqueSectionName(ownsSection ? src.Name : ".text." + f.Name);
        var bytes = ObjectIndex.Bytes(f).ToArray();
        var (fentry, nop) = _run.Patched.FentrySite(f);
        if (nop)
        {
            // ftrace expects the call it NOPs itself when it registers our __mcount_loc: put the
            // call back where recordmcount, objtool --mnop or -mnop-mcount wrote a NOP.
            bytes[fentry] = 0xe8;
            bytes.AsSpan((int)fentry + 1, 4).Clear();
        }
        var section = _out.AddSection(new ElfSection(name, SHT_PROGBITS)
        {
            Flags = SHF_ALLOC | SHF_EXECINSTR,
            Alignment = Math.Max(1, src.Alignment),
            Data = bytes,
        });
        var sym = new ElfSymbol { Name = f.Name, Type = STT_FUNC, Bind = f.IsLocal ? STB_LOCAL : f.Bind, Other = f.Other, Section = section, Size = f.Size };
        if (_run.Elements.Is(f, ChangeKind.Changed))
            sym.Bind = STB_LOCAL; // the kernel keeps the old one; ours is reached through klp_func only
        _symtab.Symbols.Add(sym);
        _included[f] = sym;
        _run.Result.Included.Add(f.Name);
        _work.Enqueue(() =>
        {
            var restored = false;
            foreach (var r in _run.Patched.FunctionRelocations(f))
            {
                if (nop && r.Offset == f.Value + (ulong)fentry + 1)
                {
                    Relocate(section, r.Offset - f.Value, r with { Type = R_X86_64_PLT32, IsBranch = true, Target = r.Target with { Offset = 0 } }, 4, $"{f.Name}+0x{r.Offset - f.Value:x}");
                    restored = true;
                }
                else if (r.Type != R_X86_64_NONE) // R_X86_64_NONE: nothing to apply (psABI)
                    Relocate(section, r.Offset - f.Value, r, r.Adjust, $"{f.Name}+0x{r.Offset - f.Value:x}");
            }
            if (nop && !restored)
                RelaFor(section).Relocations.Add(new ElfRelocation { Offset = (ulong)fentry + 1, Type = R_X86_64_PLT32, Symbol = External("__fentry__", FentryLike), Addend = -4 });
        });
        return sym;
    }

    private ElfSymbol IncludeObject(ElfSymbol o)
    {
        var src = o.Section!;
        if (!_data.TryGetValue(src.Name, out var builder))
        {
            var section = src.Type == SHT_NOBITS
                ? (ElfSection)new ElfNoBitsSection(UniqueSectionName(src.Name), 0)
                : new ElfSection(UniqueSectionName(src.Name), src.Type);
            section.Flags = src.Flags & ~SHF_GROUP;
            section.Alignment = Math.Max(1, src.Alignment);
            section.EntrySize = src.EntrySize;
            _out.AddSection(section);
            _data[src.Name] = builder = new DataSectionBuilder(section);
        }
        var align = Math.Max(1UL, src.Alignment);
        var offset = builder.Append(ObjectIndex.Bytes(o), o.Size, align);
        var sym = new ElfSymbol { Name = o.Name, Type = o.Type, Bind = o.Bind, Other = o.Other, Section = builder.Section, Value = offset, Size = o.Size };
        _symtab.Symbols.Add(sym);
        _included[o] = sym;
        _run.Result.Included.Add(o.Name);
        if (!_run.Twins.ContainsKey(o))
            _run.Result.NewObjects.Add(o.Name);
        if (src.Type != SHT_NOBITS)
        {
            var relocations = Compare.DataRelocations(_run.Patched, o);
            _work.Enqueue(() =>
            {
                foreach (var r in relocations)
                    Relocate(builder.Section, offset + (r.Offset - o.Value), r, 0, $"{o.Name}+0x{r.Offset - o.Value:x}");
            });
        }
        return sym;
    }

    /// <summary>Copies a whole section no symbol describes (constant pools, jump tables).</summary>
    private (ElfSection Section, ElfSymbol Symbol) CopySection(ElfSection src)
    {
        if (_copiedSections.TryGetValue(src, out var existing))
            return existing;
        var bytes = src.Data.ToArray();
        var section = src.Type == SHT_NOBITS
            ? (ElfSection)new ElfNoBitsSection(UniqueSectionName(src.Name), src.Size)
            : new ElfSection(UniqueSectionName(src.Name), src.Type) { Data = bytes };
        section.Flags = src.Flags & ~SHF_GROUP;
        section.Alignment = src.Alignment;
        section.EntrySize = src.EntrySize;
        _out.AddSection(section);
        var sym = SectionSymbol(section);
        _copiedSections[src] = (section, sym);
        _work.Enqueue(() =>
        {
            foreach (var r in _run.Patched.RelocationsOf(src))
            {
                var resolved = new ResolvedRelocation(r.Offset, r.Type, r.Addend, _run.Patched.Resolve(r.Symbol, r.Addend), r);
                Relocate(section, r.Offset, resolved, 0, $"{src.Name}+0x{r.Offset:x}");
            }
        });
        return (section, sym);
    }

    /// <summary>The output section symbol of an output section.</summary>
    public ElfSymbol SectionSymbolOf(ElfSection section) => SectionSymbol(section);

    private ElfSymbol SectionSymbol(ElfSection section)
    {
        if (_sectionSymbols.TryGetValue(section, out var s))
            return s;
        s = new ElfSymbol { Type = STT_SECTION, Bind = STB_LOCAL, Section = section };
        _symtab.Symbols.Add(s);
        _sectionSymbols[section] = s;
        return s;
    }

    private ElfRelocationSection RelaFor(ElfSection section)
    {
        if (!_relas.TryGetValue(section, out var rela))
        {
            rela = _out.AddSection(new ElfRelocationSection(".rela" + section.Name, section, _symtab));
            _relas[section] = rela;
        }
        return rela;
    }

    /// <summary>Where a reference goes in the output: an output or undefined symbol, or a klp name;
    /// neither when the reference was refused.</summary>
    internal readonly record struct Mapped(ElfSymbol? Symbol, string? KlpName, long Offset)
    {
        public bool Refused => Symbol is null && KlpName is null;
    }

    /// <summary>Carries out the reference policy's decision for a resolved patched-object target;
    /// <paramref name="toCode"/> when the reference goes to code as such (a call or jump, or an
    /// entry describing included code) rather than taking an address.</summary>
    public Mapped Map(Target t, bool toCode, string where)
    {
        var d = _run.Policy.Decide(t, toCode, where);
        switch (d.Action)
        {
            case ReferenceAction.Copy:
                switch (d.CopyKind)
                {
                    case CopyKind.String:
                        return new Mapped(StringSymbol(t.Section!, t.Text!, out var at), null, at + t.Offset);
                    case CopyKind.Section:
                        return new Mapped(CopySection(d.Section!).Symbol, null, d.SectionOffset + t.Offset);
                    default:
                        return new Mapped(Include(d.Element!), null, t.Offset);
                }
            case ReferenceAction.Normal:
                return new Mapped(External(d.Name!, d.Like!), null, t.Offset);
            case ReferenceAction.Livepatch:
                return new Mapped(null, d.KlpSymbol, t.Offset);
            default:
                return new Mapped(null, null, t.Offset);
        }
    }

    private ElfSymbol External(string name, ElfSymbol like)
    {
        if (_externals.TryGetValue(name, out var s))
            return s;
        s = new ElfSymbol { Name = name, Bind = like.Bind == STB_WEAK ? STB_WEAK : STB_GLOBAL, Type = STT_NOTYPE, SpecialIndex = SHN_UNDEF };
        _symtab.Symbols.Add(s);
        _externals[name] = s;
        return s;
    }

    private ElfSymbol StringSymbol(ElfSection src, string text, out long offset)
    {
        if (!_strings.TryGetValue(src.Name, out var table))
        {
            var section = _out.AddSection(new ElfSection(UniqueSectionName(src.Name), SHT_PROGBITS)
            {
                Flags = src.Flags & ~SHF_GROUP,
                Alignment = src.Alignment,
                EntrySize = src.EntrySize,
            });
            _strings[src.Name] = table = (section, [], new Dictionary<string, int>(StringComparer.Ordinal));
        }
        if (!table.Offsets.TryGetValue(text, out var at))
        {
            var align = (int)Math.Max(1UL, src.Alignment);
            while (table.Bytes.Count % align != 0)
                table.Bytes.Add(0);
            at = table.Bytes.Count;
            table.Bytes.AddRange(System.Text.Encoding.UTF8.GetBytes(text));
            table.Bytes.Add(0);
            table.Offsets[text] = at;
        }
        offset = at;
        return SectionSymbol(table.Section);
    }

    /// <summary>Emits one relocation of included code or data into the output.</summary>
    public void Relocate(ElfSection section, ulong offset, ResolvedRelocation r, long adjust, string where)
    {
        if (r.Type == R_X86_64_NONE)
            return; // nothing to apply (psABI); fentry sites are handled by IncludeFunction
        var size = X86_64RelocationSize(r.Type);
        if (size == 0)
        {
            _run.Policy.Refuse(DiffErrors.UnsupportedRelocation, $"unsupported relocation type {r.Type} at {where}", where);
            return;
        }
        var mapped = Map(r.Target, r.IsBranch || r.DescribesCode, where);
        if (mapped.Refused)
            return;
        // RELA: the addend carries the value, and x86-64 apply_relocate_add refuses a field that is
        // not zero. Cleared in Finish, once every data section has its final bytes (Map above may
        // have appended to the very section this field lives in).
        _clears.Add((section, offset, size));
        var addend = mapped.Offset - adjust;
        if (mapped.KlpName is not null)
        {
            _klp.Add((section, offset, r.Type, mapped.KlpName, addend));
            return;
        }
        RelaFor(section).Relocations.Add(new ElfRelocation { Offset = offset, Type = r.Type, Symbol = mapped.Symbol!, Addend = addend });
    }

    /// <summary>Appends a special-section entry (bytes plus relocations, <paramref name="length"/>
    /// bytes zero-padded to <paramref name="entrySize"/>) to the output section of that name;
    /// <paramref name="keep"/> filters the relocations.</summary>
    public (ElfSection Section, ulong Offset) AppendEntry(ElfSection src, ulong entryOffset, int length, int entrySize, Func<ElfRelocation, bool>? keep = null)
    {
        if (!_data.TryGetValue(src.Name, out var builder))
        {
            var section = new ElfSection(UniqueSectionName(src.Name), src.Type) { Flags = src.Flags & ~SHF_GROUP, Alignment = src.Alignment, EntrySize = src.EntrySize };
            _out.AddSection(section);
            _data[src.Name] = builder = new DataSectionBuilder(section);
        }
        var at = builder.Append(src.Data.Span.Slice((int)entryOffset, length), (ulong)entrySize, 1);
        var relocations = _run.Patched.RelocationsIn(src, entryOffset, entryOffset + (ulong)length).ToList();
        foreach (var rel in relocations)
        {
            if (keep is not null && !keep(rel))
                continue;
            var r = new ResolvedRelocation(rel.Offset, rel.Type, rel.Addend, _run.Patched.Resolve(rel.Symbol, rel.Addend), rel) { DescribesCode = true };
            Relocate(builder.Section, at + (rel.Offset - entryOffset), r, 0, $"{src.Name}+0x{rel.Offset:x}");
        }
        return (builder.Section, at);
    }

    /// <summary>Appends raw bytes to a named output section (used for .altinstr_replacement code and __mcount_loc).</summary>
    public (ElfSection Section, ulong Offset) AppendRaw(string name, uint type, ulong flags, ulong alignment, ReadOnlySpan<byte> bytes)
    {
        if (!_data.TryGetValue(name, out var builder))
        {
            var section = new ElfSection(UniqueSectionName(name), type) { Flags = flags, Alignment = alignment };
            _out.AddSection(section);
            _data[name] = builder = new DataSectionBuilder(section);
        }
        var at = builder.Append(bytes, (ulong)bytes.Length, 1);
        return (builder.Section, at);
    }

    /// <summary>Adds a relocation against an output symbol directly.</summary>
    public void AddRelocation(ElfSection section, ulong offset, uint type, ElfSymbol symbol, long addend) =>
        RelaFor(section).Relocations.Add(new ElfRelocation { Offset = offset, Type = type, Symbol = symbol, Addend = addend });

    /// <summary>Adds a global alias of an output symbol, for the generated module code to refer to.</summary>
    public void AddAlias(ElfSymbol target, string name) =>
        _symtab.Symbols.Add(new ElfSymbol { Name = name, Type = target.Type, Bind = STB_GLOBAL, Section = target.Section, Value = target.Value, Size = target.Size });

    /// <summary>Finishes the object: data buffers, string tables, the klp relocation table, .note.GNU-stack.</summary>
    public ElfFile Finish()
    {
        Drain();
        foreach (var b in _data.Values)
            b.Flush();
        foreach (var (section, bytes, _) in _strings.Values)
            section.Data = bytes.ToArray();
        foreach (var group in _clears.GroupBy(c => c.Section, ReferenceEqualityComparer.Instance))
        {
            var section = (ElfSection)group.Key!;
            var data = section.Data.ToArray();
            foreach (var (_, offset, size) in group)
                if (offset + (ulong)size <= (ulong)data.Length)
                    data.AsSpan((int)offset, size).Clear();
            section.Data = data;
        }
        KlpRelocationTable.Write(_out, [.. _klp.Select(k => new KlpTableEntry(_run.Options.Parent.ObjectName, k.Section, k.Offset, k.Type, k.Name, k.Addend))], SectionSymbol, RelaFor);
        _out.AddSection(new ElfSection(".note.GNU-stack", SHT_PROGBITS) { Alignment = 1 });
        MoveSectionsLast();
        return _out;
    }

    private void MoveSectionsLast()
    {
        // Keep .symtab/.strtab/.shstrtab after the content sections, as assemblers do.
        var tables = _out.Sections.Where(s => s is ElfSymbolTable || s is ElfStringTable).ToList();
        foreach (var t in tables)
            _out.Sections.Remove(t);
        _out.Sections.AddRange(tables);
    }
}

/// <summary>Accumulates the bytes of one output data section.</summary>
internal sealed class DataSectionBuilder
{
    private readonly List<byte> _bytes = [];
    private ulong _size;

    public DataSectionBuilder(ElfSection section) => Section = section;

    public ElfSection Section { get; }

    /// <summary>Appends <paramref name="size"/> bytes (<paramref name="bytes"/>, zero-padded) at
    /// <paramref name="align"/>; returns their offset.</summary>
    public ulong Append(ReadOnlySpan<byte> bytes, ulong size, ulong align)
    {
        _size = (_size + align - 1) / align * align;
        var at = _size;
        if (Section.Type != SHT_NOBITS)
        {
            while ((ulong)_bytes.Count < at)
                _bytes.Add(0);
            _bytes.AddRange(bytes);
            while ((ulong)_bytes.Count < at + size)
                _bytes.Add(0);
        }
        _size = at + size;
        Section.Alignment = Math.Max(Section.Alignment, align);
        return at;
    }

    /// <summary>Gives the section its final contents (or size, for SHT_NOBITS).</summary>
    public void Flush()
    {
        if (Section is ElfNoBitsSection nobits)
            nobits.NoBitsSize = _size;
        else
            Section.Data = _bytes.ToArray();
    }
}
