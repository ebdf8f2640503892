using Livegraft.Elf;
using static Livegraft.Elf.ElfNative;

namespace Livegraft.Diff;

/// <summary>What happens to one reference from included code or data.</summary>
internal enum ReferenceAction
{
    /// <summary>The output carries its own copy of the target (an element, a string, a section).</summary>
    Copy,
    /// <summary>An ordinary undefined symbol, resolved by the module loader (exports) or by the
    /// module link (definitions in another unit of the same patch).</summary>
    Normal,
    /// <summary>A livepatch relocation to <c>.klp.sym.&lt;obj&gt;.&lt;name&gt;,&lt;sympos&gt;</c>.</summary>
    Livepatch,
    /// <summary>The reference cannot be carried: the patch is refused with a diagnostic.</summary>
    Refuse,
}

/// <summary>What a copy decision copies.</summary>
internal enum CopyKind
{
    /// <summary>A function or data object of the patched object (its element).</summary>
    Element,
    /// <summary>A string of a mergeable string section, by content.</summary>
    String,
    /// <summary>A whole section no symbol describes (read-only constants, <c>.altinstr_aux</c>).</summary>
    Section,
}

/// <summary>The decision for one reference. <see cref="Rule"/> names the row of the policy table
/// (docs/differ.md, "The reference policy") that decided it.</summary>
internal readonly record struct ReferenceDecision(ReferenceAction Action, string Rule)
{
    /// <summary>What a <see cref="ReferenceAction.Copy"/> copies.</summary>
    public CopyKind CopyKind { get; init; }
    /// <summary>The element copied (<see cref="CopyKind.Element"/>).</summary>
    public ElfSymbol? Element { get; init; }
    /// <summary>The section copied (<see cref="CopyKind.Section"/>) and the offset of the target in it
    /// beyond the target's own offset (a label's value).</summary>
    public ElfSection? Section { get; init; }
    /// <summary>Extra offset into the copied section.</summary>
    public long SectionOffset { get; init; }
    /// <summary>The undefined symbol's name (<see cref="ReferenceAction.Normal"/>) or the klp symbol's name.</summary>
    public string? Name { get; init; }
    /// <summary>The patched symbol a normal reference stands for (its binding is kept weak when it was).</summary>
    public ElfSymbol? Like { get; init; }
    /// <summary>The klp object (<see cref="ReferenceAction.Livepatch"/>).</summary>
    public string? Object { get; init; }
    /// <summary>The klp sympos.</summary>
    public int Sympos { get; init; }
    /// <summary>The refusal (<see cref="ReferenceAction.Refuse"/>).</summary>
    public Diagnostic? Refusal { get; init; }

    /// <summary>The <c>.klp.sym</c> symbol name of a livepatch decision.</summary>
    public string KlpSymbol => $".klp.sym.{Object}.{Name},{Sympos}";
}

/// <summary>What a special-section entry keyed by a static key or static call does in the output.</summary>
internal enum KeyAction
{
    /// <summary>Kept: the key is in the output or in vmlinux (whose klp relocations the module
    /// loader applies before jump labels and static calls are initialised).</summary>
    Keep,
    /// <summary>Dropped: the site keeps the code the compiler wrote (a disabled tracepoint or
    /// pr_debug; a static call through its trampoline), with a note.</summary>
    Drop,
    /// <summary>Refused (LG0105).</summary>
    Refuse,
}

/// <summary>
/// The one place that decides the fate of every relocation of included code and data: copy the
/// target into the patch, an ordinary relocation, a livepatch relocation (object and sympos), or a
/// refusal. The emitter only carries decisions out; refusals are collected as values (nothing is
/// thrown) so that a build reports all of them. The table in docs/differ.md lists each rule.
/// </summary>
internal sealed class ReferencePolicy
{
    private readonly DiffRun _run;
    private readonly Dictionary<ElfSymbol, ReferenceDecision> _original = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<string> _noted = new(StringComparer.Ordinal);
    private readonly HashSet<string> _refused = new(StringComparer.Ordinal);
    private Dictionary<string, ElfSymbol>? _origLabels;

    public ReferencePolicy(DiffRun run) => _run = run;

    private IParentSymbols Parent => _run.Options.Parent;

    private ObjectIndex Orig => _run.Orig;

    private ObjectIndex Patched => _run.Patched;

