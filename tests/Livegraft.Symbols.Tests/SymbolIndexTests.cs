using System.Text;
using Livegraft.Symbols;

namespace Livegraft.Symbols.Tests;

/// <summary>The compact name index behind dump-backed symbol tables and Module.symvers: files left on
/// disk and read back per entry must answer exactly like the materialised lists.</summary>
public sealed class SymbolIndexTests : IDisposable
{
    private const string Dump =
        "ffffffff81000000 T _stext\n" +
        "ffffffff81000010 t helper\n" +
        "ffffffff81000020 t other\n" +
        "\n" +
        "ffffffff81000030 t helper\r\n" +
        "ffffffff81000040 d helper\n" +
        "ffffffffc0a01000 t helper\t[ext4]\n" +
        "ffffffffc0a00000 T ext4_thing\t[ext4]\n" +
        "ffffffffc0000000 t bpf_prog_x\t[bpf]\n" +
        "ffffffffc0b00000 t helper\t[ext4]\n";

    private const string Symvers =
        "0x4c9d28b0\tphys_base\tvmlinux\tEXPORT_SYMBOL\t\n" +
        "0x92997ed8\t_printk\tvmlinux\tEXPORT_SYMBOL\t\n" +
        "0x12345678\tdup_export\tfs/jbd2/jbd2\tEXPORT_SYMBOL\t\n" +
        "0x0badf00d\tdup_export\tsound/core/snd-pcm\tEXPORT_SYMBOL_GPL\tSND\n";

