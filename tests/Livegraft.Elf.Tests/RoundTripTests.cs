using Livegraft.Elf;

namespace Livegraft.Elf.Tests;

/// <summary>Reading then writing an unmodified file reproduces it byte for byte.</summary>
public class RoundTripTests
{
    public static TheoryData<string> SystemObjects()
    {
        var data = new TheoryData<string>();
        foreach (var f in new[] { "/usr/lib/x86_64-linux-gnu/crt1.o", "/usr/lib/x86_64-linux-gnu/crti.o", "/bin/ls", "/usr/lib/x86_64-linux-gnu/libc.so.6" })
            if (File.Exists(f))
                data.Add(f);
        return data;
    }

    [Theory]
    [MemberData(nameof(SystemObjects))]
    public void SystemBinariesRoundTrip(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var elf = ElfFile.Read(bytes, path);
        Assert.Equal(bytes, elf.ToArray());
    }

    [Fact]
    public void KernelModulesRoundTrip()
    {
        var modules = Fixtures.ModulesDirectory();
        var files = Directory.EnumerateFiles(modules, "*.ko", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Take(40).ToList();
        Assert.NotEmpty(files);
        foreach (var path in files)
        {
            var bytes = File.ReadAllBytes(path);
            var elf = ElfFile.Read(bytes, path);
            foreach (var r in elf.Sections.OfType<ElfRelocationSection>())
                _ = r.Relocations; // force decoding and re-encoding of every relocation
            Assert.True(bytes.AsSpan().SequenceEqual(elf.ToArray()), path);
        }
    }
}
