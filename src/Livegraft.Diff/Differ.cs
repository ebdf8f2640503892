using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Livegraft.Elf;
using static Livegraft.Elf.ElfNative;

namespace Livegraft.Diff;

/// <summary>
/// The object differ (our create-diff-object): given one translation unit compiled before and after
/// a fix with <c>-ffunction-sections -fdata-sections</c>, finds what changed function by function
/// and emits a relocatable object holding only the new code, ready to be linked into a livepatch
/// module. Passes: correlate → compare → verify → include → special sections → klp relocations.
/// </summary>
public static class Differ
{
    /// <summary>Runs the differ. Refusals are reported in <see cref="DiffResult.Refusals"/> (no output);
    /// malformed input throws <see cref="LivegraftException"/>.</summary>
    public static DiffResult Run(ElfFile orig, ElfFile patched, DiffOptions options) => new DiffRun(orig, patched, options).Execute();
}

/// <summary>State of one diff.</summary>
internal sealed class DiffRun
{
    private readonly Dictionary<ElfSymbol, ChangeKind> _kinds = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<ElfSymbol> _ignored = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<ElfSymbol> _forced = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<string> _ignoredSections = new(StringComparer.Ordinal);
    private readonly HashSet<string> _ignoredStatics = new(StringComparer.Ordinal);
    private readonly HashSet<ElfSymbol> _promoted = new(ReferenceEqualityComparer.Instance);
    private readonly IReadOnlyList<SpecialSection> _special;
    private readonly IReadOnlyList<SpecialSection> _filtered;

    public DiffRun(ElfFile orig, ElfFile patched, DiffOptions options)
    {
        Options = options;
        Orig = new ObjectIndex(orig, options.OrigName ?? orig.FileName ?? "orig.o");
        Patched = new ObjectIndex(patched, options.PatchedName ?? patched.FileName ?? "patched.o");
        Result = new DiffResult { ObjectName = options.Parent.ObjectName };
        Twins = new Dictionary<ElfSymbol, ElfSymbol>(ReferenceEqualityComparer.Instance);
        _special = SpecialSections.For(options.Sizes);
        _filtered = [.. _special.Where(s => !s.Regenerated)];
    }

    public DiffOptions Options { get; }
    public ObjectIndex Orig { get; }
    public ObjectIndex Patched { get; }
    public DiffResult Result { get; }
    public Dictionary<ElfSymbol, ElfSymbol> Twins { get; private set; }

    /// <summary>True for a patched function that changed and exists in the running kernel.</summary>
    public bool IsChangedExisting(ElfSymbol p) => _kinds.GetValueOrDefault(p) == ChangeKind.Changed;

    /// <summary>True when a referenced patched symbol must be copied rather than referenced in the kernel.</summary>
    public bool MustInclude(ElfSymbol p)
    {
        if (_ignored.Contains(p))
            return false;
        if (_kinds.TryGetValue(p, out var kind))
            return kind != ChangeKind.Same;
        return !Twins.ContainsKey(p); // special statics and other uncorrelated definitions are new
    }

    public DiffResult Execute()
    {
        ReadDirectives();
        Twins = Correlate.Run(Orig, Patched, _ignoredStatics, Result.Refusals);
        CompareAll();
        Verify();
        if (Result.Refusals.Count > 0 || Result.NothingChanged)
            return Result;
        Emit();
        return Result;
    }

    /// <summary>Reads the patch author's directives (livegraft.h / kpatch-macros.h sections).</summary>
    private void ReadDirectives()
    {
        foreach (var section in Patched.File.Sections)
        {
            switch (section.Name)
            {
                case ".livegraft.ignore.functions":
                    foreach (var t in PointerTargets(section))
                        if (t.Symbol is { } f)
                            _ignored.Add(f);
                    break;
                case ".livegraft.force.functions":
                    foreach (var t in PointerTargets(section))
                        if (t.Symbol is { } f)
                            _forced.Add(f);
                    break;
                case ".livegraft.ignore.sections":
                    foreach (var t in PointerTargets(section))
                        if (t.Text is { } name)
                            _ignoredSections.Add(name);
                    break;
                case ".livegraft.ignore.statics":
                    foreach (var t in PointerTargets(section))
                        if (t.Text is { } name)
                            _ignoredStatics.Add(name);
                    break;
            }
        }
    }

    /// <summary>Targets of the 8-byte pointers in a directive section.</summary>
    private IEnumerable<Target> PointerTargets(ElfSection section)
    {
        foreach (var r in Patched.RelocationsOf(section))
            yield return Patched.Resolve(r.Symbol, r.Addend);
    }

