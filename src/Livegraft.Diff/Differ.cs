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
        Policy = new ReferencePolicy(this);
        _special = SpecialSections.For(options.Sizes);
        _filtered = [.. _special.Where(s => !s.Regenerated)];
    }

    public DiffOptions Options { get; }
    public ObjectIndex Orig { get; }
    public ObjectIndex Patched { get; }
    public DiffResult Result { get; }
    public Dictionary<ElfSymbol, ElfSymbol> Twins { get; private set; }

    /// <summary>Every function and object of the patched object with its status and inclusion.</summary>
    public ElementTable Elements { get; } = new();

    /// <summary>The one decision maker for references of included code and data.</summary>
    public ReferencePolicy Policy { get; }

    /// <summary>True for a changed existing function that ftrace redirects to its new copy (it gets
    /// a klp_func): not a .cold part, not patched through its callers.</summary>
    public bool IsRedirected(ElfSymbol p) =>
        Elements.Is(p, ChangeKind.Changed) && p.IsFunction && !IsCold(p) && !_promoted.Contains(p) && Twins.ContainsKey(p);

    public DiffResult Execute()
    {
        CheckConsistency();
        ReadDirectives();
        Twins = Correlate.Run(Orig, Patched, _ignoredStatics, Result.Refusals);
        CheckSymbolInfo();
        CompareAll();
        Verify();
        if (Result.NothingChanged)
            return Result;
        // Inclusion runs even after a refusal, so that one build reports every reason at once.
        Emit();
        return Result;
    }

    /// <summary>Both objects must be one unit compiled twice: same ELF header, same section flags.</summary>
    private void CheckConsistency()
    {
        var a = Orig.File.Header;
        var b = Patched.File.Header;
        if (a.Class != b.Class || a.Data != b.Data || a.Type != b.Type || a.Machine != b.Machine || a.Flags != b.Flags || a.OsAbi != b.OsAbi)
            Result.Refusals.Add(new Diagnostic(DiffErrors.HeaderMismatch, Severity.Error,
                $"the ELF headers differ (type {a.Type}/{b.Type}, machine {a.Machine}/{b.Machine}, flags 0x{a.Flags:x}/0x{b.Flags:x}): the two objects are not one unit compiled twice", Patched.Name));
        var origSections = new Dictionary<string, ElfSection>(StringComparer.Ordinal);
        foreach (var s in Orig.File.Sections)
            if (s.IsAlloc && s.Type is SHT_PROGBITS or SHT_NOBITS)
                origSections.TryAdd(s.Name, s);
        foreach (var s in Patched.File.Sections)
        {
            if (!s.IsAlloc || s.Type is not (SHT_PROGBITS or SHT_NOBITS) || !origSections.TryGetValue(s.Name, out var o))
                continue;
            const ulong Relevant = SHF_WRITE | SHF_ALLOC | SHF_EXECINSTR | SHF_MERGE | SHF_STRINGS | SHF_TLS;
            if ((s.Flags & Relevant) != (o.Flags & Relevant) || (s.Type == SHT_NOBITS) != (o.Type == SHT_NOBITS))
                Result.Refusals.Add(new Diagnostic(DiffErrors.SectionFlagsChanged, Severity.Error,
                    $"section '{s.Name}' changed its flags (0x{o.Flags:x} -> 0x{s.Flags:x}) or type", Patched.Name, s.Name));
        }
    }

    /// <summary>A symbol that kept its name must keep its binding and type: a global that became
    /// static (or the reverse) would be a different symbol to the kernel, not a change of this one.</summary>
    private void CheckSymbolInfo()
    {
        var origByName = new Dictionary<string, ElfSymbol>(StringComparer.Ordinal);
        foreach (var s in Orig.Symbols.Symbols)
            if (s.Section is not null && !s.IsLocal && s.Type is STT_FUNC or STT_OBJECT)
                origByName.TryAdd(s.Name, s);
        foreach (var p in Patched.Symbols.Symbols)
        {
            if (p.Section is null || p.Type is not (STT_FUNC or STT_OBJECT) || Skipped(p))
                continue;
            if (Twins.TryGetValue(p, out var twin))
            {
                if (twin.Bind != p.Bind || twin.Type != p.Type)
                    Refuse(p, twin);
            }
            else if (origByName.TryGetValue(p.Name, out var o) && (o.Type != p.Type || o.Bind != p.Bind))
            {
                Refuse(p, o);
            }
        }

        void Refuse(ElfSymbol p, ElfSymbol o) => Result.Refusals.Add(new Diagnostic(DiffErrors.SymbolInfoChanged, Severity.Error,
            $"'{p.Name}' changed from {Describe(o)} to {Describe(p)}; the kernel would see another symbol, not a change of this one", Patched.Name, p.Section!.Name));

        static string Describe(ElfSymbol s) =>
            $"{(s.Bind switch { STB_LOCAL => "static", STB_WEAK => "weak", _ => "global" })} {(s.IsFunction ? "function" : "object")}";
    }

    /// <summary>Reads the patch author's directives: livegraft.h's <c>.livegraft.*</c> sections, and
    /// kpatch's own <c>.kpatch.*</c> ones (objects built with kpatch's kpatch-macros.h).</summary>
    private void ReadDirectives()
    {
        foreach (var section in Patched.File.Sections)
        {
            switch (DirectiveName(section.Name))
            {
                case "ignore.functions":
                    foreach (var t in PointerTargets(section))
                        if (t.Symbol is { } f)
                            _ignored.Add(f);
                    break;
                case "force.functions":
                    foreach (var t in PointerTargets(section))
                        if (t.Symbol is { } f)
                            _forced.Add(f);
                    break;
                case "ignore.sections":
                    foreach (var t in PointerTargets(section))
                        if (t.Text is { } name)
                            _ignoredSections.Add(name);
                    break;
                case "ignore.statics":
                    foreach (var t in PointerTargets(section))
                        if (t.Text is { } name)
                            _ignoredStatics.Add(name);
                    break;
            }
        }
    }

    /// <summary>The directive a section carries: <c>.livegraft.X</c>, or kpatch's <c>.kpatch.X</c>
    /// (<c>.kpatch.force</c> is kpatch's name for forced functions).</summary>
    private static string? DirectiveName(string section) =>
        section.StartsWith(".livegraft.", StringComparison.Ordinal) ? section[".livegraft.".Length..]
        : section == ".kpatch.force" ? "force.functions"
        : section.StartsWith(".kpatch.", StringComparison.Ordinal) ? section[".kpatch.".Length..]
        : null;

    /// <summary>The callback section of <paramref name="kind"/>: livegraft.h's, or kpatch's (whose
    /// 16-byte entries hold the function and an object name the differ does not need).</summary>
    private IEnumerable<ElfSection> CallbackSections(string kind) =>
        Patched.File.Sections.Where(s => s.Name == ".livegraft.callbacks." + kind || s.Name == ".kpatch.callbacks." + kind);

    /// <summary>Targets of the 8-byte pointers in a directive section.</summary>
    private IEnumerable<Target> PointerTargets(ElfSection section)
    {
        foreach (var r in Patched.RelocationsOf(section))
            yield return Patched.Resolve(r.Symbol, r.Addend);
    }

    private static bool IsCold(ElfSymbol f) => f.Name.Contains(".cold", StringComparison.Ordinal);

    /// <summary>The parent of a gcc child function: <c>foo.cold</c>, <c>foo.cold.3</c> and
    /// <c>foo.part.0</c> are children of <c>foo</c>; null for other names.</summary>
    private static string? ChildParent(string name)
    {
        var cold = name.LastIndexOf(".cold", StringComparison.Ordinal);
        var part = name.LastIndexOf(".part.", StringComparison.Ordinal);
        var at = Math.Max(cold, part);
        return at > 0 ? name[..at] : null;
    }

    private bool Skipped(ElfSymbol s) => s.Section is null || Skipped(s.Section);

    private bool Skipped(ElfSection section) =>
        SpecialSections.IsDropped(section.Name) || _ignoredSections.Contains(section.Name) || DirectiveName(section.Name) is not null;

    private void CompareAll()
    {
        var compare = new Compare(Orig, Patched, Twins, _ignoredStatics);
        foreach (var f in Patched.Functions)
        {
            if (Skipped(f) || f.Section!.Type == SHT_NOBITS)
                continue;
            if (!Twins.TryGetValue(f, out var o))
            {
                Elements.Add(f, null, ChangeKind.New);
                continue;
            }
            var same = compare.SameFunction(f, o);
            if (same && compare.LastWasLineOnly)
                Result.Notes.Add(new Diagnostic(DiffErrors.LineOnly, Severity.Note, $"'{f.Name}' differs only in __LINE__ immediates; not a change", Patched.Name, f.Section.Name));
            Elements.Add(f, o, same ? ChangeKind.Same : ChangeKind.Changed);
        }
        // gcc's children (.cold, .part.N) follow their parent: a changed child changes its parent,
        // a changed parent carries fresh copies of its children (so jumps between them land in the
        // new code), an ignored parent's children are ignored. Both directions go through one name
        // index, built once (a unit can have thousands of functions).
        var byName = new Dictionary<string, ElfSymbol>(StringComparer.Ordinal);
        var children = new Dictionary<string, List<ElfSymbol>>(StringComparer.Ordinal);
        foreach (var f in Patched.Functions)
        {
            if (Elements[f] is null)
                continue;
            byName.TryAdd(f.Name, f); // the first one, as a search in function order would find
            if (ChildParent(f.Name) is { } parentName)
            {
                ref var list = ref CollectionsMarshal.GetValueRefOrAddDefault(children, parentName, out _);
                (list ??= []).Add(f);
            }
        }
        foreach (var f in _ignored.ToList())
            foreach (var c in Descendants(f))
                _ignored.Add(c);
        foreach (var f in Patched.Functions)
        {
            if (!IsCold(f) || Elements.StatusOf(f) == ChangeKind.Same)
                continue;
            for (var child = f; ChildParent(child.Name) is { } pn && byName.TryGetValue(pn, out var parent); child = parent)
            {
                if (Elements[parent] is { Status: ChangeKind.Same } pe)
                    pe.Status = ChangeKind.Changed;
                if (!IsCold(parent))
                    break;
            }
        }
        foreach (var f in Patched.Functions)
        {
            if (IsCold(f) || Elements.StatusOf(f) == ChangeKind.Same)
                continue;
            foreach (var c in Descendants(f))
                if (Elements[c] is { Status: ChangeKind.Same } ce)
                    ce.Status = ChangeKind.Changed; // a fresh copy, so its jumps back land in the new parent
        }
        foreach (var f in _ignored)
            if (Elements[f] is { } e && e.Status != ChangeKind.New)
            {
                e.Status = ChangeKind.Same;
                e.Ignored = true;
            }
        foreach (var o in Patched.Objects)
        {
            if (Skipped(o) || !o.Section!.IsAlloc)
                continue;
            if (Twins.TryGetValue(o, out var twin))
                Elements.Add(o, twin, compare.SameObject(o, twin) ? ChangeKind.Same : ChangeKind.Changed);
            else
                Elements.Add(o, null, ChangeKind.New);
        }
        foreach (var e in Elements.All.Where(e => e.IsFunction).OrderBy(e => e.Symbol.Name, StringComparer.Ordinal))
        {
            var f = e.Symbol;
            if (IsCold(f))
                continue;
            if (e.Status == ChangeKind.Changed)
                Result.ChangedFunctions.Add(f.Name);
            else if (e.Status == ChangeKind.New && !SpecialSections.IsInitOrExit(f.Section!.Name))
                Result.NewFunctions.Add(f.Name);
        }

        IEnumerable<ElfSymbol> Descendants(ElfSymbol f)
        {
            if (!children.TryGetValue(f.Name, out var direct))
                yield break;
            foreach (var c in direct)
            {
                yield return c;
                foreach (var d in Descendants(c))
                    yield return d;
            }
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
            foreach (var f in Elements.All.Where(e => e.Status == ChangeKind.Changed && e.IsFunction).Select(e => e.Symbol).ToList())
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
                    if (Elements[c] is { Status: ChangeKind.Same } ce && !SpecialSections.IsInitOrExit(c.Section!.Name))
                    {
                        ce.Status = ChangeKind.Changed;
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
        foreach (var e in Elements.All)
        {
            if (e.Status != ChangeKind.Changed)
                continue;
            var s = e.Symbol;
            var section = s.Section!.Name;
            if (_forced.Contains(s) || _promoted.Contains(s))
                continue;
            if (s.IsFunction)
            {
                if (SpecialSections.IsInitOrExit(section))
                    Result.Refusals.Add(new Diagnostic(DiffErrors.InitOrExitChanged, Severity.Error, $"'{s.Name}' is {(section.StartsWith(".exit", StringComparison.Ordinal) ? "__exit" : "__init")} code: it has already run (or only runs at unload) and cannot be live patched", file, section));
                else if (!IsCold(s) && Patched.FentryOffset(s) < 0)
                    Result.Refusals.Add(new Diagnostic(DiffErrors.NoFentry, Severity.Error, $"changed function '{s.Name}' has no fentry call (notrace or noinstr), so ftrace cannot redirect it", file, section));
                else if (e.Twin is { Bind: STB_WEAK } weak && !IsCold(s) && Options.Parent.RunsOtherDefinition(weak, Orig.File))
                    Result.Refusals.Add(new Diagnostic(DiffErrors.WeakOverridden, Severity.Error, $"'{s.Name}' is a __weak definition that {Options.Parent.ObjectName} overrides with another one: changing it has no effect on the running kernel (patch the definition it runs)", file, section));
            }
            else if (!SpecialSections.IsInitOrExit(section) && e.IsWritable)
            {
                // Read-only data that changed is carried as a copy for the new code (the policy's
                // "changed read-only data"); writable data is the kernel's state.
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
            if (members.Any(m => Patched.SymbolsIn(m).Any(s => Elements.Is(s, ChangeKind.Changed) && !s.IsFunction)))
                Result.Refusals.Add(new Diagnostic(DiffErrors.GroupChanged, Severity.Error, $"section group '{g.Signature?.Name ?? g.Name}' changed", file, g.Name));
        }
    }

    private void Emit()
    {
        var emitter = new Emitter(this);
        var aliases = 0;
        foreach (var e in Elements.All.Where(e => e.IsFunction).OrderBy(e => e.Symbol.Name, StringComparer.Ordinal))
        {
            var f = e.Symbol;
            if (e.Status == ChangeKind.Same || SpecialSections.IsInitOrExit(f.Section!.Name))
                continue;
            var sym = emitter.Include(f);
            if (IsRedirected(f))
            {
                var alias = $"__livegraft_{Options.UnitTag}_{aliases++}";
                emitter.AddAlias(sym, alias);
                var old = e.Twin!;
                var sympos = 0;
                if (old.IsLocal && !Policy.TrySympos(old, out sympos, out var failure))
                    Result.Refusals.Add(failure! with { Location = f.Name });
                Result.Functions.Add(new PatchedFunction(old.Name, sympos, alias));
            }
        }
        // New globals are the patch's own definitions: other units of the patch may use them.
        foreach (var e in Elements.All.Where(e => !e.IsFunction && e.Status == ChangeKind.New && !e.Symbol.IsLocal && !SpecialSections.IsInitOrExit(e.Symbol.Section!.Name)).ToList())
            emitter.Include(e.Symbol);
        emitter.Drain();
        Callbacks(emitter);
        emitter.Drain();
        SpecialSectionsPass(emitter);
        Mcount(emitter);
        emitter.Drain();
        Patchability();
        if (Result.Refusals.Count > 0)
            return;
        Result.Output = emitter.Finish();
        foreach (var (section, offset, type, name, addend) in emitter.KlpRelocations)
            Result.KlpRelocations.Add(new KlpRelocation(section.Name, offset, type, name, addend));
    }

    /// <summary>
    /// The final patchability pass, after inclusion: writable data is never duplicated (a copy
    /// would not be the variable the kernel uses), so an included writable element must be new;
    /// every changed function must have been included. Refusals are collected, not thrown.
    /// </summary>
    private void Patchability()
    {
        foreach (var e in Elements.All)
        {
            var s = e.Symbol;
            if (e.Included && !e.IsFunction && e.IsWritable && e.Status != ChangeKind.New && !SpecialSections.IsInitOrExit(s.Section!.Name))
                Result.Refusals.Add(new Diagnostic(DiffErrors.WritableIncluded, Severity.Error,
                    $"writable '{s.Name}' exists in the running kernel but was selected for inclusion: the patch would use a copy instead of the kernel's variable", Patched.Name, s.Section!.Name));
            if (!e.Included && e.IsFunction && e.Status == ChangeKind.Changed && !SpecialSections.IsInitOrExit(s.Section!.Name))
                Result.Refusals.Add(new Diagnostic(DiffErrors.ChangedNotIncluded, Severity.Error,
                    $"changed function '{s.Name}' was not selected for inclusion", Patched.Name, s.Section!.Name));
        }
    }

    private void Callbacks(Emitter emitter)
    {
        foreach (var kind in new[] { "pre_patch", "post_patch", "pre_unpatch", "post_unpatch" })
        {
            var n = 0;
            foreach (var section in CallbackSections(kind))
            {
                // kpatch's entries are 16 bytes (the function, then an object name it fills in).
                var stride = section.Name.StartsWith(".kpatch.", StringComparison.Ordinal) ? 16UL : 8UL;
                foreach (var r in Patched.RelocationsOf(section))
                {
                    if (r.Offset % stride != 0)
                        continue;
                    var t = Patched.Resolve(r.Symbol, r.Addend);
                    if (t.Kind != TargetKind.Symbol || t.Symbol is not { IsFunction: true } f)
                    {
                        Result.Refusals.Add(new Diagnostic(DiffErrors.CallbackNotFunction, Severity.Error, $"a {kind} callback does not point at a function", Patched.Name, section.Name));
                        continue;
                    }
                    var sym = emitter.Include(f);
                    var alias = $"__livegraft_{Options.UnitTag}_{kind}_{n++}";
                    emitter.AddAlias(sym, alias);
                    if (!Result.Callbacks.TryGetValue(kind, out var list))
                        Result.Callbacks[kind] = list = [];
                    list.Add(alias);
                }
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
            // Older kernels do not pad the last entry (.parainstructions before 5.x): a short last
            // entry is accepted when it still holds every field the differ and the kernel read.
            var size = (long)section.Size;
            var tail = (int)(size % spec.EntrySize);
            if (tail != 0 && tail < spec.MinimumEntry)
            {
                Result.Refusals.Add(new Diagnostic(DiffErrors.SpecialSectionSize, Severity.Error, $"{spec.Name} is {section.Size} bytes, not a multiple of its {spec.EntrySize}-byte entries: the entry sizes do not match this kernel (livegraft diff --sizes overrides them)", Patched.Name, spec.Name));
                continue;
            }
            if (tail != 0)
                Result.Notes.Add(new Diagnostic(DiffErrors.ShortLastEntry, Severity.Note, $"the last entry of {spec.Name} is {tail} of {spec.EntrySize} bytes (not padded); accepted", Patched.Name, spec.Name));
            var orc = spec.Name == ".orc_unwind_ip" ? Patched.File.FindSection(".orc_unwind") : null;
            var count = (int)((size + spec.EntrySize - 1) / spec.EntrySize);
            for (var i = 0; i < count; i++)
            {
                var entry = (ulong)(i * spec.EntrySize);
                var length = (int)Math.Min(spec.EntrySize, size - (long)entry);
                var anchor = Patched.RelocationsIn(section, entry + (ulong)spec.AnchorOffset, entry + (ulong)spec.AnchorOffset + 1).FirstOrDefault();
                if (anchor is null)
                    continue;
                var target = Patched.Resolve(anchor.Symbol, anchor.Addend);
                if (target.Kind != TargetKind.Symbol || target.Symbol is not { IsFunction: true } f || !emitter.Included.ContainsKey(f))
                    continue;
                if (spec.KeyOffset >= 0 && Patched.RelocationsIn(section, entry + (ulong)spec.KeyOffset, entry + (ulong)spec.KeyOffset + 1).FirstOrDefault() is { } key)
                {
                    var where = $"{spec.Name}+0x{key.Offset:x}";
                    var resolved = new ResolvedRelocation(key.Offset, key.Type, key.Addend, Patched.Resolve(key.Symbol, key.Addend), key);
                    if (Policy.DecideKey(spec, resolved, f, where) != KeyAction.Keep)
                        continue;
                }
                var isAlt = spec.Name == ".altinstructions";
                var (outSection, outOffset) = emitter.AppendEntry(section, entry, length, spec.EntrySize,
                    isAlt ? r => r.Offset != entry + 4 : null); // the replacement code is copied by AltReplacement
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
            var resolved = new ResolvedRelocation(r.Offset, r.Type, r.Addend, Patched.Resolve(r.Symbol, r.Addend), r) { DescribesCode = true };
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
