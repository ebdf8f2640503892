using System.Diagnostics;
using Livegraft.Symbols;

namespace Livegraft.Symbols.Tests;

public class KallsymsTablesTests
{
    /// <summary>The acceptance rule (docs/symbols.md): the image's tables equal, entry by entry and in order,
    /// the lines of /proc/kallsyms without a [module] suffix, booted with nokaslr.</summary>
    [Fact]
    public void ImageMatchesProcKallsymsOfTheBootedKernel()
    {
        var image = SymbolFixtures.Tables.Symbols;
        var dump = KallsymsFile.Read(SymbolFixtures.ReferenceDump).Vmlinux;
        Assert.Equal(dump.Count, image.Count);
        for (var i = 0; i < image.Count; i++)
        {
            if (dump[i] != image[i])
                Assert.Fail($"entry {i}: image '{image[i]}', /proc/kallsyms '{dump[i]}'");
        }
    }

    [Fact]
    public void SymbolCountIsPlausibleForKallsymsAll()
    {
        var tables = SymbolFixtures.Tables;
        Assert.Equal(tables.Layout.Count, tables.Symbols.Count);
        // 6.1.0-56-amd64 has 94266; data symbols (d, D, b, B, r, R) only appear with KALLSYMS_ALL.
        Assert.InRange(tables.Symbols.Count, 80_000, 400_000);
        Assert.True(tables.Symbols.Count(s => s.Type is 'd' or 'D' or 'b' or 'B') > 20_000);
    }

    [Fact]
    public void LayoutIsTheOneScriptsKallsymsWritesFor61()
    {
        var l = SymbolFixtures.Tables.Layout;
        Assert.Equal(KallsymsAddressMode.BaseRelativeAbsolutePercpu, l.AddressMode);
        Assert.Equal(0xffffffff81000000UL, l.RelativeBase);
        Assert.True(l.SeqsOfNames > 0, "6.1.192 carries the kallsyms_seqs_of_names backport");
        Assert.True(l.Offsets < l.RelativeBaseOffset && l.RelativeBaseOffset < l.NumSyms && l.NumSyms < l.Names
            && l.Names < l.Markers && l.Markers < l.SeqsOfNames && l.SeqsOfNames < l.TokenTable && l.TokenTable < l.TokenIndex);
    }

    [Theory]
    [InlineData("ffffffff81000000 T _stext")]
    [InlineData("ffffffff81000000 T _text")]
    [InlineData("ffffffff81000000 T startup_64")]
    [InlineData("ffffffff814105a0 t cmdline_proc_show")]
    [InlineData("ffffffff82a1aa40 D init_task")]
    [InlineData("ffffffff82a079c0 D jiffies")]
    [InlineData("ffffffff82a079c0 D jiffies_64")]
    [InlineData("ffffffff81a07e3d T _printk")]
    [InlineData("ffffffff81a01cb0 T panic")]
    [InlineData("ffffffff83079e46 T start_kernel")]
    [InlineData("ffffffff82161900 D linux_banner")]
    [InlineData("ffffffff84430000 B _end")]
    [InlineData("0000000000000000 A __per_cpu_start")]
    [InlineData("000000000001fb80 A current_task")]
    public void KnownSymbolHasAddressAndType(string line)
    {
        var expected = KallsymsFile.ParseLine(line);
        var table = new SymbolTable(SymbolTable.VmlinuxObject, SymbolFixtures.Tables.Symbols);
        Assert.Contains(expected, table.Lookup(expected.Name));
    }