    /// <summary>Decides the reference to <paramref name="t"/> found at <paramref name="where"/>;
    /// <paramref name="isBranch"/> when it goes to code as such: the target of a direct call or
    /// jump, or an entry of a special section describing included code (ORC, jump tables...).</summary>
    public ReferenceDecision Decide(Target t, bool isBranch, string where)
    {
        var d = DecideUnrecorded(t, isBranch, where);
        if (d.Action == ReferenceAction.Refuse)
            Record(d.Refusal!);
        return d;
    }

    private ReferenceDecision DecideUnrecorded(Target t, bool isBranch, string where)
    {
        switch (t.Kind)
        {
            case TargetKind.String:
                return new(ReferenceAction.Copy, "string") { CopyKind = CopyKind.String };
            case TargetKind.Section:
                return AnonymousPlace(t.Section, where);
        }
        var p = t.Symbol!;
        if (p.Section is null)
        {
            if (p.SpecialIndex == SHN_ABS)
                return new(ReferenceAction.Normal, "absolute") { Name = p.Name, Like = p };
            return Original(p.Name, null, p, where);
        }
        if (_run.Elements[p] is not { } e)
            return Label(p, where);
        if (e.IsFunction && e.Status == ChangeKind.Changed && !isBranch && t.Offset == 0 && e.Twin is not null && _run.IsRedirected(p))
        {
            // The address of a replaced function (its entry; places inside it are code of the copy,
            // such as jump tables and jump-label targets): ftrace sends calls through it to the new code
            // while the patch is enabled, and the pointer stays valid once the patch is gone.
            return Original(e.Twin.Name, e.Twin, p, where);
        }
        if (e.Included)
            return CopyElement(p, "included");
        if (e.IsFunction)
            return e.Status == ChangeKind.Same ? Original(e.Twin!.Name, e.Twin, p, where) : CopyElement(p, e.Status == ChangeKind.New ? "new function" : "changed function");
        if (e.Status == ChangeKind.New || e.Twin is null)
            return CopyElement(p, "new data");
        if (e.Status == ChangeKind.Changed && !e.IsWritable)
            return CopyElement(p, "changed read-only data"); // the new code uses its new constants; the old code keeps the old ones
        // Existing data stays the kernel's (a changed object is refused by itself, LG0101).
        var original = Original(e.Twin.Name, e.Twin, p, where);
        if (original.Action == ReferenceAction.Refuse && !e.IsWritable && e.Status == ChangeKind.Same)
        {
            // A constant the parent has many copies of (_acpi_module_name, __msg.N, symbols.N) or
            // none (merged or discarded there): the same bytes in the patch are as good.
            if (_noted.Add("ro:" + p.Name))
                _run.Result.Notes.Add(new Diagnostic(DiffErrors.ReadOnlyCopied, Severity.Note,
                    $"read-only '{e.Twin.Name}' cannot be pinned in {Parent.ObjectName} ({original.Refusal!.Id}); the patch carries its own copy", Patched.Name, p.Section.Name));
            return CopyElement(p, "read-only data that cannot be pinned");
        }
        return original;
    }

    private static ReferenceDecision CopyElement(ElfSymbol p, string rule) => new(ReferenceAction.Copy, rule) { CopyKind = CopyKind.Element, Element = p };

    /// <summary>A place in a section that no function or object covers.</summary>
    private ReferenceDecision AnonymousPlace(ElfSection? section, string where)
    {
        if (section is null)
            return Refusal(DiffErrors.UnresolvedRelocation, $"cannot resolve the relocation at {where}", where);
        if (section.Name.StartsWith(".altinstr_aux", StringComparison.Ordinal))
            return new(ReferenceAction.Copy, "alternative slow path") { CopyKind = CopyKind.Section, Section = section };
        if (IsWritable(section) && !IsNewSection(section))
            return Refusal(DiffErrors.AnonymousWritable,
                $"the reference at {where} points into writable '{section.Name}' where no symbol names the data: it can be neither copied (the kernel's copy would stop being used) nor found in {Parent.ObjectName}", where);
        return new(ReferenceAction.Copy, "anonymous constant") { CopyKind = CopyKind.Section, Section = section };
    }

