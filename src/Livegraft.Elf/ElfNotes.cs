using System.Buffers.Binary;
using static Livegraft.Elf.ElfNative;

namespace Livegraft.Elf;

/// <summary>ELF notes (gABI "Note Section"): <c>Elf64_Nhdr</c> namesz, descsz, type (4 bytes each),
/// then the name and the descriptor, each padded to 4 bytes.</summary>
public static class ElfNotes
{
    /// <summary>The GNU build id (lower-case hex) in a run of notes, as a <c>.notes</c> section or
    /// <c>/sys/kernel/notes</c> holds them; null when there is none or the notes are malformed.</summary>
    public static string? GnuBuildId(ReadOnlySpan<byte> notes)
    {
        while (notes.Length >= 12)
        {
            var namesz = BinaryPrimitives.ReadUInt32LittleEndian(notes);
            var descsz = BinaryPrimitives.ReadUInt32LittleEndian(notes[4..]);
            var type = BinaryPrimitives.ReadUInt32LittleEndian(notes[8..]);
            var nameLen = (int)((namesz + 3) & ~3u);
            var descLen = (int)((descsz + 3) & ~3u);
            if (namesz > 4096 || descsz > 4096 || 12 + nameLen + descLen > notes.Length)
                return null;
            if (type == NT_GNU_BUILD_ID && notes.Slice(12, (int)namesz).SequenceEqual("GNU\0"u8))
                return Convert.ToHexStringLower(notes.Slice(12 + nameLen, (int)descsz));
            notes = notes[(12 + nameLen + descLen)..];
        }
        return null;
    }

    /// <summary>The GNU build id of a file, from its SHT_NOTE sections or PT_NOTE segments; null when it has none.</summary>
    public static string? GnuBuildId(ElfFile file)
    {
        foreach (var s in file.Sections)
            if (s.Type == SHT_NOTE && GnuBuildId(s.Data.Span) is { } id)
                return id;
        var bytes = file.OriginalBytes.Span;
        foreach (var p in file.Segments)
            if (p.Type == PT_NOTE && p.Offset <= (ulong)bytes.Length && p.FileSize <= (ulong)bytes.Length - p.Offset
                && GnuBuildId(bytes.Slice((int)p.Offset, (int)p.FileSize)) is { } id)
                return id;
        return null;
    }

    /// <summary>The GNU build id of an ELF image in memory (vmlinux); null when it has none.</summary>
    public static string? GnuBuildIdOfImage(ReadOnlyMemory<byte> elf) => GnuBuildId(ElfFile.Read(elf));
}