    private static bool IsCold(ElfSymbol f) => f.Name.Contains(".cold", StringComparison.Ordinal);

    private static string ColdParent(string name) => name[..name.IndexOf(".cold", StringComparison.Ordinal)];

    private bool Skipped(ElfSymbol s) => s.Section is null || Skipped(s.Section);

    private bool Skipped(ElfSection section) =>
        SpecialSections.IsDropped(section.Name) || _ignoredSections.Contains(section.Name) || section.Name.StartsWith(".livegraft.", StringComparison.Ordinal);

    private void CompareAll()
    {
        var compare = new Compare(Orig, Patched, Twins, _ignoredStatics);
        foreach (var f in Patched.Functions)
        {
            if (Skipped(f) || f.Section!.Type == SHT_NOBITS)
                continue;
            if (!Twins.TryGetValue(f, out var o))
            {
                _kinds[f] = ChangeKind.New;
                continue;
            }
            var same = compare.SameFunction(f, o);
            if (same && compare.LastWasLineOnly)
                Result.Notes.Add(new Diagnostic(DiffErrors.LineOnly, Severity.Note, $"'{f.Name}' differs only in __LINE__ immediates; not a change", Patched.Name, f.Section.Name));
            _kinds[f] = same ? ChangeKind.Same : ChangeKind.Changed;
        }
        // A changed .cold part changes its parent; the parent always carries its cold parts along.
        // Both directions go through one name index, built once (a unit can have thousands of functions).
        var byName = new Dictionary<string, ElfSymbol>(StringComparer.Ordinal);
        var coldParts = new Dictionary<string, List<ElfSymbol>>(StringComparer.Ordinal);
        foreach (var f in Patched.Functions)
        {
            if (IsCold(f))
            {
                ref var parts = ref CollectionsMarshal.GetValueRefOrAddDefault(coldParts, ColdParent(f.Name), out _);
                (parts ??= []).Add(f);
            }
            else if (_kinds.ContainsKey(f))
            {
                byName.TryAdd(f.Name, f); // the first one, as a search in function order would find
            }
        }
        foreach (var f in Patched.Functions)
        {
            if (!IsCold(f) || _kinds.GetValueOrDefault(f) == ChangeKind.Same)
                continue;
            if (byName.TryGetValue(ColdParent(f.Name), out var parent) && _kinds[parent] == ChangeKind.Same)
                _kinds[parent] = ChangeKind.Changed;
        }
        foreach (var f in Patched.Functions)
        {
            if (IsCold(f) || _kinds.GetValueOrDefault(f) == ChangeKind.Same || !coldParts.TryGetValue(f.Name, out var parts))
                continue;
            foreach (var c in parts)
                if (_kinds.GetValueOrDefault(c) == ChangeKind.Same)
                    _kinds[c] = ChangeKind.Changed; // a fresh copy, so its jumps back land in the new parent
        }
        foreach (var f in _ignored)
            if (_kinds.ContainsKey(f))
                _kinds[f] = ChangeKind.Same;
        foreach (var o in Patched.Objects)
        {
            if (Skipped(o) || !o.Section!.IsAlloc || !Twins.TryGetValue(o, out var twin))
                continue;
            _kinds[o] = compare.SameObject(o, twin) ? ChangeKind.Same : ChangeKind.Changed;
        }
        foreach (var (f, kind) in _kinds.OrderBy(k => k.Key.Name, StringComparer.Ordinal))
        {
            if (!f.IsFunction || IsCold(f))
                continue;
            if (kind == ChangeKind.Changed)
                Result.ChangedFunctions.Add(f.Name);
            else if (kind == ChangeKind.New && !SpecialSections.IsInitOrExit(f.Section!.Name))
                Result.NewFunctions.Add(f.Name);
        }
    }

