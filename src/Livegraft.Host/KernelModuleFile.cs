using System.Buffers.Binary;
using System.Text;

namespace Livegraft.Host;

/// <summary>One <c>.klp.rela.&lt;object&gt;.&lt;section&gt;</c> section: relocations the livepatch
/// core resolves against <c>&lt;object&gt;</c> when it is loaded (livepatch/module-elf-format.rst).</summary>
/// <param name="Section">Full section name.</param>
/// <param name="Object">Patched object, <c>vmlinux</c> or a module name.</param>
/// <param name="TargetSection">Section of the patch module the relocations apply to.</param>
/// <param name="Count">Number of relocation entries.</param>
public sealed record KlpRelocationSection(string Section, string Object, string TargetSection, int Count);

/// <summary>One <c>.klp.sym.&lt;object&gt;.&lt;symbol&gt;,&lt;sympos&gt;</c> symbol of a livepatch module.</summary>
/// <param name="Object">Object the symbol lives in.</param>
/// <param name="Symbol">Symbol name in that object.</param>
/// <param name="Sympos">Position among same-named local symbols; 0 means unique.</param>
public sealed record KlpSymbol(string Object, string Symbol, int Sympos);

/// <summary>
/// What Livegraft needs to know about a kernel module file before loading it: its
/// <c>.modinfo</c> strings and its klp relocation sections and symbols. Deliberately a tiny
/// ELF64 little-endian reader over a span, isolated so the shared ELF model can replace it.
/// </summary>
public sealed class KernelModuleFile
{
    private readonly List<KeyValuePair<string, string>> _modinfo;

    private KernelModuleFile(string path, List<KeyValuePair<string, string>> modinfo, IReadOnlyList<KlpRelocationSection> klpRelocations,
        IReadOnlyList<KlpSymbol> klpSymbols, bool hasThisModule, string sha256, long size)
    {
        Path = path;
        _modinfo = modinfo;
        KlpRelocations = klpRelocations;
        KlpSymbols = klpSymbols;
        HasThisModule = hasThisModule;
        Sha256 = sha256;
        Size = size;
    }

    /// <summary>File the module was read from.</summary>
    public string Path { get; }

    /// <summary>Every <c>.modinfo</c> key=value pair, in file order (keys may repeat, e.g. <c>depends</c>, <c>alias</c>).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> ModInfo => _modinfo;

    /// <summary>The <c>.klp.rela.*</c> sections.</summary>
    public IReadOnlyList<KlpRelocationSection> KlpRelocations { get; }

    /// <summary>The <c>.klp.sym.*</c> symbols.</summary>
    public IReadOnlyList<KlpSymbol> KlpSymbols { get; }

    /// <summary>True when the file has <c>.gnu.linkonce.this_module</c>, i.e. it is a kernel module at all.</summary>
    public bool HasThisModule { get; }

    /// <summary>SHA-256 of the whole file, lower-case hex.</summary>
    public string Sha256 { get; }

    /// <summary>File size in bytes.</summary>
    public long Size { get; }

    /// <summary>The module's name as the kernel will register it: <c>.modinfo name=</c> when present,
    /// else the file name without <c>.ko</c> and with <c>-</c> turned into <c>_</c> as kbuild does.</summary>
    public string Name => Get("name") ?? NameFromFileName(Path);

    /// <summary>The <c>vermagic</c> string, e.g. <c>6.1.0-56-amd64 SMP preempt mod_unload modversions </c>.</summary>
    public string? Vermagic => Get("vermagic");

