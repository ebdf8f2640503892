using Livegraft.Elf;
using System.Diagnostics;
using System.Buffers.Binary;
using System.IO.Compression;

namespace Livegraft.Symbols;

/// <summary>How a bzImage payload is compressed (<c>CONFIG_KERNEL_*</c>).</summary>
public enum PayloadCompression
{
    /// <summary>Not compressed: the input was already a vmlinux ELF.</summary>
    None,
    /// <summary><c>CONFIG_KERNEL_GZIP</c>; decoded natively.</summary>
    Gzip,
    /// <summary><c>CONFIG_KERNEL_BZIP2</c>; decoded by <c>bzip2 -dc</c>.</summary>
    Bzip2,
    /// <summary><c>CONFIG_KERNEL_LZMA</c>; decoded by <c>xz --format=lzma -dc</c>.</summary>
    Lzma,
    /// <summary><c>CONFIG_KERNEL_XZ</c>; decoded by <c>xz -dc</c>.</summary>
    Xz,
    /// <summary><c>CONFIG_KERNEL_LZO</c>; decoded by <c>lzop -dc</c>.</summary>
    Lzo,
    /// <summary><c>CONFIG_KERNEL_LZ4</c> (legacy frame); decoded by <c>lz4 -dc</c>.</summary>
    Lz4,
    /// <summary><c>CONFIG_KERNEL_ZSTD</c>; decoded by <c>zstd -dc</c>.</summary>
    Zstd,
}

/// <summary>The parts of the x86 boot header (Documentation/x86/boot.rst) that locate the payload.</summary>
/// <param name="ProtocolVersion">Boot protocol version, e.g. <c>0x020f</c>.</param>
/// <param name="SetupSectors">512-byte setup sectors after the boot sector (<c>setup_sects</c>, 0 meaning 4).</param>
/// <param name="PayloadOffset">File offset of the compressed payload (protected-mode start + <c>payload_offset</c>).</param>
/// <param name="PayloadLength">Length of the payload including the trailing 4-byte uncompressed size.</param>
/// <param name="Compression">Format, recognised from the payload's magic bytes.</param>
public sealed record BzImageHeader(ushort ProtocolVersion, int SetupSectors, long PayloadOffset, long PayloadLength, PayloadCompression Compression);

/// <summary>
/// Turns what a distro ships as the kernel (<c>vmlinuz</c>, an x86 bzImage) into the vmlinux ELF
/// inside it. A plain vmlinux ELF is accepted as is.
/// </summary>
public static class KernelImage
{
    /// <summary>Reads a bzImage or vmlinux from disk and returns the vmlinux ELF bytes.</summary>
    public static byte[] ReadVmlinux(string path)
    {
        byte[] data;
        try
        {
            data = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LivegraftException(ExitCode.InvalidInput, SymbolErrors.NotAKernelImage, $"cannot read kernel image: {e.Message}", path);
        }
        return ExtractVmlinux(data, path);
    }

    /// <summary>True when <paramref name="data"/> carries the x86 boot header magic (<c>HdrS</c> at 0x202).</summary>
    public static bool IsBzImage(ReadOnlySpan<byte> data) =>
        data.Length >= 0x206 && data[0x202] == (byte)'H' && data[0x203] == (byte)'d' && data[0x204] == (byte)'r' && data[0x205] == (byte)'S';

    /// <summary>Returns the vmlinux ELF inside a bzImage, or <paramref name="data"/> itself when it already is an ELF.</summary>
    public static byte[] ExtractVmlinux(byte[] data, string? file = null)
    {
        if (ElfFile.IsElf64(data))
            return data;
        var header = ParseHeader(data, file);
        return Decompress(data.AsSpan((int)header.PayloadOffset, (int)header.PayloadLength), header.Compression, file, header.PayloadOffset);
    }

    /// <summary>Parses the boot header of a bzImage (boot protocol 2.08+ for <c>payload_offset</c>).</summary>
    public static BzImageHeader ParseHeader(ReadOnlySpan<byte> data, string? file = null)
    {
        if (!IsBzImage(data))
            throw SymbolErrors.Invalid(SymbolErrors.NotAKernelImage, "neither an x86 bzImage (no 'HdrS' at 0x202) nor an ELF64 file", file, 0);
        if (data.Length < 0x250)
            throw SymbolErrors.Invalid(SymbolErrors.BadBootHeader, $"boot header truncated: file is 0x{data.Length:x} bytes", file, data.Length);
        // Offsets from Documentation/x86/boot.rst, "The Real-Mode Kernel Header".
        var version = BinaryPrimitives.ReadUInt16LittleEndian(data[0x206..]);
        if (version < 0x0208)
            throw SymbolErrors.Invalid(SymbolErrors.BadBootHeader, $"boot protocol {version >> 8}.{version & 0xff:d2} predates payload_offset (2.08)", file, 0x206);
        int setupSects = data[0x1f1];
        if (setupSects == 0)
            setupSects = 4;
        long protectedMode = (setupSects + 1) * 512L;
        long payloadOffset = protectedMode + BinaryPrimitives.ReadUInt32LittleEndian(data[0x248..]);
        long payloadLength = BinaryPrimitives.ReadUInt32LittleEndian(data[0x24c..]);
        if (payloadLength < 8 || payloadOffset + payloadLength > data.Length)
            throw SymbolErrors.Invalid(SymbolErrors.BadBootHeader,
                $"payload 0x{payloadOffset:x}+0x{payloadLength:x} runs past the end of the file (0x{data.Length:x} bytes); truncated image?", file, 0x248);
        var compression = DetectCompression(data.Slice((int)payloadOffset, (int)payloadLength));
        if (compression is null)
            throw SymbolErrors.Invalid(SymbolErrors.UnknownCompression,
                $"payload starts with {Convert.ToHexString(data.Slice((int)payloadOffset, 6))}, which is no known kernel compression", file, payloadOffset);
        return new BzImageHeader(version, setupSects, payloadOffset, payloadLength, compression.Value);
    }

