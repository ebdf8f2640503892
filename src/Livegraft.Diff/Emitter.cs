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
        var section = _out.AddSection(new ElfSection(name, SHT_PROGBITS)
        {
            Flags = SHF_ALLOC | SHF_EXECINSTR,
            Alignment = Math.Max(1, src.Alignment),
            Data = bytes,
        });
        var sym = new ElfSymbol { Name = f.Name, Type = STT_FUNC, Bind = f.IsLocal ? STB_LOCAL : f.Bind, Other = f.Other, Section = section, Size = f.Size };
        if (_run.IsChangedExisting(f))
            sym.Bind = STB_LOCAL; // the kernel keeps the old one; ours is reached through klp_func only
        _symtab.Symbols.Add(sym);
        _included[f] = sym;
        _run.Result.Included.Add(f.Name);
        _work.Enqueue(() =>
        {
            foreach (var r in _run.Patched.FunctionRelocations(f))
                Relocate(section, r.Offset - f.Value, r, r.Adjust, $"{f.Name}+0x{r.Offset - f.Value:x}");
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

    /// <summary>Where a reference goes in the output: an output or undefined symbol, or a klp name.</summary>
    internal readonly record struct Mapped(ElfSymbol? Symbol, string? KlpName, long Offset);

    /// <summary>Maps a resolved patched-object target into the output.</summary>
    public Mapped Map(Target t, string where)
    {
        switch (t.Kind)
        {
            case TargetKind.String:
                return new Mapped(StringSymbol(t.Section!, t.Text!, out var at), null, at + t.Offset);
            case TargetKind.Section:
                if (t.Section is null)
                    return new Mapped(null, null, t.Offset);
                var copy = CopySection(t.Section);
                return new Mapped(copy.Symbol, null, t.Offset);
        }
        var p = t.Symbol!;
        if (p.Section is null)
        {
            if (p.SpecialIndex == SHN_ABS)
                return new Mapped(External(p.Name, p), null, t.Offset);
            return Reference(p.Name, null, p, t.Offset, where);
        }
        if (_included.TryGetValue(p, out var mine))
            return new Mapped(mine, null, t.Offset);
        if (_run.MustInclude(p))
            return new Mapped(Include(p), null, t.Offset);
        if (_run.Twins.TryGetValue(p, out var twin))
            return Reference(twin.Name, twin, p, t.Offset, where);
        if (p.Type is STT_FUNC or STT_OBJECT)
            return new Mapped(Include(p), null, t.Offset);
        // A label with no type: fall back to its section.
        var sec = CopySection(p.Section);
        return new Mapped(sec.Symbol, null, (long)p.Value + t.Offset);
    }

    /// <summary>A reference to something that stays in the running kernel.</summary>
    private Mapped Reference(string name, ElfSymbol? origSymbol, ElfSymbol patchedSymbol, long offset, string where)
    {
        var parent = _run.Options.Parent;
        var isGlobal = origSymbol is null ? !patchedSymbol.IsLocal : !origSymbol.IsLocal;
        if (isGlobal && parent.IsExported(name))
            return new Mapped(External(name, patchedSymbol), null, offset);
        int sympos;
        if (origSymbol is not null && origSymbol.IsLocal)
            sympos = parent.Sympos(origSymbol, _run.Orig.File);
        else
        {
            if (!parent.Defines(name))
                throw new LivegraftException(ExitCode.InvalidInput, DiffErrors.SymbolNotFound,
                    $"'{name}' (referenced at {where}) is neither exported nor defined in {parent.ObjectName}", _run.Options.PatchedName);
            sympos = 0;
        }
        var klp = $".klp.sym.{parent.ObjectName}.{name},{sympos}";
        return new Mapped(null, klp, offset);
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
        var size = X86_64RelocationSize(r.Type);
        if (size == 0)
            throw new LivegraftException(ExitCode.InvalidInput, DiffErrors.UnsupportedRelocation, $"unsupported relocation type {r.Type} at {where}", _run.Options.PatchedName);
        var mapped = Map(r.Target, where);
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
        if (mapped.Symbol is null)
            throw new LivegraftException(ExitCode.InvalidInput, DiffErrors.UnresolvedRelocation, $"cannot resolve the relocation at {where}", _run.Options.PatchedName);
        RelaFor(section).Relocations.Add(new ElfRelocation { Offset = offset, Type = r.Type, Symbol = mapped.Symbol, Addend = addend });
    }

    /// <summary>Appends a special-section entry (bytes plus relocations) to the output section of that name.</summary>
    public (ElfSection Section, ulong Offset) AppendEntry(ElfSection src, ulong entryOffset, int entrySize, Func<ResolvedRelocation, string, bool>? onRelocation = null)
    {
        if (!_data.TryGetValue(src.Name, out var builder))
        {
            var section = new ElfSection(UniqueSectionName(src.Name), src.Type) { Flags = src.Flags & ~SHF_GROUP, Alignment = src.Alignment, EntrySize = src.EntrySize };
            _out.AddSection(section);
            _data[src.Name] = builder = new DataSectionBuilder(section);
        }
        var at = builder.Append(src.Data.Span.Slice((int)entryOffset, entrySize), (ulong)entrySize, 1);
        var relocations = _run.Patched.RelocationsIn(src, entryOffset, entryOffset + (ulong)entrySize).ToList();
        foreach (var rel in relocations)
        {
            var r = new ResolvedRelocation(rel.Offset, rel.Type, rel.Addend, _run.Patched.Resolve(rel.Symbol, rel.Addend), rel);
            var where = $"{src.Name}+0x{rel.Offset:x}";
            if (onRelocation is not null && !onRelocation(r, where))
                continue;
            Relocate(builder.Section, at + (rel.Offset - entryOffset), r, 0, where);
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
        KlpRelocationTable.Write(_out, [.. _klp.Select(k => new KlpTableEntry(k.Section, k.Offset, k.Type, k.Name, k.Addend))], SectionSymbol, RelaFor);
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
