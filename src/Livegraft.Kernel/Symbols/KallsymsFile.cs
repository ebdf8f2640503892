using System.Globalization;
using System.IO.Compression;

namespace Livegraft.Kernel.Symbols;

/// <summary>
/// A <c>/proc/kallsyms</c> dump: <c>address type name</c> lines for vmlinux, then
/// <c>address type name\t[module]</c> lines for modules and the pseudo-modules
/// <c>[bpf]</c>, <c>[__builtin__ftrace]</c> and <c>[__builtin__kprobes]</c> (kernel/kallsyms.c, s_show).
/// </summary>
public sealed class KallsymsFile
{
    private readonly Lazy<KernelSymbol[]> _vmlinux;

    private KallsymsFile(IReadOnlyList<KernelSymbol> symbols)
    {
        Symbols = symbols;
        _vmlinux = new Lazy<KernelSymbol[]>(() => symbols.Where(s => s.Module is null).ToArray());
    }

    /// <summary>Every line, in file order.</summary>
    public IReadOnlyList<KernelSymbol> Symbols { get; }

    /// <summary>The vmlinux part: lines without <c>[module]</c>, in order (exactly the kallsyms tables
    /// of the image, <c>kallsyms_num_syms</c> of them, unless names were empty).</summary>
    public IReadOnlyList<KernelSymbol> Vmlinux => _vmlinux.Value;

    /// <summary>Lines of one module (or pseudo-module such as <c>bpf</c>), in order.</summary>
    public IReadOnlyList<KernelSymbol> ForModule(string module) => Symbols.Where(s => s.Module == module).ToArray();

    /// <summary>The distinct module names, in order of first appearance.</summary>
    public IReadOnlyList<string> Modules => Symbols.Select(s => s.Module).OfType<string>().Distinct().ToArray();

    /// <summary>True when every address is zero, as an unprivileged reader sees with <c>kptr_restrict</c>.</summary>
    public bool AddressesHidden => Symbols.Count > 0 && Symbols.All(s => s.Address == 0);

    /// <summary>Reads a dump from disk; a <c>.gz</c> file is decompressed.</summary>
    public static KallsymsFile Read(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            using var reader = path.EndsWith(".gz", StringComparison.Ordinal)
                ? new StreamReader(new GZipStream(stream, CompressionMode.Decompress))
                : new StreamReader(stream);
            return Parse(reader, path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            throw new LivegraftException(ExitCode.InvalidInput, SymbolErrors.BadKallsymsLine, $"cannot read kallsyms dump: {e.Message}", path);
        }
    }

    /// <summary>Parses dump text.</summary>
    public static KallsymsFile Parse(string text, string? file = null) => Parse(new StringReader(text), file);

    /// <summary>Parses dump text line by line.</summary>
    public static KallsymsFile Parse(TextReader reader, string? file = null)
    {
        var symbols = new List<KernelSymbol>(1 << 17);
        var lineNumber = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNumber++;
            if (line.Length == 0)
                continue;
            symbols.Add(ParseLine(line, file, lineNumber));
        }
        return new KallsymsFile(symbols);
    }

    /// <summary>Parses one line: <c>address type name</c>, optionally followed by a tab and <c>[module]</c>.</summary>
    public static KernelSymbol ParseLine(string line, string? file = null, int lineNumber = 0)
    {
        var s = line.AsSpan().TrimEnd('\r');
        var firstSpace = s.IndexOf(' ');
        if (firstSpace <= 0 || !ulong.TryParse(s[..firstSpace], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var address))
            throw Bad("expected a hexadecimal address", line, file, lineNumber);
        var rest = s[(firstSpace + 1)..];
        if (rest.Length < 3 || rest[1] != ' ' || !char.IsAsciiLetter(rest[0]) && rest[0] != '?')
            throw Bad("expected a one-letter type after the address", line, file, lineNumber);
        var type = rest[0];
        rest = rest[2..];
        string? module = null;
        var tab = rest.IndexOf('\t');
        if (tab >= 0)
        {
            var m = rest[(tab + 1)..].Trim();
            if (m.Length < 3 || m[0] != '[' || m[^1] != ']')
                throw Bad("expected [module] after the tab", line, file, lineNumber);
            module = m[1..^1].ToString();
            rest = rest[..tab];
        }
        if (rest.IsEmpty || rest.Contains(' '))
            throw Bad("expected one symbol name", line, file, lineNumber);
        return new KernelSymbol(rest.ToString(), type, address, module);
    }

    private static LivegraftException Bad(string message, string line, string? file, int lineNumber) =>
        SymbolErrors.Invalid(SymbolErrors.BadKallsymsLine, $"{message}: '{line}'", file, $"line {lineNumber}");
}
