using System.Buffers.Binary;
using System.Text;

namespace Livegraft.Vm;

/// <summary>Reads the <c>.modinfo</c> section of a kernel module: NUL-separated <c>key=value</c>
/// strings such as <c>depends=virtio,virtio_ring</c> and <c>alias=crypto-crc32c</c>.</summary>
/// <remarks>Only ELF64 little-endian is handled (x86-64 modules). Reads the ELF header, the
/// section header table and the one section, not the whole file, so scanning thousands of
/// modules stays cheap.</remarks>
public static class ModInfo
{
    /// <summary>Returns the <c>key=value</c> pairs of <paramref name="koPath"/>'s <c>.modinfo</c>, in file order.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> Read(string koPath)
    {
        using var file = File.OpenRead(koPath);
        var ehdr = ReadAt(file, 0, 64, koPath);
        // gABI: e_ident = \x7fELF, EI_CLASS 2 = ELFCLASS64, EI_DATA 1 = ELFDATA2LSB.
        if (ehdr[0] != 0x7F || ehdr[1] != (byte)'E' || ehdr[2] != (byte)'L' || ehdr[3] != (byte)'F' || ehdr[4] != 2 || ehdr[5] != 1)
            throw Bad(koPath, "not an ELF64 little-endian object");
        var shoff = (long)BinaryPrimitives.ReadUInt64LittleEndian(ehdr.AsSpan(0x28));
        int shentsize = BinaryPrimitives.ReadUInt16LittleEndian(ehdr.AsSpan(0x3A));
        int shnum = BinaryPrimitives.ReadUInt16LittleEndian(ehdr.AsSpan(0x3C));
        int shstrndx = BinaryPrimitives.ReadUInt16LittleEndian(ehdr.AsSpan(0x3E));
        if (shentsize < 64 || shnum == 0 || shstrndx >= shnum)
            throw Bad(koPath, "bad section header table");
        var shdrs = ReadAt(file, shoff, shentsize * shnum, koPath);
        (long Offset, long Size, uint Name) Section(int i)
        {
            var s = shdrs.AsSpan(i * shentsize);
            return ((long)BinaryPrimitives.ReadUInt64LittleEndian(s[0x18..]), (long)BinaryPrimitives.ReadUInt64LittleEndian(s[0x20..]), BinaryPrimitives.ReadUInt32LittleEndian(s));
        }
        var strtab = Section(shstrndx);
        var names = ReadAt(file, strtab.Offset, (int)strtab.Size, koPath);
        for (var i = 0; i < shnum; i++)
        {
            var sec = Section(i);
            if (sec.Name >= names.Length || !NameIs(names, (int)sec.Name, ".modinfo"))
                continue;
            var data = ReadAt(file, sec.Offset, (int)sec.Size, koPath);
            var result = new List<KeyValuePair<string, string>>();
            foreach (var entry in Encoding.UTF8.GetString(data).Split('\0', StringSplitOptions.RemoveEmptyEntries))
            {
                var eq = entry.IndexOf('=');
                if (eq > 0)
                    result.Add(new(entry[..eq], entry[(eq + 1)..]));
            }
            return result;
        }
        return [];
    }

    private static bool NameIs(byte[] strtab, int offset, string name)
    {
        var end = Array.IndexOf(strtab, (byte)0, offset);
        return end >= 0 && Encoding.ASCII.GetString(strtab, offset, end - offset) == name;
    }

    private static byte[] ReadAt(FileStream file, long offset, int length, string path)
    {
        if (offset < 0 || length < 0 || offset + length > file.Length)
            throw Bad(path, "truncated");
        var buffer = new byte[length];
        file.Position = offset;
        file.ReadExactly(buffer);
        return buffer;
    }

    private static LivegraftException Bad(string path, string why) =>
        new(ExitCode.InvalidInput, "LG0711", $"cannot read .modinfo: {why}", path);
}