    /// <summary>Recognises a compressed stream by its magic, as scripts/extract-vmlinux does.</summary>
    public static PayloadCompression? DetectCompression(ReadOnlySpan<byte> d) => ElfFile.IsElf64(d) ? PayloadCompression.None : d switch
    {
        [0x1f, 0x8b, ..] => PayloadCompression.Gzip,
        [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, ..] => PayloadCompression.Xz,
        [(byte)'B', (byte)'Z', (byte)'h', ..] => PayloadCompression.Bzip2,
        [0x5d, 0x00, 0x00, ..] => PayloadCompression.Lzma,
        [0x89, 0x4c, 0x5a, 0x4f, ..] => PayloadCompression.Lzo,
        [0x02, 0x21, 0x4c, 0x18, ..] => PayloadCompression.Lz4,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => PayloadCompression.Zstd,
        _ => null,
    };

    /// <summary>
    /// Decompresses a kernel payload. Kbuild appends the uncompressed size as 4 little-endian bytes
    /// (<c>size_append</c> in scripts/Makefile.lib); they are cut off before decoding and checked after.
    /// </summary>
    public static byte[] Decompress(ReadOnlySpan<byte> payload, PayloadCompression compression, string? file = null, long payloadOffset = 0)
    {
        if (compression == PayloadCompression.None)
            return payload.ToArray();
        if (payload.Length < 8)
            throw SymbolErrors.Invalid(SymbolErrors.DecompressionFailed, "payload too short", file, payloadOffset);
        var expected = BinaryPrimitives.ReadUInt32LittleEndian(payload[^4..]);
        var stream = payload[..^4];
        var output = compression switch
        {
            PayloadCompression.Gzip => Gunzip(stream, expected, file, payloadOffset),
            PayloadCompression.Xz => RunDecompressor("xz", ["-dc"], compression, stream, expected, file, payloadOffset),
            PayloadCompression.Lzma => RunDecompressor("xz", ["--format=lzma", "-dc"], compression, stream, expected, file, payloadOffset),
            PayloadCompression.Bzip2 => RunDecompressor("bzip2", ["-dc"], compression, stream, expected, file, payloadOffset),
            PayloadCompression.Lzo => RunDecompressor("lzop", ["-dc"], compression, stream, expected, file, payloadOffset),
            PayloadCompression.Lz4 => RunDecompressor("lz4", ["-dc"], compression, stream, expected, file, payloadOffset),
            PayloadCompression.Zstd => RunDecompressor("zstd", ["-dc"], compression, stream, expected, file, payloadOffset),
            _ => throw new UnreachableException(),
        };
        if ((uint)output.Length != expected)
            throw SymbolErrors.Invalid(SymbolErrors.DecompressionFailed,
                $"{compression} payload decompressed to 0x{output.Length:x} bytes, the image says 0x{expected:x}", file, payloadOffset);
        return output;
    }

    private static byte[] Gunzip(ReadOnlySpan<byte> stream, uint expected, string? file, long payloadOffset)
    {
        try
        {
            // A copy of the payload (a few MB) keeps this free of unsafe code.
            using var input = new MemoryStream(stream.ToArray(), writable: false);
            using var gz = new GZipStream(input, CompressionMode.Decompress);
            return ReadAll(gz, expected);
        }
        catch (InvalidDataException e)
        {
            throw SymbolErrors.Invalid(SymbolErrors.DecompressionFailed, $"gzip payload is corrupt: {e.Message}", file, payloadOffset);
        }
    }

    /// <summary>Reads a stream to its end into an array sized for the expected length.</summary>
    private static byte[] ReadAll(Stream s, uint expected)
    {
        var buffer = new byte[Math.Max(expected, 4096u) + 1];
        var length = 0;
        while (true)
        {
            if (length == buffer.Length)
                Array.Resize(ref buffer, checked(buffer.Length * 2));
            var n = s.Read(buffer, length, buffer.Length - length);
            if (n == 0)
                break;
            length += n;
        }
        if (length != buffer.Length)
            Array.Resize(ref buffer, length);
        return buffer;
    }

    internal static byte[] RunDecompressor(string tool, string[] args, PayloadCompression format, ReadOnlySpan<byte> stream, uint expected, string? file, long payloadOffset)
    {
        ProcessResult result;
        try
        {
            result = ProcessRunner.Run(new ProcessSpec(tool, args) { Stdin = stream.ToArray(), BinaryStdout = true, StdoutCapacity = (int)Math.Min(expected, int.MaxValue / 2) });
        }
        catch (LivegraftException e) when (e.Diagnostics[0].Id == CoreErrors.CannotRun)
        {
            throw new LivegraftException(ExitCode.HostFailure, SymbolErrors.DecompressorMissing,
                $"the kernel payload is {format}-compressed and '{tool}' cannot be run ({e.Diagnostics[0].Message}); install it (scripts/install-deps)", file, $"0x{payloadOffset:x}");
        }
        if (result.ExitCode != 0)
            throw SymbolErrors.Invalid(SymbolErrors.DecompressionFailed,
                $"{tool} {string.Join(' ', args)} failed on the {format} payload ({result.ExitCode}): {result.Stderr.Trim()}", file, payloadOffset);
        return result.StdoutBytes;
    }
}