    /// <summary>
    /// A changed static function without an fentry call (kernel <c>inline</c> implies notrace, so
    /// gcc's out-of-line copies of inline helpers, such as SYSCALL_DEFINE's <c>__do_sys_*</c>, have
    /// none) cannot be redirected by ftrace. When every reference to it is a call or jump from other
    /// functions of this unit, patch those callers instead: they are included as changed and call
    /// the new copy. A function whose address is stored in data stays refused (LG0103).
    /// </summary>
    private void PromoteUntraceable()
    {
        for (var changed = true; changed;)
        {
            changed = false;
            foreach (var f in _kinds.Where(k => k.Value == ChangeKind.Changed && k.Key.IsFunction).Select(k => k.Key).ToList())
            {
                if (_promoted.Contains(f) || IsCold(f) || !f.IsLocal || _forced.Contains(f) || SpecialSections.IsInitOrExit(f.Section!.Name) || Patched.FentryOffset(f) >= 0)
                    continue;
                var callers = new List<ElfSymbol>();
                var onlyCode = true;
                foreach (var caller in Patched.Functions)
                {
                    if (ReferenceEquals(caller, f) || caller.Section is null || caller.Section.Type == SHT_NOBITS)
                        continue;
                    if (Patched.FunctionRelocations(caller).Any(r => r.Target.Kind == TargetKind.Symbol && ReferenceEquals(r.Target.Symbol, f)))
                        callers.Add(caller);
                }
                foreach (var section in Patched.File.Sections)
                {
                    if (!section.IsAlloc || section.IsExecutable || SpecialSections.IsDropped(section.Name) || IsSpecial(section.Name))
                        continue;
                    foreach (var r in Patched.RelocationsOf(section))
                        if (Patched.Resolve(r.Symbol, r.Addend) is { Kind: TargetKind.Symbol } t && ReferenceEquals(t.Symbol, f))
                            onlyCode = false;
                }
                if (!onlyCode || callers.Count == 0 || callers.Any(c => SpecialSections.IsInitOrExit(c.Section!.Name) && callers.Count == 1))
                    continue;
                _promoted.Add(f);
                Result.Notes.Add(new Diagnostic(DiffErrors.PatchedThroughCallers, Severity.Note, $"'{f.Name}' has no fentry call; patching its callers instead ({string.Join(", ", callers.Select(c => c.Name).Order(StringComparer.Ordinal))})", Patched.Name, f.Section.Name));
                foreach (var c in callers)
                {
                    if (_kinds.GetValueOrDefault(c) == ChangeKind.Same && !SpecialSections.IsInitOrExit(c.Section!.Name))
                    {
                        _kinds[c] = ChangeKind.Changed;
                        if (!IsCold(c) && !Result.ChangedFunctions.Contains(c.Name))
                            Result.ChangedFunctions.Add(c.Name);
                        changed = true;
                    }
                }
            }
        }
    }

    private bool IsSpecial(string name) =>
        _special.Any(x => x.Name == name) || SpecialSections.Companion.Contains(name);

    private void Verify()
    {
        PromoteUntraceable();
        var file = Patched.Name;
        foreach (var (s, kind) in _kinds)
        {
            if (kind != ChangeKind.Changed)
                continue;
            var section = s.Section!.Name;
            if (_forced.Contains(s) || _promoted.Contains(s))
                continue;
            if (s.IsFunction)
            {
                if (SpecialSections.IsInitOrExit(section))
                    Result.Refusals.Add(new Diagnostic(DiffErrors.InitOrExitChanged, Severity.Error, $"'{s.Name}' is {(section.StartsWith(".exit", StringComparison.Ordinal) ? "__exit" : "__init")} code: it has already run (or only runs at unload) and cannot be live patched", file, section));
                else if (!IsCold(s) && Patched.FentryOffset(s) < 0)
                    Result.Refusals.Add(new Diagnostic(DiffErrors.NoFentry, Severity.Error, $"changed function '{s.Name}' has no fentry call (notrace or noinstr), so ftrace cannot redirect it", file, section));
            }
            else if (!SpecialSections.IsInitOrExit(section))
            {
                Result.Refusals.Add(new Diagnostic(DiffErrors.DataChanged, Severity.Error, $"data object '{s.Name}' changed; a live patch cannot change existing data (use a shadow variable or a callback)", file, section));
            }
        }
        // Exports must not change.
        static IEnumerable<string> Exports(ObjectIndex idx) => idx.Symbols.Symbols
            .Where(s => s.Name.StartsWith("__ksymtab_", StringComparison.Ordinal) && s.Section is not null)
            .Select(s => s.Name);
        var origExports = Exports(Orig).ToHashSet(StringComparer.Ordinal);
        foreach (var e in Exports(Patched))
            if (!origExports.Contains(e))
                Result.Refusals.Add(new Diagnostic(DiffErrors.NewExport, Severity.Error, $"the patch exports a new symbol '{e["__ksymtab_".Length..]}'; live patches cannot add exports", file, "__ksymtab"));
        // Anonymous data that changed: no symbol lets us reason about it.
        foreach (var section in Patched.File.Sections)
        {
            if (!section.IsAlloc || section.IsExecutable || ObjectIndex.IsStringSection(section) || Skipped(section)
                || SpecialSections.IsInitOrExit(section.Name) || Patched.SymbolsIn(section).Length > 0
                || IsSpecial(section.Name) || section.Type is SHT_RELA or SHT_REL or SHT_GROUP)
                continue;
            var twin = Orig.File.FindSection(section.Name);
            if (twin is not null && twin.Size != section.Size && (section.Name.StartsWith(".data", StringComparison.Ordinal) || section.Name.StartsWith(".bss", StringComparison.Ordinal)))
                Result.Refusals.Add(new Diagnostic(DiffErrors.AnonymousData, Severity.Error, $"anonymous data section '{section.Name}' changed size", file, section.Name));
        }
        foreach (var g in Patched.File.Sections.OfType<ElfGroupSection>())
        {
            var members = g.Members.Where(m => m.IsAlloc).ToList();
            if (members.Any(m => Patched.SymbolsIn(m).Any(s => _kinds.GetValueOrDefault(s) == ChangeKind.Changed && !s.IsFunction)))
                Result.Refusals.Add(new Diagnostic(DiffErrors.GroupChanged, Severity.Error, $"section group '{g.Signature?.Name ?? g.Name}' changed", file, g.Name));
        }
    }