    /// <summary>The kernel release the module was built for: the first word of <see cref="Vermagic"/>.</summary>
    public string? KernelRelease => Vermagic?.Split(' ', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault();

    /// <summary>True when <c>.modinfo</c> has <c>livepatch=Y</c> (set by <c>MODULE_INFO(livepatch, "Y")</c>).</summary>
    public bool IsLivepatch => Get("livepatch") == "Y";

    /// <summary>Whether the patch is an atomic replace (cumulative-patches.rst), when the build recorded it
    /// as <c>livegraft.replace</c>; null when unknown.</summary>
    public bool? Replace => (Get("livegraft.replace") ?? Get("livegraft_replace")) switch { "Y" or "1" or "true" => true, "N" or "0" or "false" => false, _ => null };

    /// <summary>Build id (hex) of the kernel the patch was built against, when the build recorded it.</summary>
    public string? RecordedKernelBuildId => Get("livegraft.kernel_build_id") ?? Get("livegraft_kernel_build_id");

    /// <summary>The klp objects the module relocates against, from its klp sections and symbols (a patch of
    /// <c>vmlinux</c> without klp relocations does not show here: the object list lives in .data).</summary>
    public IReadOnlyList<string> KlpObjects =>
        KlpRelocations.Select(r => r.Object).Concat(KlpSymbols.Select(s => s.Object)).Distinct(StringComparer.Ordinal).ToList();

    /// <summary>The last value of a <c>.modinfo</c> key, or null.</summary>
    public string? Get(string key)
    {
        string? value = null;
        foreach (var kv in _modinfo)
        {
            if (kv.Key == key)
                value = kv.Value;
        }
        return value;
    }

    /// <summary>The <c>livegraft.*</c> entries the build records (without the prefix).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> LivegraftInfo =>
        _modinfo.Where(kv => kv.Key.StartsWith("livegraft.", StringComparison.Ordinal))
            .Select(kv => new KeyValuePair<string, string>(kv.Key["livegraft.".Length..], kv.Value)).ToList();

    /// <summary>kbuild's module name for a file name: basename, no <c>.ko</c>, <c>-</c> → <c>_</c>.</summary>
    public static string NameFromFileName(string path)
    {
        var name = System.IO.Path.GetFileName(path);
        if (name.EndsWith(".ko", StringComparison.Ordinal))
            name = name[..^3];
        return name.Replace('-', '_');
    }

    /// <summary>Reads a module file; throws <see cref="LivegraftException"/> (LG0500 missing, LG0501 malformed).</summary>
    public static KernelModuleFile Read(string path)
    {
        if (Directory.Exists(path) || !File.Exists(path))
            throw new LivegraftException(ExitCode.InvalidInput, "LG0500", "no such module file", path);
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LivegraftException(ExitCode.InvalidInput, "LG0500", "cannot read module file: " + e.Message, path);
        }
        return Parse(bytes, path);
    }