    [Fact]
    public void DecodingIsFast()
    {
        var vmlinux = SymbolFixtures.Vmlinux;
        KallsymsTables.Read(vmlinux);
        var watch = Stopwatch.StartNew();
        var tables = KallsymsTables.Read(vmlinux);
        watch.Stop();
        Assert.True(tables.Symbols.Count > 0);
        // About 0.1 s on an idle core (bench/symbols/run); the bound leaves room for a loaded shared CI box.
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"locate + decode took {watch.Elapsed}");
    }

    [Fact]
    public void DataWithoutTablesIsRefused()
    {
        var data = new byte[64 * 1024];
        new Random(7).NextBytes(data);
        var e = Assert.Throws<LivegraftException>(() => KallsymsTables.Read(data, "random.bin"));
        Assert.Equal(SymbolErrors.KallsymsNotFound, e.Diagnostics[0].Id);
        Assert.Equal(ExitCode.InvalidInput, e.ExitCode);
    }

    [Fact]
    public void DigitRunWithoutTheRestIsRefused()
    {
        var data = new byte[4096];
        "0\01\02\03\04\05\06\07\08\09\0"u8.CopyTo(data.AsSpan(1000));
        var e = Assert.Throws<LivegraftException>(() => KallsymsTables.Read(data));
        Assert.Equal(SymbolErrors.KallsymsNotFound, e.Diagnostics[0].Id);
    }

    [Fact]
    public void SyntheticTablesDecode()
    {
        var symbols = new[]
        {
            new KernelSymbol("fixed_percpu_data", 'A', 0),
            new KernelSymbol("_stext", 'T', 0xffffffff81000000),
            new KernelSymbol("a_static", 't', 0xffffffff81000010),
            new KernelSymbol("a_static", 't', 0xffffffff81000020),
            new KernelSymbol("jiffies", 'D', 0xffffffff82000000),
        };
        var image = SyntheticKallsyms.Build(symbols, withSeqs: false);
        var tables = KallsymsTables.Read(image);
        Assert.Equal(symbols, tables.Symbols);
        Assert.Equal(-1, tables.Layout.SeqsOfNames);
        Assert.Equal(symbols, KallsymsTables.Read(SyntheticKallsyms.Build(symbols, withSeqs: true)).Symbols);
    }

    [Fact]
    public void Linux64OutputOrderDecodes()
    {
        var symbols = new[]
        {
            new KernelSymbol("fixed_percpu_data", 'A', 0),
            new KernelSymbol("irq_stack_backing_store", 'A', 0x2000),
            new KernelSymbol("_stext", 'T', 0xffffffff81000000),
            new KernelSymbol("a_static", 't', 0xffffffff81000010),
            new KernelSymbol("jiffies", 'D', 0xffffffff82000000),
        };
        var image = SyntheticKallsyms.Build(symbols, withSeqs: true, modern: true);
        var tables = KallsymsTables.Read(image);
        Assert.Equal(symbols, tables.Symbols);
        var l = tables.Layout;
        Assert.Equal(KallsymsAddressMode.BaseRelativeAbsolutePercpu, l.AddressMode);
        Assert.True(l.NumSyms < l.Names && l.Names < l.Markers && l.Markers < l.TokenTable && l.TokenTable < l.TokenIndex
            && l.TokenIndex < l.Offsets && l.Offsets < l.RelativeBaseOffset && l.RelativeBaseOffset < l.SeqsOfNames);
    }

    [Fact]
    public void LongNamesUseTheTwoByteLength()
    {
        var longName = new string('x', 300);
        var symbols = new[] { new KernelSymbol("_stext", 'T', 0xffffffff81000000), new KernelSymbol(longName, 't', 0xffffffff81000040) };
        Assert.Equal(symbols, KallsymsTables.Read(SyntheticKallsyms.Build(symbols, withSeqs: true)).Symbols);
    }

    [Fact]
    public void TruncatedNamesAreRefusedWithAnOffset()
    {
        var symbols = Enumerable.Range(0, 600).Select(i => new KernelSymbol($"sym{i}", 't', 0xffffffff81000000 + (ulong)i * 16)).ToArray();
        var image = SyntheticKallsyms.Build(symbols, withSeqs: true);
        var layout = KallsymsTables.Locate(image);
        // Corrupt one length byte so the names no longer tile: decoding a bad layout must throw, not index out of range.
        var bad = layout with { Count = layout.Count + 400 };
        var e = Assert.Throws<LivegraftException>(() => KallsymsTables.Decode(image, bad, "synthetic"));
        Assert.Equal(SymbolErrors.KallsymsMalformed, e.Diagnostics[0].Id);
        Assert.NotNull(e.Diagnostics[0].Location);
    }
}
