using System.Buffers.Binary;
using System.IO.Compression;
using Livegraft.Symbols;

namespace Livegraft.Symbols.Tests;

public class KernelImageTests
{
    private static byte[] ReferenceBzImage()
    {
        KernelTarget.Reference.EnsureImage();
        return File.ReadAllBytes(KernelTarget.Reference.KernelImage);
    }

    [Fact]
    public void ReferenceBootHeaderLocatesAnXzPayload()
    {
        var header = KernelImage.ParseHeader(ReferenceBzImage());
        Assert.Equal(PayloadCompression.Xz, header.Compression);
        Assert.True(header.ProtocolVersion >= 0x020f);
        Assert.Equal((header.SetupSectors + 1) * 512 + 0x2cc, header.PayloadOffset);
    }

    [Fact]
    public void ReferencePayloadIsTheVmlinuxElf()
    {
        var vmlinux = SymbolFixtures.Vmlinux;
        Assert.True(KernelImage.IsBzImage(ReferenceBzImage()));
        Assert.Equal(0x7f, vmlinux[0]);
        Assert.Equal("ELF"u8.ToArray(), vmlinux[1..4]);
        Assert.Equal(2, BinaryPrimitives.ReadUInt16LittleEndian(vmlinux.AsSpan(0x10)));   // ET_EXEC
        Assert.Equal(62, BinaryPrimitives.ReadUInt16LittleEndian(vmlinux.AsSpan(0x12)));  // EM_X86_64
    }

    [Fact]
    public void PlainElfIsAcceptedAsIs()
    {
        var elf = SymbolFixtures.Vmlinux;
        Assert.Same(elf, KernelImage.ExtractVmlinux(elf));
    }

    [Fact]
    public void GzipPayloadIsDecodedNatively()
    {
        var vmlinux = "\u007fELF-not-really-but-enough"u8.ToArray();
        var image = FakeBzImage(Gzip(vmlinux), (uint)vmlinux.Length);
        Assert.Equal(PayloadCompression.Gzip, KernelImage.ParseHeader(image).Compression);
        Assert.Equal(vmlinux, KernelImage.ExtractVmlinux(image));
    }

    [Fact]
    public void WrongSizeTrailerIsRefused()
    {
        var vmlinux = new byte[1000];
        var e = Assert.Throws<LivegraftException>(() => KernelImage.ExtractVmlinux(FakeBzImage(Gzip(vmlinux), 999), "fake"));
        Assert.Equal(SymbolErrors.DecompressionFailed, e.Diagnostics[0].Id);
    }

    [Fact]
    public void CorruptXzPayloadIsRefused()
    {
        var payload = new byte[] { 0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2, 3, 4, 5, 6, 7, 8 };
        var e = Assert.Throws<LivegraftException>(() => KernelImage.ExtractVmlinux(FakeBzImage(payload, 100), "fake"));
        Assert.Equal(SymbolErrors.DecompressionFailed, e.Diagnostics[0].Id);
    }

    [Fact]
    public void TruncatedImageIsRefused()
    {
        var image = ReferenceBzImage();
        var e = Assert.Throws<LivegraftException>(() => KernelImage.ExtractVmlinux(image[..(image.Length / 2)], "half.vmlinuz"));
        Assert.Equal(SymbolErrors.BadBootHeader, e.Diagnostics[0].Id);
        Assert.Equal("half.vmlinuz", e.Diagnostics[0].File);
        Assert.NotNull(e.Diagnostics[0].Location);
    }

    [Fact]
    public void TruncatedHeaderIsRefused()
    {
        var image = ReferenceBzImage();
        var e = Assert.Throws<LivegraftException>(() => KernelImage.ExtractVmlinux(image[..0x220]));
        Assert.Equal(SymbolErrors.BadBootHeader, e.Diagnostics[0].Id);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(16)]
    [InlineData(4096)]
    public void NotABzImageIsRefused(int length)
    {
        var e = Assert.Throws<LivegraftException>(() => KernelImage.ExtractVmlinux(new byte[length], "zeros"));
        Assert.Equal(SymbolErrors.NotAKernelImage, e.Diagnostics[0].Id);
        Assert.Equal(ExitCode.InvalidInput, e.ExitCode);
    }

    [Fact]
    public void UnknownCompressionIsRefused()
    {
        var e = Assert.Throws<LivegraftException>(() => KernelImage.ExtractVmlinux(FakeBzImage(new byte[64], 10)));
        Assert.Equal(SymbolErrors.UnknownCompression, e.Diagnostics[0].Id);
    }

    [Theory]
    [InlineData("1f8b0800", PayloadCompression.Gzip)]
    [InlineData("fd377a585a00", PayloadCompression.Xz)]
    [InlineData("425a6839", PayloadCompression.Bzip2)]
    [InlineData("5d000080", PayloadCompression.Lzma)]
    [InlineData("894c5a4f", PayloadCompression.Lzo)]
    [InlineData("02214c18", PayloadCompression.Lz4)]
    [InlineData("28b52ffd", PayloadCompression.Zstd)]
    public void CompressionIsRecognisedByMagic(string hex, PayloadCompression expected) =>
        Assert.Equal(expected, KernelImage.DetectCompression(Convert.FromHexString(hex)));

    [Fact]
    public void ZstdPayloadGoesThroughTheHostTool()
    {
        // zstd is in scripts/install-deps; this is the host-tool path every non-gzip format takes.
        var vmlinux = new byte[5000];
        new Random(1).NextBytes(vmlinux);
        var compressed = Tool("zstd", ["-q", "-c"], vmlinux);
        Assert.Equal(vmlinux, KernelImage.ExtractVmlinux(FakeBzImage(compressed, (uint)vmlinux.Length)));
    }

    /// <summary>A minimal bzImage: boot sector with setup_sects 1, "HdrS" protocol 2.15, payload after the setup sector.</summary>
    internal static byte[] FakeBzImage(byte[] compressed, uint uncompressedSize)
    {
        var image = new byte[1024 + compressed.Length + 4];
        image[0x1f1] = 1;
        "HdrS"u8.CopyTo(image.AsSpan(0x202));
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(0x206), 0x020f);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(0x248), 0);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(0x24c), (uint)compressed.Length + 4);
        compressed.CopyTo(image, 1024);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(1024 + compressed.Length), uncompressedSize);
        return image;
    }

    private static byte[] Gzip(byte[] data)
    {
        using var output = new MemoryStream();
        using (var gz = new GZipStream(output, CompressionLevel.Optimal))
            gz.Write(data);
        return output.ToArray();
    }

    private static byte[] Tool(string tool, string[] args, byte[] input)
    {
        return ProcessRunner.Run(new ProcessSpec(tool, args) { Stdin = input, BinaryStdout = true }).StdoutBytes;
    }
}

public class DecompressorToolTests
{
    [Fact]
    public void MissingToolNamesTheFormat()
    {
        var e = Assert.Throws<LivegraftException>(() =>
            KernelImage.RunDecompressor("livegraft-no-such-xz", ["-dc"], PayloadCompression.Xz, new byte[16], 16, "vmlinuz", 0x52cc));
        Assert.Equal(SymbolErrors.DecompressorMissing, e.Diagnostics[0].Id);
        Assert.Equal(ExitCode.HostFailure, e.ExitCode);
        Assert.Contains("Xz", e.Diagnostics[0].Message, StringComparison.Ordinal);
        Assert.Contains("livegraft-no-such-xz", e.Diagnostics[0].Message, StringComparison.Ordinal);
    }
}
