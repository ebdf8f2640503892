using System.Diagnostics;

namespace Livegraft.Elf.Tests;

/// <summary>Reading then writing an unmodified file reproduces it byte for byte, also when every
/// relocation section has been decoded (which makes the writer re-encode it).</summary>
public class RoundTripTests
{
    private readonly ITestOutputHelper _output;

    public RoundTripTests(ITestOutputHelper output) => _output = output;

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
        Assert.Null(RoundTrip(File.ReadAllBytes(path), path));
    }

    /// <summary>Returns null on success, else what differed; checks both the lazy and the decoded path.</summary>
    internal static string? RoundTrip(byte[] bytes, string path)
    {
        var elf = ElfFile.Read(bytes, path);
        if (!bytes.AsSpan().SequenceEqual(elf.ToArray()))
            return $"{path}: differs after an unmodified round trip";
        elf = ElfFile.Read(bytes, path);
        Fixtures.DecodeAllRelocations(elf);
        var written = elf.ToArray();
        if (!bytes.AsSpan().SequenceEqual(written))
        {
            var at = bytes.AsSpan().CommonPrefixLength(written);
            return $"{path}: differs at 0x{at:x} after decoding every relocation (sizes {bytes.Length} and {written.Length})";
        }
        return null;
    }

    private void RoundTripAll(IReadOnlyList<string> files)
    {
        var failures = new List<string>();
        var relocations = 0L;
        var sw = Stopwatch.StartNew();
        foreach (var path in files)
        {
            var bytes = File.ReadAllBytes(path);
            relocations += Fixtures.DecodeAllRelocations(ElfFile.Read(bytes, path));
            if (RoundTrip(bytes, path) is { } failure)
                failures.Add(failure);
        }
        _output.WriteLine($"{files.Count} files, {relocations} relocations, {sw.ElapsedMilliseconds} ms");
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void KernelTreeObjectsRoundTrip()
    {
        var objects = Fixtures.KernelObjects();
        foreach (var dir in Fixtures.KernelDirectories)
            Assert.Contains(objects, o => o.Contains("/" + dir + "/", StringComparison.Ordinal));
        Assert.True(objects.Count >= 20, $"only {objects.Count} objects");
        RoundTripAll(objects);
    }

    [Fact]
    public void KernelModulesRoundTrip()
    {
        var all = Directory.EnumerateFiles(Fixtures.ModulesDirectory(), "*.ko", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        Assert.True(all.Count >= 60, $"only {all.Count} modules");
        // A deterministic spread over the whole tree (drivers, fs, net, sound...), not the first 60 of one folder.
        var step = all.Count / 60;
        var picked = Enumerable.Range(0, 60).Select(i => all[i * step]).ToList();
        RoundTripAll(picked);
    }

    [Fact]
    public void VmlinuxRoundTrips()
    {
        var path = Fixtures.Vmlinux();
        var bytes = File.ReadAllBytes(path);
        var sw = Stopwatch.StartNew();
        var elf = ElfFile.Read(bytes, path);
        _output.WriteLine($"vmlinux: {bytes.Length} bytes, {elf.Sections.Count} sections, {elf.Segments.Count} segments, read in {sw.ElapsedMilliseconds} ms");
        Assert.Equal(ElfNative.ET_EXEC, elf.Header.Type);
        Assert.NotEmpty(elf.Segments);
        Assert.Null(RoundTrip(bytes, path));
    }
}
