using System.Globalization;
using System.IO.Compression;
using System.Text;

namespace Livegraft.Symbols;

/// <summary>
/// A <c>/proc/kallsyms</c> dump: <c>address type name</c> lines for vmlinux, then
/// <c>address type name\t[module]</c> lines for modules and the pseudo-modules
/// <c>[bpf]</c>, <c>[__builtin__ftrace]</c> and <c>[__builtin__kprobes]</c> (kernel/kallsyms.c, s_show).
/// </summary>
/// <remarks>
/// A dump read from disk stays on disk (<see cref="TextSource"/>): one streamed pass checks every line
/// and records, per line, where its name is (offset, length) and the name's hash, plus which runs of
/// lines belong to which module: 12 bytes a line instead of the ~40 of the line. A symbol becomes a
/// <see cref="KernelSymbol"/> only when asked for, read back from its offset. A diff asks about a few
/// hundred of a dump's ~100,000 names, through <see cref="SymbolTable.FromKallsyms"/>.
/// </remarks>
public sealed class KallsymsFile
{
    private readonly TextSource _text;
    private readonly int[] _nameStart;
    private readonly int[] _nameLength;
    private readonly uint[] _nameHash;
    private readonly int _count;
    private readonly Run[] _runs;
    private readonly string[] _modules;
    private KernelSymbol[]? _symbols;
    private KernelSymbol[]? _vmlinux;

    /// <summary>Consecutive lines of one owner; <see cref="Module"/> indexes <see cref="_modules"/>, -1 is vmlinux.</summary>
    private readonly record struct Run(int First, int Count, int Module);

    private delegate void SymbolLineVisitor(int index, ReadOnlySpan<byte> line);

    private KallsymsFile(TextSource text, int[] nameStart, int[] nameLength, uint[] nameHash, int count, Run[] runs, string[] modules, string? file)
    {
        _text = text;
        _nameStart = nameStart;
        _nameLength = nameLength;
        _nameHash = nameHash;
        _count = count;
        _runs = runs;
        _modules = modules;
        FileName = file;
    }

    /// <summary>Path or name used in diagnostics.</summary>
    public string? FileName { get; }

    /// <summary>Number of symbol lines (all objects).</summary>
    public int Count => _count;

    /// <summary>Every line, in file order (decoded on first use).</summary>
    public IReadOnlyList<KernelSymbol> Symbols => _symbols ??= Decode(_ => true);

    /// <summary>The vmlinux part: lines without <c>[module]</c>, in order (exactly the kallsyms tables
    /// of the image, <c>kallsyms_num_syms</c> of them, unless names were empty).</summary>
    public IReadOnlyList<KernelSymbol> Vmlinux => _vmlinux ??= Decode(m => m < 0);

    /// <summary>Lines of one module (or pseudo-module such as <c>bpf</c>), in order.</summary>
    public IReadOnlyList<KernelSymbol> ForModule(string module)
    {
        var id = Array.IndexOf(_modules, module);
        return id < 0 ? [] : Decode(m => m == id);
    }

    /// <summary>The distinct module names, in order of first appearance.</summary>
    public IReadOnlyList<string> Modules => _modules;

    /// <summary>True when every address is zero, as an unprivileged reader sees with <c>kptr_restrict</c>.</summary>
    public bool AddressesHidden
    {
        get
        {
            var hidden = _count > 0;
            ForEachSymbolLine((index, line) =>
            {
                if (hidden)
                {
                    _ = Split(line, out var address, out _, out _);
                    hidden = address == 0;
                }
            });
            return hidden;
        }
    }