    private void Emit()
    {
        var emitter = new Emitter(this);
        try
        {
            var aliases = 0;
            foreach (var (f, kind) in _kinds.Where(k => k.Key.IsFunction).OrderBy(k => k.Key.Name, StringComparer.Ordinal))
            {
                if (kind == ChangeKind.Same || SpecialSections.IsInitOrExit(f.Section!.Name))
                    continue;
                var sym = emitter.Include(f);
                if (kind == ChangeKind.Changed && !IsCold(f) && !_promoted.Contains(f))
                {
                    var alias = $"__livegraft_{Options.UnitTag}_{aliases++}";
                    emitter.AddAlias(sym, alias);
                    var old = Twins[f];
                    var sympos = old.IsLocal ? Options.Parent.Sympos(old, Orig.File) : 0;
                    Result.Functions.Add(new PatchedFunction(old.Name, sympos, alias));
                }
            }
            emitter.Drain();
            Callbacks(emitter);
            emitter.Drain();
            SpecialSectionsPass(emitter);
            Mcount(emitter);
            Result.Output = emitter.Finish();
            foreach (var (section, offset, type, name, addend) in emitter.KlpRelocations)
                Result.KlpRelocations.Add(new KlpRelocation(section.Name, offset, type, name, addend));
        }
        catch (LivegraftException e) when (e.Diagnostics.Count > 0 && e.Diagnostics[0].Id is DiffErrors.SymbolNotFound or DiffErrors.SymposAmbiguous or DiffErrors.UnresolvedRelocation or DiffErrors.ModuleKey or DiffErrors.CallbackNotFunction)
        {
            Result.Refusals.AddRange(e.Diagnostics);
            Result.Output = null;
        }
    }

    private void Callbacks(Emitter emitter)
    {
        foreach (var kind in new[] { "pre_patch", "post_patch", "pre_unpatch", "post_unpatch" })
        {
            var section = Patched.File.FindSection(".livegraft.callbacks." + kind);
            if (section is null)
                continue;
            var n = 0;
            foreach (var t in PointerTargets(section))
            {
                if (t.Kind != TargetKind.Symbol || t.Symbol is not { IsFunction: true } f)
                    throw new LivegraftException(ExitCode.InvalidInput, DiffErrors.CallbackNotFunction, $"a {kind} callback does not point at a function", Patched.Name, section.Name);
                var sym = emitter.Include(f);
                var alias = $"__livegraft_{Options.UnitTag}_{kind}_{n++}";
                emitter.AddAlias(sym, alias);
                if (!Result.Callbacks.TryGetValue(kind, out var list))
                    Result.Callbacks[kind] = list = [];
                list.Add(alias);
            }
        }
    }

