using Livegraft.Elf;
using Livegraft.Symbols;
using static Livegraft.Elf.ElfNative;

namespace Livegraft.Verify;

/// <summary>A function's code as the target ships it: bytes at the symbol plus a mask of bytes the
/// target itself leaves to the loader (relocations of a <c>.ko</c>).</summary>
/// <param name="Address">Link address (vmlinux) or offset in its section (module).</param>
/// <param name="Bytes">The bytes, as many as asked for or fewer at the end of a section.</param>
/// <param name="Mask">0xff compare, 0 ignore; empty when everything may be compared.</param>
public sealed record TargetFunction(ulong Address, byte[] Bytes, byte[] Mask);

/// <summary>The code of one klp object of the target (vmlinux from the image, or a module's <c>.ko</c>).</summary>
public interface ITargetCode
{
    /// <summary>klp object name.</summary>
    string ObjectName { get; }

    /// <summary>The object's symbols in kallsyms order.</summary>
    SymbolTable Symbols { get; }

    /// <summary>Reads <paramref name="size"/> bytes of the symbol at kallsyms index <paramref name="index"/>;
    /// null when it has no file-backed bytes.</summary>
    TargetFunction? Read(int index, int size);
}

/// <summary>vmlinux from a bzImage or vmlinux file: kallsyms give the address, the program headers
/// map it to a file offset (the image is linked at its nokaslr addresses).</summary>
public sealed class ImageCode : ITargetCode
{
    private readonly byte[] _vmlinux;
    private readonly ElfFile _elf;

    /// <summary>Wraps already decompressed vmlinux bytes.</summary>
    public ImageCode(byte[] vmlinux, string? file = null)
    {
        _vmlinux = vmlinux;
        _elf = ElfFile.Read(vmlinux, file);
        Symbols = new SymbolTable(SymbolTable.VmlinuxObject, KallsymsTables.Read(vmlinux, file).Symbols);
    }

    /// <summary>Reads a bzImage (or vmlinux) from disk.</summary>
    public static ImageCode Open(string path) => new(KernelImage.ReadVmlinux(path), path);

    /// <inheritdoc/>
    public string ObjectName => SymbolTable.VmlinuxObject;

    /// <inheritdoc/>
    public SymbolTable Symbols { get; }

    /// <summary>The image's GNU build id (what <c>/sys/kernel/notes</c> of a kernel booted from it says), or null.</summary>
    public string? BuildId => ElfNotes.GnuBuildId(_elf);

    /// <inheritdoc/>
    public TargetFunction? Read(int index, int size)
    {
        var address = Symbols.Symbols[index].Address;
        var offset = _elf.FileOffsetOf(address);
        if (offset < 0)
            return null;
        var n = (int)Math.Min(size, _vmlinux.Length - offset);
        return new TargetFunction(address, _vmlinux.AsSpan((int)offset, n).ToArray(), []);
    }
}

/// <summary>A module from the image package: section contents at the symbol's value, with the
/// <c>.ko</c>'s own relocations masked (the module loader fills them).</summary>
public sealed class ModuleCode : ITargetCode
{
    private readonly ElfFile _ko;
    private readonly Dictionary<string, ElfSection> _sections;

    /// <summary>Reads <paramref name="koPath"/>.</summary>
    public ModuleCode(string koPath)
    {
        _ko = ElfFile.Read(koPath);
        Symbols = SymbolTable.FromModule(koPath);
        _sections = _ko.Sections.GroupBy(s => s.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        ObjectName = Symbols.ObjectName;
    }

    /// <inheritdoc/>
    public string ObjectName { get; }

    /// <inheritdoc/>
    public SymbolTable Symbols { get; }

    /// <inheritdoc/>
    public TargetFunction? Read(int index, int size)
    {
        var sym = Symbols.Symbols[index];
        if (sym.Section is not { } name || !_sections.TryGetValue(name, out var section) || section.Type == SHT_NOBITS)
            return null;
        var data = section.Data.Span;
        if (sym.Address >= (ulong)data.Length)
            return null;
        var n = (int)Math.Min((ulong)size, (ulong)data.Length - sym.Address);
        var mask = new byte[n];
        Array.Fill(mask, (byte)0xff);
        foreach (var rs in _ko.RelocationsFor(section))
        {
            foreach (var r in rs.Relocations)
            {
                var width = X86_64RelocationSize(r.Type);
                for (var k = 0; k < Math.Max(width, 4); k++)
                {
                    var at = (long)r.Offset + k - (long)sym.Address;
                    if (at >= 0 && at < n)
                        mask[at] = 0;
                }
            }
        }
        return new TargetFunction(sym.Address, data.Slice((int)sym.Address, n).ToArray(), mask);
    }
}
