using Livegraft.Elf;
using Livegraft.Symbols;

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
/// <c>.modinfo</c> strings and its klp relocation sections and symbols, read through Livegraft.Elf.
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
    public bool? Replace => Get(LivegraftInfo.Replace) switch { "Y" or "1" or "true" => true, "N" or "0" or "false" => false, _ => null };

    /// <summary>Build id (hex) of the kernel the patch was built against, when the build recorded it.</summary>
    public string? RecordedKernelBuildId => Get(LivegraftInfo.KernelBuildId);

    /// <summary>The functions the patch replaces (<c>object</c>, name, sympos), when the build recorded
    /// them; null for a module that does not say (not built by Livegraft).</summary>
    public IReadOnlySet<(string Object, string Name, int Sympos)>? Functions
    {
        get
        {
            if (Get(LivegraftInfo.Functions) is not { } text)
                return null;
            var set = new HashSet<(string, string, int)>();
            foreach (var word in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                var colon = word.IndexOf(':', StringComparison.Ordinal);
                var comma = word.LastIndexOf(',');
                if (colon > 0 && comma > colon && int.TryParse(word.AsSpan(comma + 1), out var sympos))
                    set.Add((word[..colon], word[(colon + 1)..comma], sympos));
            }
            return set;
        }
    }

    /// <summary>The patches this one says it is cumulative over (module names).</summary>
    public IReadOnlyList<string> Supersedes => (Get(LivegraftInfo.Supersedes) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>The klp objects the module relocates against, from its klp sections (a patch of
    /// <c>vmlinux</c> without klp relocations does not show here: the object list lives in .data). A klp
    /// symbol may name another module than its section's object (an export of a module the object
    /// depends on): that module is not an object of the patch.</summary>
    public IReadOnlyList<string> KlpObjects =>
        KlpRelocations.Select(r => r.Object).Distinct(StringComparer.Ordinal).ToList();

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
    public IReadOnlyList<KeyValuePair<string, string>> LivegraftEntries =>
        _modinfo.Where(kv => kv.Key.StartsWith("livegraft.", StringComparison.Ordinal))
            .Select(kv => new KeyValuePair<string, string>(kv.Key["livegraft.".Length..], kv.Value)).ToList();

    /// <summary>kbuild's module name for a file name: basename, no <c>.ko</c>, <c>-</c> → <c>_</c>.</summary>
    public static string NameFromFileName(string path) => ModuleInfo.NameFromFileName(path);

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
    public static KernelModuleFile Parse(byte[] file, string path)
    {
        ElfFile elf;
        try
        {
            elf = ElfFile.Read(file, path);
        }
        catch (LivegraftException e)
        {
            throw Malformed(path, e.Diagnostics[0].Message, e.Diagnostics[0].Location);
        }
        if (elf.Header.Class != ElfNative.ELFCLASS64 || elf.Header.Data != ElfNative.ELFDATA2LSB)
            throw Malformed(path, "not a 64-bit little-endian ELF file", null);
        if (elf.Header.Type != ElfNative.ET_REL)
            throw Malformed(path, "not a relocatable object (a kernel module is ET_REL)", null);
        var klpRelocations = new List<KlpRelocationSection>();
        foreach (var s in elf.Sections)
        {
            if (!s.Name.StartsWith(".klp.rela.", StringComparison.Ordinal))
                continue;
            // .klp.rela.<objname>.<section name>; objname has no dots (klp_apply_section_relocs).
            var rest = s.Name[".klp.rela.".Length..];
            var dot = rest.IndexOf('.', StringComparison.Ordinal);
            if (dot <= 0)
                throw Malformed(path, "incorrectly formatted klp relocation section name", s.Name);
            var count = s.EntrySize == 0 ? 0 : (int)(s.Size / s.EntrySize);
            klpRelocations.Add(new KlpRelocationSection(s.Name, rest[..dot], rest[(dot + 1)..], count));
        }
        var klpSymbols = new List<KlpSymbol>();
        foreach (var sym in elf.SymbolTable?.Symbols ?? [])
        {
            if (!sym.Name.StartsWith(".klp.sym.", StringComparison.Ordinal))
                continue;
            // .klp.sym.<objname>.<symbol>,<sympos> (module-elf-format.rst, "Livepatch symbols").
            var rest = sym.Name[".klp.sym.".Length..];
            var dot = rest.IndexOf('.', StringComparison.Ordinal);
            var comma = rest.LastIndexOf(',');
            if (dot <= 0 || comma < dot || !int.TryParse(rest.AsSpan(comma + 1), out var sympos))
                throw Malformed(path, $"incorrectly formatted livepatch symbol '{sym.Name}'", elf.SymbolTable!.Name);
            klpSymbols.Add(new KlpSymbol(rest[..dot], rest[(dot + 1)..comma], sympos));
        }
        var modinfo = ModuleInfo.Of(elf).Entries.ToList();
        var hasThisModule = elf.FindSection(".gnu.linkonce.this_module") is not null;
        return new KernelModuleFile(path, modinfo, klpRelocations, klpSymbols, hasThisModule, Sha256Hash.HashHex(file), file.Length);
    }

    private static LivegraftException Malformed(string path, string message, string? location) =>
        new(ExitCode.InvalidInput, "LG0501", message, path, location);
}
