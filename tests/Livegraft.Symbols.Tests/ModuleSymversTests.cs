using Livegraft.Symbols;

namespace Livegraft.Symbols.Tests;

public class ModuleSymversTests
{
    private const string Sample =
        "0x4c9d28b0\tphys_base\tvmlinux\tEXPORT_SYMBOL\t\n" +
        "0x92997ed8\t_printk\tvmlinux\tEXPORT_SYMBOL\t\n" +
        "0x84b45156\tinsert_resource_expand_to_fit\tvmlinux\tEXPORT_SYMBOL_GPL\tCXL\n" +
        "0x12345678\tjbd2_journal_start\tfs/jbd2/jbd2\tEXPORT_SYMBOL\t\n" +
        "0x0badf00d\tsnd_thing\tsound/core/snd-pcm\tEXPORT_SYMBOL_GPL\t\n";

    [Fact]
    public void ParsesAllFields()
    {
        var symvers = ModuleSymvers.Parse(Sample);
        Assert.Equal(5, symvers.Entries.Count);
        var e = symvers.Find("insert_resource_expand_to_fit")!;
        Assert.Equal(new SymversEntry(0x84b45156, "insert_resource_expand_to_fit", "vmlinux", "EXPORT_SYMBOL_GPL", "CXL"), e);
        Assert.True(e.IsVmlinux);
        Assert.True(e.IsGplOnly);
    }

    [Fact]
    public void ModuleExportsKnowTheirModuleName()
    {
        var symvers = ModuleSymvers.Parse(Sample);
        Assert.Equal("jbd2", symvers.Find("jbd2_journal_start")!.ModuleName);
        Assert.Equal("snd_pcm", symvers.Find("snd_thing")!.ModuleName);
        Assert.Single(symvers.Entries, e => e.ModuleName == "jbd2");
        Assert.Null(symvers.Find("cmdline_proc_show"));
        Assert.False(symvers.IsExported("cmdline_proc_show"));
    }

    [Theory]
    [InlineData("printk_but_not\tvmlinux")]
    [InlineData("0xzz\t_printk\tvmlinux\tEXPORT_SYMBOL\t")]
    [InlineData("0x1\t\tvmlinux\tEXPORT_SYMBOL\t")]
    public void BadLineIsRefused(string line)
    {
        var e = Assert.Throws<LivegraftException>(() => ModuleSymvers.Parse(Sample + line + "\n", "Module.symvers"));
        Assert.Equal(SymbolErrors.BadSymversLine, e.Diagnostics[0].Id);
        Assert.Equal("line 6", e.Diagnostics[0].Location);
    }

    [Fact]
    public void ReferenceHeadersExportPrintk()
    {
        var path = Path.Combine(KernelTarget.Reference.EnsureHeaders(), "Module.symvers");
        var symvers = ModuleSymvers.Read(path);
        Assert.True(symvers.Entries.Count > 10_000);
        var printk = symvers.Find("_printk")!;
        Assert.Equal("vmlinux", printk.Module);
        Assert.Equal("EXPORT_SYMBOL", printk.ExportType);
        Assert.False(symvers.IsExported("printk"), "6.1 exports _printk; printk is a macro");
        Assert.False(symvers.IsExported("cmdline_proc_show"));
        Assert.Equal("CRYPTO_INTERNAL", symvers.Find("crypto_cipher_setkey")!.Namespace);
    }
}
