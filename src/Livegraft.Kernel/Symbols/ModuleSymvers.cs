using System.Globalization;

namespace Livegraft.Kernel.Symbols;

/// <summary>One exported symbol from <c>Module.symvers</c>.</summary>
/// <param name="Crc">modversions CRC.</param>
/// <param name="Name">Exported symbol name.</param>
/// <param name="Module">Exporter: <c>vmlinux</c> or a module path without <c>.ko</c>, e.g. <c>fs/ext4/ext4</c>.</param>
/// <param name="ExportType"><c>EXPORT_SYMBOL</c>, <c>EXPORT_SYMBOL_GPL</c>, ...</param>
/// <param name="Namespace">Symbol namespace (<c>EXPORT_SYMBOL_NS</c>), or empty.</param>
public sealed record SymversEntry(uint Crc, string Name, string Module, string ExportType, string Namespace)
{
    /// <summary>True when the exporter is the core kernel.</summary>
    public bool IsVmlinux => Module == "vmlinux";

    /// <summary>Module name as the kernel knows it (<c>fs/ext4/ext4</c> → <c>ext4</c>; dashes become underscores).</summary>
    public string ModuleName => Module == "vmlinux" ? Module : Path.GetFileName(Module).Replace('-', '_');

    /// <summary>True for <c>EXPORT_SYMBOL_GPL</c> (and <c>_GPL_FUTURE</c>).</summary>
    public bool IsGplOnly => ExportType.Contains("_GPL", StringComparison.Ordinal);
}

/// <summary>
/// <c>Module.symvers</c> as written by scripts/mod/modpost.c (<c>write_dump</c>): one export per line,
/// <c>crc\tname\tmodule\texport-type\tnamespace</c>. Answers "is this symbol exported, and by whom".
/// </summary>
public sealed class ModuleSymvers
{
    private readonly Dictionary<string, List<SymversEntry>> _byName;

    private ModuleSymvers(IReadOnlyList<SymversEntry> entries)
    {
        Entries = entries;
        _byName = new Dictionary<string, List<SymversEntry>>(entries.Count, StringComparer.Ordinal);
        foreach (var e in entries)
        {
            if (!_byName.TryGetValue(e.Name, out var list))
                _byName[e.Name] = list = new List<SymversEntry>(1);
            list.Add(e);
        }
    }

    /// <summary>All entries, in file order.</summary>
    public IReadOnlyList<SymversEntry> Entries { get; }

    /// <summary>Reads a <c>Module.symvers</c> file.</summary>
    public static ModuleSymvers Read(string path)
    {
        try
        {
            return Parse(File.ReadAllText(path), path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LivegraftException(ExitCode.InvalidInput, SymbolErrors.BadSymversLine, $"cannot read Module.symvers: {e.Message}", path);
        }
    }

    /// <summary>Parses <c>Module.symvers</c> text.</summary>
    public static ModuleSymvers Parse(string text, string? file = null)
    {
        var entries = new List<SymversEntry>();
        var lineNumber = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNumber++;
            var line = raw.TrimEnd('\r');
            if (line.Length == 0)
                continue;
            var f = line.Split('\t');
            // modpost always writes five fields, the last possibly empty; older files have four.
            if (f.Length is < 4 or > 5 || f[1].Length == 0 || f[2].Length == 0
                || !f[0].StartsWith("0x", StringComparison.Ordinal)
                || !uint.TryParse(f[0].AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var crc))
                throw SymbolErrors.Invalid(SymbolErrors.BadSymversLine, $"expected 'crc<TAB>name<TAB>module<TAB>export-type<TAB>namespace': '{line}'", file, $"line {lineNumber}");
            entries.Add(new SymversEntry(crc, f[1], f[2], f[3], f.Length == 5 ? f[4] : ""));
        }
        return new ModuleSymvers(entries);
    }

    /// <summary>The export of <paramref name="name"/>, or null when nothing exports it.</summary>
    public SymversEntry? Find(string name) => _byName.TryGetValue(name, out var list) ? list[0] : null;

    /// <summary>Every export of <paramref name="name"/> (more than one only in unusual trees).</summary>
    public IReadOnlyList<SymversEntry> FindAll(string name) => _byName.TryGetValue(name, out var list) ? list : [];

    /// <summary>True when <paramref name="name"/> is exported by anyone.</summary>
    public bool IsExported(string name) => _byName.ContainsKey(name);

    /// <summary>Exports of one exporter (<c>vmlinux</c> or a module path), in file order.</summary>
    public IEnumerable<SymversEntry> ExportedBy(string module) => Entries.Where(e => e.Module == module || e.ModuleName == module);
}
