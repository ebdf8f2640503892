using System.Buffers.Binary;

namespace Livegraft.Elf;

/// <summary>ELF notes (gABI "Note Section"): the GNU build id of a kernel, read from a run of notes
/// (<c>/sys/kernel/notes</c>) or from an image's PT_NOTE segments.</summary>
public static class ElfNotes
{
    /// <summary>The NT_GNU_BUILD_ID descriptor (hex) in a run of Elf64_Nhdr notes, or null.</summary>
    public static string? GnuBuildId(ReadOnlySpan<byte> notes)
    {
        // Elf64_Nhdr: namesz, descsz, type (4 bytes each), then name and desc padded to 4.
        while (notes.Length >= 12)
        {
            var namesz = BinaryPrimitives.ReadUInt32LittleEndian(notes);
            var descsz = BinaryPrimitives.ReadUInt32LittleEndian(notes[4..]);
            var type = BinaryPrimitives.ReadUInt32LittleEndian(notes[8..]);
            var nameLen = (int)((namesz + 3) & ~3u);
            var descLen = (int)((descsz + 3) & ~3u);
            if (namesz > 4096 || descsz > 4096 || 12 + nameLen + descLen > notes.Length)
                return null;
            if (type == 3 /* NT_GNU_BUILD_ID */ && notes.Slice(12, (int)namesz).SequenceEqual("GNU\0"u8))
                return Convert.ToHexStringLower(notes.Slice(12 + nameLen, (int)descsz));
            notes = notes[(12 + nameLen + descLen)..];
        }
        return null;
    }

    /// <summary>The GNU build id of an ELF64 little-endian executable (e.g. vmlinux), from its PT_NOTE program headers; null when it has none.</summary>
    public static string? GnuBuildIdOfImage(ReadOnlySpan<byte> elf)
    {
        if (elf.Length < 64 || !elf[..4].SequenceEqual("\u007fELF"u8) || elf[4] != 2 /* ELFCLASS64 */ || elf[5] != 1 /* ELFDATA2LSB */)
            return null;
        var phoff = BinaryPrimitives.ReadUInt64LittleEndian(elf[0x20..]);
        var phentsize = BinaryPrimitives.ReadUInt16LittleEndian(elf[0x36..]);
        var phnum = BinaryPrimitives.ReadUInt16LittleEndian(elf[0x38..]);
        for (var i = 0; i < phnum; i++)
        {
            var at = phoff + (ulong)(i * phentsize);
            if (at + 56 > (ulong)elf.Length)
                return null;
            var ph = elf[(int)at..];
            if (BinaryPrimitives.ReadUInt32LittleEndian(ph) != 4 /* PT_NOTE */)
                continue;
            var offset = BinaryPrimitives.ReadUInt64LittleEndian(ph[0x08..]);
            var size = BinaryPrimitives.ReadUInt64LittleEndian(ph[0x20..]);
            if (offset + size <= (ulong)elf.Length && GnuBuildId(elf.Slice((int)offset, (int)size)) is { } id)
                return id;
        }
        return null;
    }
}