    private readonly string _dir = Directory.CreateTempSubdirectory("livegraft-index-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void DuplicatesCountInFileOrderPerObject()
    {
        var table = SymbolTable.FromKallsyms(KallsymsFile.Read(Write("kallsyms", Dump)));
        Assert.Equal(5, table.Count);
        Assert.Equal(new[] { 1, 3, 4 }, table.IndicesOf("helper").ToArray());
        Assert.Equal(new[] { 1, 2, 3 }, table.IndicesOf("helper").ToArray().Select(table.SymPos));
        Assert.Equal(0, table.SymPos(0));
        Assert.Null(table.Find("helper"));
        Assert.Equal(0xffffffff81000030UL, table.Find("helper", 2)!.Address);
        Assert.Equal('d', table.Find("helper", 3)!.Type);
        Assert.Null(table.Find("helper", 4));
        Assert.Equal("other", table.NameOf(2));
        Assert.True(table.Contains("_stext"));
        Assert.False(table.Contains("helpe"));

        var ext4 = SymbolTable.FromKallsyms(KallsymsFile.Read(Write("kallsyms", Dump)), "ext4");
        Assert.Equal(3, ext4.Count);
        Assert.Equal(new[] { 0, 2 }, ext4.IndicesOf("helper").ToArray());
        Assert.Equal("ext4", ext4.Find("helper", 2)!.Module);
        Assert.Equal(0xffffffffc0b00000UL, ext4.Find("helper", 2)!.Address);
        // Module lines are not in address order; lookups by address sort them.
        Assert.True(ext4.TryGetContaining(0xffffffffc0a00010, out var at));
        Assert.Equal("ext4_thing", at.Symbol.Name);
        Assert.Equal(0x1000UL, at.Size);
    }

    [Fact]
    public void FileOnDiskAnswersLikeTheParsedText()
    {
        var onDisk = KallsymsFile.Read(Write("kallsyms", Dump));
        var inMemory = KallsymsFile.Parse(Dump);
        Assert.Equal(inMemory.Symbols, onDisk.Symbols);
        Assert.Equal(inMemory.Vmlinux, onDisk.Vmlinux);
        Assert.Equal(inMemory.ForModule("ext4"), onDisk.ForModule("ext4"));
        Assert.Equal(new[] { "ext4", "bpf" }, onDisk.Modules);
        var table = SymbolTable.FromKallsyms(onDisk);
        Assert.Equal(inMemory.Vmlinux, table.Symbols.ToArray());
        Assert.Same(table.Symbols[1], table.Find("helper", 1));   // decoded once: identity holds
        Assert.Equal(1, table.SymPos(table.Symbols[1]));
        Assert.Empty(SymbolTable.FromKallsyms(onDisk, "no_such_module").Symbols);
    }

    [Fact]
    public void ReferenceDumpAgreesWithTheImageTables()
    {
        var image = new SymbolTable(SymbolTable.VmlinuxObject, SymbolFixtures.Tables.Symbols);
        var dump = SymbolTable.FromKallsyms(KallsymsFile.Read(SymbolFixtures.ReferenceDump));
        Assert.Equal(image.Count, dump.Count);
        for (var i = 0; i < image.Count; i += 37)
        {
            Assert.Equal(image.Symbols[i], dump.Symbols[i]);
            Assert.Equal(image.SymPos(i), dump.SymPos(i));
        }
        foreach (var name in new[] { "type_show", "__func__.0", "cmdline_proc_show", "jiffies" })
            Assert.Equal(image.IndicesOf(name).ToArray(), dump.IndicesOf(name).ToArray());
        var all = dump.SymPositions();
        Assert.Equal(image.SymPositions(), all);
        for (var i = 0; i < image.Count; i += 37)
            Assert.Equal(image.SymPos(i), all[i]);
    }

    [Fact]
    public void EqualHashesDoNotMergeNames()
    {
        // Every entry is filed under the hash of "a", as if all names collided: a lookup of "a" walks
        // all of them and must keep only the real "a"s, in order, and count sympos among those.
        string[] names = ["a", "b", "a", "c", "b", "a"];
        var hashes = Enumerable.Repeat(NameIndex.Hash("a"), names.Length).ToArray();
        var index = new NameIndex(new Names(names), hashes, names.Length);
        Assert.Equal(new[] { 0, 2, 5 }, index.EntriesOf("a"));
        Assert.Equal(2, index.PositionOf(2));
        Assert.Equal(3, index.PositionOf(5));
        Assert.Empty(index.EntriesOf("d"));
    }

    private sealed class Names(string[] names) : INameSource
    {
        public bool NameEquals(int entry, ReadOnlySpan<byte> utf8Name) => Encoding.UTF8.GetBytes(names[entry]).AsSpan().SequenceEqual(utf8Name);

        public string NameOf(int entry) => names[entry];
    }

    [Theory]
    [InlineData("ffffffff81000000 T _stext\n\nffffffff81000010 t two names\n", "line 3")]
    [InlineData("ffffffff81000000 T _stext\nffffffff81000010 t x\t[ext4\n", "line 2")]
    [InlineData("ffffffff81000000T _stext\n", "line 1")]
    public void MalformedDumpLineNamesFileAndLine(string text, string location)
    {
        var path = Write("bad-kallsyms", text);
        var e = Assert.Throws<LivegraftException>(() => KallsymsFile.Read(path));
        Assert.Equal(SymbolErrors.BadKallsymsLine, e.Diagnostics[0].Id);
        Assert.Equal(path, e.Diagnostics[0].File);
        Assert.Equal(location, e.Diagnostics[0].Location);
    }

    [Fact]
    public void LongLinesCrossTheReadBuffer()
    {
        // Names long enough that lines straddle the 64 KB chunks of the streamed scan.
        var text = new StringBuilder();
        for (var i = 0; i < 400; i++)
            text.Append(Hex(i)).Append(" t ").Append(new string((char)('a' + i % 26), 300 + i)).Append('\n');
        var table = SymbolTable.FromKallsyms(KallsymsFile.Read(Write("long", text.ToString())));
        Assert.Equal(400, table.Count);
        var name = new string((char)('a' + 399 % 26), 699);
        Assert.Equal((ulong)399, table.Find(name)!.Address);
        Assert.Equal(name, table.NameOf(399));

        static string Hex(int i) => i.ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public void RewrittenFileIsAnErrorNotWrongSymbols()
    {
        var path = Write("kallsyms", Dump);
        var table = SymbolTable.FromKallsyms(KallsymsFile.Read(path));
        File.WriteAllText(path, Dump.Replace("helper", "HELPER", StringComparison.Ordinal) + "ffffffff81000050 t more\n");
        var e = Assert.Throws<LivegraftException>(() => table.Find("helper", 1));
        Assert.Equal(SymbolErrors.BadKallsymsLine, e.Diagnostics[0].Id);
    }

    [Fact]
    public void ExportsOnDiskAnswerLikeTheParsedText()
    {
        var onDisk = ModuleSymvers.Read(Write("Module.symvers", Symvers));
        var inMemory = ModuleSymvers.Parse(Symvers);
        Assert.Equal(inMemory.Entries, onDisk.Entries);
        Assert.True(onDisk.IsExported("_printk"));
        Assert.False(onDisk.IsExported("printk"));
        Assert.False(onDisk.IsExported("_printk\tvmlinux"));
        Assert.Equal(new SymversEntry(0x92997ed8, "_printk", "vmlinux", "EXPORT_SYMBOL", ""), onDisk.Find("_printk"));
        var both = onDisk.FindAll("dup_export");
        Assert.Equal(new[] { "fs/jbd2/jbd2", "sound/core/snd-pcm" }, both.Select(e => e.Module));
        Assert.Equal("SND", both[1].Namespace);
        Assert.Same(onDisk.Entries[0], onDisk.Entries[0]);
    }

    [Fact]
    public void MalformedSymversLineNamesFileAndLine()
    {
        var path = Write("Module.symvers", Symvers + "\n0xzz\tbad\tvmlinux\tEXPORT_SYMBOL\t\n");
        var e = Assert.Throws<LivegraftException>(() => ModuleSymvers.Read(path));
        Assert.Equal(SymbolErrors.BadSymversLine, e.Diagnostics[0].Id);
        Assert.Equal(path, e.Diagnostics[0].File);
        Assert.Equal("line 6", e.Diagnostics[0].Location);
    }
}