    /// <summary>A symbol that is not an element: a named label with no type (assembly), or
    /// something in a section the differ skips.</summary>
    private ReferenceDecision Label(ElfSymbol p, string where)
    {
        if (p.Type is STT_FUNC or STT_OBJECT)
        {
            // In a section the differ skips (an ignored section, say): the kernel's when it has one.
            return _run.Twins.TryGetValue(p, out var twinOf) ? Original(twinOf.Name, twinOf, p, where) : CopyElement(p, "uncompared definition");
        }
        _origLabels ??= Orig.Symbols.Symbols.Where(s => s.Section is not null && s.Type == STT_NOTYPE && s.Name.Length > 0)
            .GroupBy(s => s.Name, StringComparer.Ordinal).Where(g => g.Count() == 1).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        if (_origLabels.TryGetValue(p.Name, out var twin) && twin.Section!.Name == p.Section!.Name)
            return Original(p.Name, twin, p, where);
        var section = p.Section!;
        if (IsWritable(section) && !IsNewSection(section))
            return Refusal(DiffErrors.AnonymousWritable,
                $"'{p.Name}' (referenced at {where}) is a label in writable '{section.Name}' that {Orig.Name} does not have: it can be neither copied nor found in {Parent.ObjectName}", where);
        return new(ReferenceAction.Copy, "label") { CopyKind = CopyKind.Section, Section = section, SectionOffset = (long)p.Value };
    }

    /// <summary>Something that stays where it is: in the parent, exported, or in another unit of the patch.</summary>
    private ReferenceDecision Original(string name, ElfSymbol? origSymbol, ElfSymbol patchedSymbol, string where)
    {
        var key = origSymbol ?? patchedSymbol;
        if (_original.TryGetValue(key, out var cached))
            return cached;
        var decision = DecideOriginal(name, origSymbol, patchedSymbol, where);
        _original[key] = decision;
        return decision;
    }

    private ReferenceDecision DecideOriginal(string name, ElfSymbol? origSymbol, ElfSymbol patchedSymbol, string where)
    {
        var isGlobal = origSymbol is null ? !patchedSymbol.IsLocal : !origSymbol.IsLocal;
        if (isGlobal && Parent.IsExported(name))
            return Export(name, patchedSymbol);
        if (isGlobal && origSymbol is null && _run.Options.ModuleDefines.Contains(name))
            return new(ReferenceAction.Normal, "defined by another unit of the patch") { Name = name, Like = patchedSymbol };
        if (isGlobal)
        {
            if (!Parent.Defines(name))
                return Refusal(DiffErrors.SymbolNotFound, $"'{name}' (referenced at {where}) is neither exported nor defined in {Parent.ObjectName}", where);
            if (origSymbol?.Bind == STB_WEAK && _noted.Add("weak:" + name))
                _run.Result.Notes.Add(new Diagnostic(DiffErrors.WeakByName, Severity.Note,
                    $"'{name}' is __weak here: the reference binds by name to the definition {Parent.ObjectName} runs", Patched.Name, origSymbol.Section?.Name));
            return new(ReferenceAction.Livepatch, origSymbol?.Bind == STB_WEAK ? "weak definition" : "global in the parent") { Name = name, Object = Parent.ObjectName, Sympos = 0 };
        }
        if (TrySympos(origSymbol!, out var sympos, out var failure))
            return new(ReferenceAction.Livepatch, "local in the parent") { Name = name, Object = Parent.ObjectName, Sympos = sympos };
        return Refusal(failure!.Id, failure.Message, where, failure.File);
    }

    /// <summary>An exported symbol. Exports of vmlinux are ordinary relocations the module loader
    /// resolves (namespaced ones make the module import their namespace). When the parent is a module,
    /// its own exports and those of a module it depends on become livepatch relocations in the parent's
    /// <c>.klp.rela</c> sections, as kpatch does: klp applies them when the parent loads, when its
    /// dependencies are loaded too, so the patch module depends on neither and pins neither
    /// (Documentation/livepatch/module-elf-format.rst only forbids a module's klp sections to reference
    /// vmlinux). An export of a module the parent does not depend on (new in the fix) stays ordinary,
    /// with a warning: the patch then needs that module loaded and holds it (LG0160).</summary>
    private ReferenceDecision Export(string name, ElfSymbol like)
    {
        var exporter = Parent.ExportedBy(name);
        var parentIsModule = Parent.ObjectName != "vmlinux";
        if (parentIsModule && exporter == Parent.ObjectName)
            return new(ReferenceAction.Livepatch, "export of the patched module") { Name = name, Object = exporter, Sympos = 0 };
        if (parentIsModule && exporter is not null && exporter != "vmlinux")
        {
            if (Parent.DependsOn(exporter))
                return new(ReferenceAction.Livepatch, "export of a module the patched module depends on") { Name = name, Object = exporter, Sympos = 0 };
            Note(DiffErrors.ExportOfUnrelatedModule, $"'{name}' is exported by module {exporter}, which {Parent.ObjectName} does not depend on: the patch module links against it, so it needs {exporter} loaded and holds it", null);
        }
        if (Parent.ExportNamespace(name) is { Length: > 0 } ns && !_run.Result.ImportNamespaces.Contains(ns))
            _run.Result.ImportNamespaces.Add(ns);
        var rule = exporter is null || exporter == "vmlinux" || exporter == Parent.ObjectName ? "export" : "export of another module";
        return new(ReferenceAction.Normal, rule) { Name = name, Like = like };
    }

