using System.Text;
using Livegraft.Elf;

namespace Livegraft.Symbols;

/// <summary>
/// A kernel module's <c>.modinfo</c>: NUL-separated <c>key=value</c> strings in file order
/// (<c>vermagic=</c>, <c>name=</c>, <c>depends=virtio,virtio_ring</c>, <c>alias=crypto-crc32c</c>,
/// <c>livepatch=Y</c>, Livegraft's own <c>livegraft_*</c>). Keys may repeat.
/// </summary>
public sealed class ModuleInfo
{
    private ModuleInfo(IReadOnlyList<KeyValuePair<string, string>> entries) => Entries = entries;

    /// <summary>Every entry, in file order.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Entries { get; }

    /// <summary>No entries (a module without <c>.modinfo</c>).</summary>
    public static ModuleInfo Empty { get; } = new([]);

    /// <summary>The last value of <paramref name="key"/>, or null (the kernel and modinfo(8) take the last one).</summary>
    public string? Get(string key)
    {
        string? value = null;
        foreach (var kv in Entries)
            if (kv.Key == key)
                value = kv.Value;
        return value;
    }

    /// <summary>Every value of <paramref name="key"/>, in order.</summary>
    public IReadOnlyList<string> All(string key) => Entries.Where(kv => kv.Key == key).Select(kv => kv.Value).ToArray();

    /// <summary>The modules <c>depends=</c> names (modpost writes one comma-separated entry), as the
    /// kernel names them (dashes become underscores).</summary>
    public IReadOnlySet<string> Depends =>
        All("depends").SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Select(m => m.Replace('-', '_')).ToHashSet(StringComparer.Ordinal);

    /// <summary>Parses the bytes of a <c>.modinfo</c> section (padding NULs between entries are skipped).</summary>
    public static ModuleInfo Parse(ReadOnlySpan<byte> data)
    {
        var entries = new List<KeyValuePair<string, string>>();
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
                entries.Add(new(text[..eq], text[(eq + 1)..]));
        }
        return new ModuleInfo(entries);
    }

    /// <summary>The <c>.modinfo</c> of an already read module.</summary>
    public static ModuleInfo Of(ElfFile module) => module.FindSection(".modinfo") is { } s ? Parse(s.Data.Span) : Empty;

    /// <summary>Reads only the <c>.modinfo</c> section of <paramref name="koPath"/> (cheap enough to
    /// scan every module of a kernel); malformed files throw the ELF reader's diagnostics.</summary>
    public static ModuleInfo Read(string koPath) => ElfFile.ReadSectionData(koPath, ".modinfo") is { } data ? Parse(data) : Empty;

    /// <summary>kbuild's module name for a file name: basename without <c>.ko</c>, <c>-</c> → <c>_</c>.</summary>
    public static string NameFromFileName(string path)
    {
        var name = Path.GetFileName(path);
        if (name.EndsWith(".ko", StringComparison.Ordinal))
            name = name[..^3];
        return name.Replace('-', '_');
    }
}