    /// <summary>Keeps the entries of special sections that belong to included functions.</summary>
    private void SpecialSectionsPass(Emitter emitter)
    {
        foreach (var spec in _filtered)
        {
            var section = Patched.File.FindSection(spec.Name);
            if (section is null || section.Size == 0)
                continue;
            if (section.Size % (ulong)spec.EntrySize != 0)
                throw new LivegraftException(ExitCode.InvalidInput, DiffErrors.SpecialSectionSize, $"{spec.Name} is {section.Size} bytes, not a multiple of its {spec.EntrySize}-byte entries: the entry sizes do not match this kernel", Patched.Name, spec.Name);
            var orc = spec.Name == ".orc_unwind_ip" ? Patched.File.FindSection(".orc_unwind") : null;
            var count = (int)(section.Size / (ulong)spec.EntrySize);
            for (var i = 0; i < count; i++)
            {
                var entry = (ulong)(i * spec.EntrySize);
                var anchor = Patched.RelocationsIn(section, entry + (ulong)spec.AnchorOffset, entry + (ulong)spec.AnchorOffset + 1).FirstOrDefault();
                if (anchor is null)
                    continue;
                var target = Patched.Resolve(anchor.Symbol, anchor.Addend);
                if (target.Kind != TargetKind.Symbol || target.Symbol is not { IsFunction: true } f || !emitter.Included.ContainsKey(f))
                    continue;
                var keyOffset = spec.KeyOffset;
                var isAlt = spec.Name == ".altinstructions";
                var (outSection, outOffset) = emitter.AppendEntry(section, entry, spec.EntrySize, (r, where) =>
                {
                    if (isAlt && r.Offset == entry + 4)
                        return false; // the replacement code is copied by AltReplacement
                    if (keyOffset >= 0 && r.Offset == entry + (ulong)keyOffset)
                    {
                        var mapped = emitter.Map(r.Target, where);
                        if (mapped.KlpName is not null && Options.Parent.ObjectName != "vmlinux")
                            throw new LivegraftException(ExitCode.InvalidInput, DiffErrors.ModuleKey,
                                $"'{f.Name}' uses a {(spec.Name == "__jump_table" ? "jump label" : "static call")} whose key '{r.Target.Symbol?.Name}' lives in module {Options.Parent.ObjectName}; its relocation cannot be applied before the key is used", Patched.Name, spec.Name);
                    }
                    return true;
                });
                if (orc is not null)
                    emitter.AppendRaw(".orc_unwind", orc.Type, orc.Flags, orc.Alignment, orc.Data.Span.Slice(i * Options.Sizes.OrcEntry, Options.Sizes.OrcEntry));
                if (isAlt)
                    AltReplacement(emitter, section, entry, outSection, outOffset);
            }
        }
    }

    /// <summary>Copies the replacement code an .altinstructions entry points at, and points the copy's entry at it.</summary>
    private void AltReplacement(Emitter emitter, ElfSection altinstructions, ulong entry, ElfSection outEntries, ulong outEntry)
    {
        var repl = Patched.RelocationsIn(altinstructions, entry + 4, entry + 5).FirstOrDefault();
        if (repl?.Symbol?.Section is not { } replSection)
            return;
        var replOffset = (long)(repl.Symbol.IsSectionSymbol ? 0 : repl.Symbol.Value) + repl.Addend;
        var length = altinstructions.Data.Span[(int)entry + Options.Sizes.AltInstrLenOffset + 1];
        var bytes = replSection.Data.Span.Slice((int)replOffset, length);
        var (outSection, at) = emitter.AppendRaw(replSection.Name, replSection.Type, replSection.Flags & ~SHF_GROUP, Math.Max(1, replSection.Alignment), bytes);
        foreach (var r in Patched.RelocationsIn(replSection, (ulong)replOffset, (ulong)replOffset + length))
        {
            var resolved = new ResolvedRelocation(r.Offset, r.Type, r.Addend, Patched.Resolve(r.Symbol, r.Addend), r);
            emitter.Relocate(outSection, at + (r.Offset - (ulong)replOffset), resolved, 0, $"{replSection.Name}+0x{r.Offset:x}");
        }
        // repl_offset is relative (PC32 in data): point the copied entry at the copied code.
        emitter.AddRelocation(outEntries, outEntry + 4, repl.Type, emitter.SectionSymbolOf(outSection), (long)at);
    }

    /// <summary>Regenerates __mcount_loc: one entry per included function's fentry call.</summary>
    private void Mcount(Emitter emitter)
    {
        foreach (var (p, outSym) in emitter.Included.OrderBy(k => k.Value.Section!.Index))
        {
            if (!p.IsFunction)
                continue;
            var fentry = Patched.FentryOffset(p);
            if (fentry < 0)
                continue;
            var (section, at) = emitter.AppendRaw("__mcount_loc", SHT_PROGBITS, SHF_ALLOC, 1, new byte[8]);
            emitter.AddRelocation(section, at, R_X86_64_64, outSym, fentry);
        }
    }
}