    /// <summary>Parses module bytes; throws <see cref="LivegraftException"/> LG0501 on anything malformed.</summary>
    public static KernelModuleFile Parse(ReadOnlySpan<byte> file, string path)
    {
        // ELF64 header, gABI "ELF Header". Only what a module needs: class, data, type, sections.
        if (file.Length < 64 || !file[..4].SequenceEqual("\u007fELF"u8))
            throw Malformed(path, "not an ELF file", null);
        if (file[4] != 2 /* ELFCLASS64 */ || file[5] != 1 /* ELFDATA2LSB */)
            throw Malformed(path, "not a 64-bit little-endian ELF file", null);
        if (U16(file, 16) != 1 /* ET_REL */)
            throw Malformed(path, "not a relocatable object (a kernel module is ET_REL)", null);
        var shoff = U64(file, 0x28);
        var shentsize = U16(file, 0x3a);
        var shnum = (int)U16(file, 0x3c);
        var shstrndx = (int)U16(file, 0x3e);
        if (shentsize != 64 || shnum == 0 || shstrndx >= shnum || shoff > (ulong)file.Length || (ulong)file.Length - shoff < (ulong)shnum * 64)
            throw Malformed(path, "section header table out of bounds", null);

        var sections = new Section[shnum];
        for (var i = 0; i < shnum; i++)
        {
            var h = file.Slice((int)shoff + i * 64, 64);
            sections[i] = new Section(U32(h, 0), U32(h, 4), U64(h, 0x18), U64(h, 0x20), U32(h, 0x28), U64(h, 0x38));
            if (sections[i].Type != 8 /* SHT_NOBITS */ && (sections[i].Offset > (ulong)file.Length || (ulong)file.Length - sections[i].Offset < sections[i].Size))
                throw Malformed(path, $"section {i} extends past the end of the file (truncated?)", null);
        }
        var shstr = Data(file, sections[shstrndx]);

        var modinfo = new List<KeyValuePair<string, string>>();
        var klpRelocations = new List<KlpRelocationSection>();
        var klpSymbols = new List<KlpSymbol>();
        var hasThisModule = false;
        for (var i = 0; i < shnum; i++)
        {
            var name = CString(shstr, sections[i].Name, path, "section name");
            var s = sections[i];
            if (name == ".modinfo")
                ParseModInfo(Data(file, s), modinfo);
            else if (name == ".gnu.linkonce.this_module")
                hasThisModule = true;
            else if (name.StartsWith(".klp.rela.", StringComparison.Ordinal))
            {
                // .klp.rela.<objname>.<section name>; objname has no dots (klp_apply_section_relocs).
                var rest = name[".klp.rela.".Length..];
                var dot = rest.IndexOf('.', StringComparison.Ordinal);
                if (dot <= 0)
                    throw Malformed(path, "incorrectly formatted klp relocation section name", name);
                var count = s.EntSize == 0 ? 0 : (int)(s.Size / s.EntSize);
                klpRelocations.Add(new KlpRelocationSection(name, rest[..dot], rest[(dot + 1)..], count));
            }
            else if (s.Type == 2 /* SHT_SYMTAB */)
            {
                if (s.Link >= shnum)
                    throw Malformed(path, "symbol table links to a missing string table", name);
                var strtab = Data(file, sections[s.Link]);
                var symtab = Data(file, s);
                for (var off = 24; off + 24 <= symtab.Length; off += 24)
                {
                    var sym = CString(strtab, U32(symtab, off), path, name);
                    if (!sym.StartsWith(".klp.sym.", StringComparison.Ordinal))
                        continue;
                    // .klp.sym.<objname>.<symbol>,<sympos> (module-elf-format.rst, "Livepatch symbols").
                    var rest = sym[".klp.sym.".Length..];
                    var dot = rest.IndexOf('.', StringComparison.Ordinal);
                    var comma = rest.LastIndexOf(',');
                    if (dot <= 0 || comma < dot || !int.TryParse(rest.AsSpan(comma + 1), out var sympos))
                        throw Malformed(path, $"incorrectly formatted livepatch symbol '{sym}'", name);
                    klpSymbols.Add(new KlpSymbol(rest[..dot], rest[(dot + 1)..comma], sympos));
                }
            }
        }
        var sha = Sha256Hash.HashHex(file);
        return new KernelModuleFile(path, modinfo, klpRelocations, klpSymbols, hasThisModule, sha, file.Length);
    }

    private static void ParseModInfo(ReadOnlySpan<byte> data, List<KeyValuePair<string, string>> into)
    {
        // A run of NUL-terminated "key=value" strings, possibly padded with extra NULs (MODULE_INFO).
        while (!data.IsEmpty)
        {
            var end = data.IndexOf((byte)0);
            var entry = end < 0 ? data : data[..end];
            data = end < 0 ? default : data[(end + 1)..];
            if (entry.IsEmpty)
                continue;
            var text = Encoding.UTF8.GetString(entry);
            var eq = text.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
                into.Add(new(text[..eq], text[(eq + 1)..]));
        }
    }

    private readonly record struct Section(uint Name, uint Type, ulong Offset, ulong Size, uint Link, ulong EntSize);

    private static ReadOnlySpan<byte> Data(ReadOnlySpan<byte> file, Section s) =>
        s.Type == 8 ? default : file.Slice((int)s.Offset, (int)s.Size);

    private static string CString(ReadOnlySpan<byte> table, uint offset, string path, string what)
    {
        if (offset >= table.Length)
            throw Malformed(path, $"string offset 0x{offset:x} out of bounds", what);
        var rest = table[(int)offset..];
        var end = rest.IndexOf((byte)0);
        if (end < 0)
            throw Malformed(path, "unterminated string", what);
        return Encoding.UTF8.GetString(rest[..end]);
    }

    private static LivegraftException Malformed(string path, string message, string? location) =>
        new(ExitCode.InvalidInput, "LG0501", message, path, location);

    private static ushort U16(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt16LittleEndian(b[at..]);
    private static uint U32(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt32LittleEndian(b[at..]);
    private static ulong U64(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt64LittleEndian(b[at..]);
}
