using System.Globalization;
using System.Text;

namespace Livegraft.Symbols;

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
/// <remarks>
/// A file read from disk stays on disk (<see cref="TextSource"/>): one streamed pass checks every line and
/// indexes the names (<see cref="NameIndex"/>: offset, length and hash per line), so
/// <see cref="IsExported"/> reads back only the lines whose name hash matches, and a
/// <see cref="SymversEntry"/> is decoded only for the names asked about. A distro's file has ~25,000
/// lines; a diff asks about a few hundred names.
/// </remarks>
public sealed class ModuleSymvers
{
    private readonly TextSource _text;
    private readonly TextNames _lines;
    private readonly NameIndex _names;
    private SymversEntry[]? _entries;

    private ModuleSymvers(TextSource text, TextNames lines, NameIndex names)
    {
        _text = text;
        _lines = lines;
        _names = names;
    }

    /// <summary>All entries, in file order (decoded on first use).</summary>
    public IReadOnlyList<SymversEntry> Entries
    {
        get
        {
            if (_entries is null)
            {
                var entries = new List<SymversEntry>(_names.Count);
                _text.ForEachLine((raw, _) =>
                {
                    var line = raw.TrimEnd((byte)'\r');
                    if (!line.IsEmpty && entries.Count < _names.Count)
                        entries.Add(Decode(line));
                });
                _entries = [.. entries];
            }
            return _entries;
        }
    }

    /// <summary>Reads a <c>Module.symvers</c> file; it is indexed where it lies and read back only for
    /// the names asked about.</summary>
    public static ModuleSymvers Read(string path)
    {
        try
        {
            return Index(TextSource.OnDisk(path, SymbolErrors.BadSymversLine), path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LivegraftException(ExitCode.InvalidInput, SymbolErrors.BadSymversLine, $"cannot read Module.symvers: {e.Message}", path);
        }
    }

    /// <summary>Parses <c>Module.symvers</c> text.</summary>
    public static ModuleSymvers Parse(string text, string? file = null) => Parse(Encoding.UTF8.GetBytes(text), file);

    /// <summary>Parses <c>Module.symvers</c> bytes (UTF-8); the array is kept, not copied.</summary>
    public static ModuleSymvers Parse(byte[] text, string? file = null) => Index(TextSource.InMemory(text), file);

    private static ModuleSymvers Index(TextSource text, string? file)
    {
        if (text.Length > int.MaxValue)
            throw SymbolErrors.Invalid(SymbolErrors.BadSymversLine, "Module.symvers larger than 2 GB", file, 0);
        var capacity = text.CountNewlines() + 1;
        var nameStart = new int[capacity];
        var nameLength = new int[capacity];
        var nameHash = new uint[capacity];
        int count = 0, lineNumber = 0;
        text.ForEachLine((raw, offset) =>
        {
            lineNumber++;
            var line = raw.TrimEnd((byte)'\r');
            if (line.IsEmpty)
                return;
            Span<Range> fields = stackalloc Range[6];
            // modpost always writes five fields, the last possibly empty; older files have four.
            var n = SplitFields(line, fields);
            if (count == capacity || n is < 4 or > 5 || line[fields[1]].IsEmpty || line[fields[2]].IsEmpty || !TryParseCrc(line[fields[0]], out _))
                throw SymbolErrors.Invalid(SymbolErrors.BadSymversLine, $"expected 'crc<TAB>name<TAB>module<TAB>export-type<TAB>namespace': '{Encoding.UTF8.GetString(line)}'", file, $"line {lineNumber}");
            var (start, length) = fields[1].GetOffsetAndLength(line.Length);
            nameStart[count] = (int)offset + start;
            nameLength[count] = length;
            nameHash[count] = NameIndex.Hash(line.Slice(start, length));
            count++;
        });
        var lines = new TextNames(text, nameStart, nameLength);
        return new ModuleSymvers(text, lines, new NameIndex(lines, nameHash, count));
    }

    /// <summary>Tab-separated fields of a line into <paramref name="fields"/>; returns how many there are,
    /// stopping one past the buffer's capacity.</summary>
    private static int SplitFields(ReadOnlySpan<byte> line, Span<Range> fields)
    {
        var n = 0;
        foreach (var field in line.Split((byte)'\t'))
        {
            if (n == fields.Length)
                return n + 1;
            fields[n++] = field;
        }
        return n;
    }

    private static bool TryParseCrc(ReadOnlySpan<byte> field, out uint crc)
    {
        crc = 0;
        return field.StartsWith("0x"u8) && uint.TryParse(field[2..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out crc);
    }

    /// <summary>Entry <paramref name="index"/>, read back from its line.</summary>
    private SymversEntry Decode(int index) => Decode(_text.LineAt(_lines.Start(index)).AsSpan().TrimEnd((byte)'\r'));

    /// <summary>The entry on one line (checked when the file was indexed).</summary>
    private static SymversEntry Decode(ReadOnlySpan<byte> line)
    {
        Span<Range> f = stackalloc Range[6];
        var n = SplitFields(line, f);
        _ = TryParseCrc(line[f[0]], out var crc);
        return new SymversEntry(crc, Text(line[f[1]]), Text(line[f[2]]), Text(line[f[3]]), n == 5 ? Text(line[f[4]]) : "");

        static string Text(ReadOnlySpan<byte> s) => s.IsEmpty ? "" : Encoding.UTF8.GetString(s);
    }

    /// <summary>The export of <paramref name="name"/>, or null when nothing exports it.</summary>
    public SymversEntry? Find(string name) => _names.EntriesOf(name) is [var first, ..] ? Decode(first) : null;

    /// <summary>Every export of <paramref name="name"/> (more than one only in unusual trees).</summary>
    public IReadOnlyList<SymversEntry> FindAll(string name) => Array.ConvertAll(_names.EntriesOf(name), Decode);

    /// <summary>True when <paramref name="name"/> is exported by anyone.</summary>
    public bool IsExported(string name) => _names.EntriesOf(name).Length > 0;

    /// <summary>Exports of one exporter (<c>vmlinux</c> or a module path), in file order.</summary>
    public IEnumerable<SymversEntry> ExportedBy(string module) => Entries.Where(e => e.Module == module || e.ModuleName == module);
}
