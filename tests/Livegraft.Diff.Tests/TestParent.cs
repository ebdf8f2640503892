using Livegraft.Elf;

namespace Livegraft.Diff.Tests;

/// <summary>
/// A parent (vmlinux or module) made up for a case: a fixed set of exports, every name the
/// original object defines or references, and sympos 0 unless the case's <c>parent=</c> column
/// says a name has duplicates (<c>name:2</c>), cannot be pinned (<c>name:ambiguous</c>, LG0110)
/// or is absent from kallsyms (<c>name:missing</c>, LG0109), or runs another definition than the
/// unit's <c>__weak</c> one (<c>name:overridden</c>); its <c>exports=</c> column adds exports
/// (<c>name</c>, or <c>name:NAMESPACE</c> for EXPORT_SYMBOL_NS, with <c>@module</c> naming the
/// exporter) and <c>depends=</c> the modules the parent depends on.
/// </summary>
public sealed class TestParent : IParentSymbols
{
    /// <summary>What the fixtures may call without a livepatch relocation.</summary>
    public static readonly IReadOnlySet<string> Exports = new HashSet<string>(StringComparer.Ordinal)
    {
        "printk", "_printk", "seq_puts", "seq_printf", "__fentry__", "__x86_return_thunk", "kmalloc",
        "__might_sleep", "do_work", "report_error",
    };

    private readonly HashSet<string> _defined = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _sympos = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string?> _exports = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _exporters = new(StringComparer.Ordinal);
    private readonly HashSet<string> _depends = new(StringComparer.Ordinal);

    /// <summary>Builds the parent of <paramref name="orig"/> for <paramref name="c"/>.</summary>
    public TestParent(ElfFile orig, DiffCase c)
    {
        ObjectName = c.Columns.GetValueOrDefault("object") ?? "vmlinux";
        foreach (var s in orig.SymbolTable!.Symbols)
            if (s.Name.Length > 0 && !s.IsSectionSymbol && s.Type != ElfNative.STT_FILE)
                _defined.Add(s.Name);
        foreach (var entry in c.List("parent"))
        {
            var colon = entry.LastIndexOf(':');
            _sympos[entry[..colon]] = entry[(colon + 1)..];
        }
        _depends.UnionWith(c.List("depends"));
        foreach (var item in c.List("exports"))
        {
            var at = item.IndexOf('@', StringComparison.Ordinal);
            var entry = at < 0 ? item : item[..at];
            if (at >= 0)
                _exporters[entry.Split(':')[0]] = item[(at + 1)..];
            var colon = entry.IndexOf(':', StringComparison.Ordinal);
            _exports[colon < 0 ? entry : entry[..colon]] = colon < 0 ? null : entry[(colon + 1)..];
        }
    }

    /// <inheritdoc/>
    public string ObjectName { get; }

    /// <inheritdoc/>
    public bool IsExported(string name) => Exports.Contains(name) || _exports.ContainsKey(name);

    /// <inheritdoc/>
    public string? ExportedBy(string name) => _exporters.GetValueOrDefault(name);

    /// <inheritdoc/>
    public bool DependsOn(string moduleName) => _depends.Contains(moduleName);

    /// <inheritdoc/>
    public string? ExportNamespace(string name) => _exports.GetValueOrDefault(name);

    /// <inheritdoc/>
    public bool RunsOtherDefinition(ElfSymbol weakDefinition, ElfFile origObject) => _sympos.GetValueOrDefault(weakDefinition.Name) is "overridden";

    /// <inheritdoc/>
    public bool Defines(string name) => _defined.Contains(name) && !(_sympos.GetValueOrDefault(name) is "missing");

    /// <inheritdoc/>
    public int Sympos(ElfSymbol symbol, ElfFile origObject) => _sympos.GetValueOrDefault(symbol.Name) switch
    {
        null or "overridden" => 0,
        "ambiguous" => throw new LivegraftException(ExitCode.InvalidInput, "LG0110", $"'{symbol.Name}' is ambiguous in {ObjectName}"),
        "missing" => throw new LivegraftException(ExitCode.InvalidInput, "LG0109", $"'{symbol.Name}' is not in {ObjectName}"),
        var n => int.Parse(n, System.Globalization.CultureInfo.InvariantCulture),
    };
}