    /// <summary>The klp sympos of a local of the original object, or the diagnostic saying why it cannot be pinned.</summary>
    public bool TrySympos(ElfSymbol origSymbol, out int sympos, out Diagnostic? failure)
    {
        try
        {
            sympos = Parent.Sympos(origSymbol, Orig.File);
            failure = null;
            return true;
        }
        catch (LivegraftException ex) when (ex.Diagnostics.Count > 0)
        {
            sympos = 0;
            failure = ex.Diagnostics[0];
            return false;
        }
    }

    /// <summary>What to do with a special-section entry of an included function whose key
    /// (static key of a jump label, static call key) is <paramref name="key"/>.</summary>
    public KeyAction DecideKey(SpecialSection spec, ResolvedRelocation key, ElfSymbol function, string where)
    {
        var decision = Decide(key.Target, false, where);
        if (decision.Action != ReferenceAction.Livepatch || Parent.ObjectName == "vmlinux")
            return decision.Action == ReferenceAction.Refuse ? KeyAction.Refuse : KeyAction.Keep;
        // A key in a module: its klp relocation is applied only when klp initialises the object,
        // after the module loader has already walked our jump table and static call sites.
        var name = key.Target.Symbol?.Name ?? "";
        if (spec.Name == ".static_call_sites")
        {
            // The call still goes to the static call's trampoline, which static_call_update keeps
            // pointing at the current target: correct, one jump slower.
            Note(DiffErrors.ModuleStaticCallDropped, $"'{function.Name}' calls static call '{name}' of module {Parent.ObjectName}: the site is not registered, so it calls through the trampoline", spec.Name);
            return KeyAction.Drop;
        }
        if (name.StartsWith("__tracepoint_", StringComparison.Ordinal) || Correlate.IsDynamicDebug(name))
        {
            // kpatch and klp-build do the same: the branch stays as compiled (a NOP for a tracepoint
            // or a pr_debug that is off by default), so the patched code does not fire it.
            var what = name.StartsWith("__tracepoint_", StringComparison.Ordinal) ? $"tracepoint {name["__tracepoint_".Length..]}" : "pr_debug";
            Note(DiffErrors.ModuleKeyDropped, $"'{function.Name}' uses the {what} of module {Parent.ObjectName}: it stays as compiled (disabled) in the patched code", spec.Name);
            return KeyAction.Drop;
        }
        Record(Refusal(DiffErrors.ModuleKey,
            $"'{function.Name}' uses a {(spec.Name == "__jump_table" ? "jump label" : "static call")} whose key '{name}' lives in module {Parent.ObjectName}; its relocation cannot be applied before the key is used (use static_key_enabled())", where).Refusal!);
        return KeyAction.Refuse;
    }

    private void Note(string id, string message, string? section)
    {
        if (_noted.Add(id + message))
            _run.Result.Notes.Add(new Diagnostic(id, Severity.Warning, message, Patched.Name, section));
    }

    /// <summary>A refusal decision; recorded when it is the final decision of a reference.</summary>
    private ReferenceDecision Refusal(string id, string message, string? location, string? file = null) =>
        new(ReferenceAction.Refuse, "refused") { Refusal = new Diagnostic(id, Severity.Error, message, file ?? Patched.Name, location) };

    /// <summary>Records a refusal that is not a reference's (once per message).</summary>
    public void Refuse(string id, string message, string? location) => Record(new Diagnostic(id, Severity.Error, message, Patched.Name, location));

    private void Record(Diagnostic d)
    {
        if (_refused.Add(d.Id + d.Message))
            _run.Result.Refusals.Add(d);
    }

    /// <summary>Writable: SHF_WRITE or NOBITS (.bss).</summary>
    public static bool IsWritable(ElfSection s) => (s.Flags & SHF_WRITE) != 0 || s.Type == SHT_NOBITS;

    private HashSet<string>? _origSections;

    private bool IsNewSection(ElfSection s) => !(_origSections ??= Orig.File.Sections.Select(x => x.Name).ToHashSet(StringComparer.Ordinal)).Contains(s.Name);
}