    /// <summary>Reads a dump from disk; a <c>.gz</c> file is decompressed into memory, a plain one is
    /// indexed where it lies and read back only for the symbols asked for.</summary>
    public static KallsymsFile Read(string path)
    {
        try
        {
            if (path.EndsWith(".gz", StringComparison.Ordinal))
            {
                using var stream = File.OpenRead(path);
                using var gzip = new GZipStream(stream, CompressionMode.Decompress);
                using var buffer = new MemoryStream();
                gzip.CopyTo(buffer);
                return Index(TextSource.InMemory(buffer.ToArray()), path);
            }
            return Index(TextSource.OnDisk(path, SymbolErrors.BadKallsymsLine), path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            throw new LivegraftException(ExitCode.InvalidInput, SymbolErrors.BadKallsymsLine, $"cannot read kallsyms dump: {e.Message}", path);
        }
    }

    /// <summary>Parses dump text.</summary>
    public static KallsymsFile Parse(string text, string? file = null) => Parse(Encoding.UTF8.GetBytes(text), file);

    /// <summary>Parses dump text read to its end.</summary>
    public static KallsymsFile Parse(TextReader reader, string? file = null) => Parse(reader.ReadToEnd(), file);

    /// <summary>Parses dump bytes (UTF-8); the array is kept, not copied.</summary>
    public static KallsymsFile Parse(byte[] text, string? file = null) => Index(TextSource.InMemory(text), file);

    private static KallsymsFile Index(TextSource text, string? file)
    {
        if (text.Length > int.MaxValue)
            throw SymbolErrors.Invalid(SymbolErrors.BadKallsymsLine, "kallsyms dump larger than 2 GB", file, 0);
        var capacity = text.CountNewlines() + 1;
        var nameStart = new int[capacity];
        var nameLength = new int[capacity];
        var nameHash = new uint[capacity];
        var runs = new List<Run>();
        var modules = new List<string>();
        int count = 0, lineNumber = 0, runFirst = 0, runModule = -1;
        byte[] runModuleBytes = [];
        text.ForEachLine((raw, offset) =>
        {
            lineNumber++;
            var line = raw.TrimEnd((byte)'\r');
            if (line.IsEmpty)
                return;
            if (count == capacity)
                throw SymbolErrors.Invalid(SymbolErrors.BadKallsymsLine, "the file changed while it was read", file, $"line {lineNumber}");
            if (Split(line, out _, out var name, out var module) is { } problem)
                throw Bad(problem, line, file, lineNumber);
            var nameBytes = line[name];
            nameStart[count] = (int)offset + name.Start.Value;
            nameLength[count] = nameBytes.Length;
            nameHash[count] = NameIndex.Hash(nameBytes);
            var moduleBytes = line[module];
            // A new run starts where the owner changes, so module names become strings once a run.
            if (count == 0 || (moduleBytes.IsEmpty ? runModule != -1 : runModule == -1 || !moduleBytes.SequenceEqual(runModuleBytes)))
            {
                if (count > runFirst)
                    runs.Add(new Run(runFirst, count - runFirst, runModule));
                runFirst = count;
                runModuleBytes = moduleBytes.ToArray();
                runModule = -1;
                if (!moduleBytes.IsEmpty)
                {
                    var moduleName = Encoding.UTF8.GetString(moduleBytes);
                    runModule = modules.IndexOf(moduleName);
                    if (runModule < 0)
                    {
                        runModule = modules.Count;
                        modules.Add(moduleName);
                    }
                }
            }
            count++;
        });
        if (count > runFirst)
            runs.Add(new Run(runFirst, count - runFirst, runModule));
        return new KallsymsFile(text, nameStart, nameLength, nameHash, count, [.. runs], [.. modules], file);
    }

    /// <summary>Parses one line: <c>address type name</c>, optionally followed by a tab and <c>[module]</c>.</summary>
    public static KernelSymbol ParseLine(string line, string? file = null, int lineNumber = 0) =>
        ParseLine(Encoding.UTF8.GetBytes(line), null, file, lineNumber);

    private static KernelSymbol ParseLine(ReadOnlySpan<byte> raw, string? module, string? file, int lineNumber)
    {
        var bytes = raw.TrimEnd((byte)'\r');
        if (Split(bytes, out var address, out var name, out var moduleRange) is { } problem)
            throw Bad(problem, bytes, file, lineNumber);
        var moduleBytes = bytes[moduleRange];
        return new KernelSymbol(Encoding.UTF8.GetString(bytes[name]), (char)bytes[name.Start.Value - 2], address,
            module ?? (moduleBytes.IsEmpty ? null : Encoding.UTF8.GetString(moduleBytes)));
    }

    /// <summary>
    /// Splits one line (without its line end) into address, name and module (empty range for vmlinux),
    /// checking it is <c>hex-address type name</c> with an optional <c>\t[module]</c>. Returns what is
    /// wrong, or null.
    /// </summary>
    private static string? Split(ReadOnlySpan<byte> s, out ulong address, out Range name, out Range module)
    {
        name = module = default;
        address = 0;
        var firstSpace = s.IndexOf((byte)' ');
        if (firstSpace <= 0 || !ulong.TryParse(s[..firstSpace], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out address))
            return "expected a hexadecimal address";
        var typeAt = firstSpace + 1;
        var rest = s[typeAt..];
        if (rest.Length < 3 || rest[1] != ' ' || !char.IsAsciiLetter((char)rest[0]) && rest[0] != '?')
            return "expected a one-letter type after the address";
        var nameAt = typeAt + 2;
        rest = s[nameAt..];
        var nameEnd = s.Length;
        var tab = rest.IndexOf((byte)'\t');
        if (tab >= 0)
        {
            nameEnd = nameAt + tab;
            var after = s[(nameEnd + 1)..];
            var (offset, length) = System.Text.Ascii.Trim(after).GetOffsetAndLength(after.Length);
            var m = after.Slice(offset, length);
            if (m.Length < 3 || m[0] != '[' || m[^1] != ']')
                return "expected [module] after the tab";
            var moduleAt = nameEnd + 1 + offset;
            module = new Range(moduleAt + 1, moduleAt + length - 1);
            rest = rest[..tab];
        }
        if (rest.IsEmpty || rest.Contains((byte)' '))
            return "expected one symbol name";
        name = new Range(nameAt, nameEnd);
        return null;
    }

    /// <summary>Indexes the names of one owner's lines (<paramref name="module"/> null: vmlinux), for
    /// <see cref="SymbolTable"/>. The per-line arrays are shared when the owner's lines are the first
    /// run of the file, as vmlinux's are in a <c>/proc/kallsyms</c> dump; otherwise they are gathered.</summary>
    internal (NameIndex Index, TextNames Names) IndexNames(string? module)
    {
        var (start, length, hash, count) = Part(module);
        var names = new TextNames(_text, start, length);
        return (new NameIndex(names, hash, count), names);
    }

    private (int[] Start, int[] Length, uint[] Hash, int Count) Part(string? module)
    {
        var id = module is null ? -1 : Array.IndexOf(_modules, module);
        Run[] mine = module is not null && id < 0 ? [] : _runs.Where(r => r.Module == id).ToArray();
        if (mine.Length == 1 && mine[0].First == 0)
            return (_nameStart, _nameLength, _nameHash, mine[0].Count);
        var n = mine.Sum(r => r.Count);
        var start = new int[n];
        var length = new int[n];
        var hash = new uint[n];
        var k = 0;
        foreach (var r in mine)
        {
            Array.Copy(_nameStart, r.First, start, k, r.Count);
            Array.Copy(_nameLength, r.First, length, k, r.Count);
            Array.Copy(_nameHash, r.First, hash, k, r.Count);
            k += r.Count;
        }
        return (start, length, hash, n);
    }

    /// <summary>Addresses of one owner's lines, in order, from one streamed pass.</summary>
    internal ulong[] AddressesOf(string? module)
    {
        var id = module is null ? -1 : Array.IndexOf(_modules, module);
        var result = new List<ulong>();
        if (module is not null && id < 0)
            return [];
        ForEachSymbolLine((index, line) =>
        {
            if (ModuleOf(index) == id)
            {
                _ = Split(line, out var address, out _, out _);
                result.Add(address);
            }
        });
        return [.. result];
    }

    /// <summary>One owner's lines as symbols, in order, from one streamed pass.</summary>
    internal KernelSymbol[] SymbolsOf(string? module)
    {
        var id = module is null ? -1 : Array.IndexOf(_modules, module);
        return module is not null && id < 0 ? [] : Decode(m => m == id);
    }

    /// <summary>The symbol on the line whose name starts at <paramref name="nameStart"/>, read back from the dump.</summary>
    internal KernelSymbol SymbolAt(int nameStart, string? module) => ParseLine(_text.LineAt(nameStart), module, FileName, 0);

    private int ModuleOf(int index)
    {
        // Runs are few (one per module) and sorted by first line.
        var lo = 0;
        var hi = _runs.Length - 1;
        while (lo < hi)
        {
            var mid = (lo + hi + 1) >> 1;
            if (_runs[mid].First <= index)
                lo = mid;
            else
                hi = mid - 1;
        }
        return _runs[lo].Module;
    }

    /// <summary>Visits the non-empty lines with their symbol index (the file was checked when indexed).</summary>
    private void ForEachSymbolLine(SymbolLineVisitor visit)
    {
        var index = 0;
        _text.ForEachLine((raw, _) =>
        {
            var line = raw.TrimEnd((byte)'\r');
            if (!line.IsEmpty && index < _count)
                visit(index++, line);
        });
    }

    private KernelSymbol[] Decode(Func<int, bool> owner)
    {
        var result = new List<KernelSymbol>();
        ForEachSymbolLine((index, line) =>
        {
            var module = ModuleOf(index);
            if (owner(module))
                result.Add(ParseLine(line, module < 0 ? null : _modules[module], FileName, 0));
        });
        return [.. result];
    }

    private static LivegraftException Bad(string message, ReadOnlySpan<byte> line, string? file, int lineNumber) =>
        SymbolErrors.Invalid(SymbolErrors.BadKallsymsLine, $"{message}: '{Encoding.UTF8.GetString(line)}'", file, $"line {lineNumber}");
}
