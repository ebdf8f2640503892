using Livegraft.Symbols;

namespace Livegraft.Symbols.Tests;

public class KallsymsFileTests
{
    [Theory]
    [InlineData("ffffffff81000000 T _stext", 0xffffffff81000000UL, 'T', "_stext", null)]
    [InlineData("ffffffff814105a0 t cmdline_proc_show", 0xffffffff814105a0UL, 't', "cmdline_proc_show", null)]
    [InlineData("0000000000000000 A fixed_percpu_data", 0UL, 'A', "fixed_percpu_data", null)]
    [InlineData("ffffffffc0a01000 t ext4_free_data_cmp\t[ext4]", 0xffffffffc0a01000UL, 't', "ext4_free_data_cmp", "ext4")]
    [InlineData("ffffffffc0000000 t bpf_prog_6deef7357e7b4530_sd_fw_egress\t[bpf]", 0xffffffffc0000000UL, 't', "bpf_prog_6deef7357e7b4530_sd_fw_egress", "bpf")]
    [InlineData("ffffffffc0002000 t ftrace_trampoline\t[__builtin__ftrace]", 0xffffffffc0002000UL, 't', "ftrace_trampoline", "__builtin__ftrace")]
    [InlineData("ffffffff81000000 T _stext\r", 0xffffffff81000000UL, 'T', "_stext", null)]
    public void LineParses(string line, ulong address, char type, string name, string? module)
    {
        var s = KallsymsFile.ParseLine(line);
        Assert.Equal(new KernelSymbol(name, type, address, module), s);
    }

    [Theory]
    [InlineData("ffffffff81000000 T _stext")]
    [InlineData("ffffffffc0a01000 t ext4_free_data_cmp\t[ext4]")]
    public void FormatsBackToTheSameLine(string line) => Assert.Equal(line, KallsymsFile.ParseLine(line).ToString());

    [Theory]
    [InlineData("zzzz T _stext")]
    [InlineData("ffffffff81000000")]
    [InlineData("ffffffff81000000 T")]
    [InlineData("ffffffff81000000 TT _stext")]
    [InlineData("ffffffff81000000 T two names")]
    [InlineData("ffffffff81000000 t foo\text4")]
    public void BadLineIsRefused(string line)
    {
        var e = Assert.Throws<LivegraftException>(() => KallsymsFile.Parse("ffffffff81000000 T _stext\n" + line + "\n", "dump"));
        Assert.Equal(SymbolErrors.BadKallsymsLine, e.Diagnostics[0].Id);
        Assert.Equal("line 2", e.Diagnostics[0].Location);
    }

    [Fact]
    public void SplitsVmlinuxFromModules()
    {
        var dump = KallsymsFile.Parse("""
            ffffffff81000000 T _stext
            ffffffff81000010 t helper
            ffffffffc0a01000 t helper	[ext4]
            ffffffffc0a02000 T ext4_thing	[ext4]
            ffffffffc0000000 t bpf_prog_x	[bpf]
            """);
        Assert.Equal(2, dump.Vmlinux.Count);
        Assert.Equal(new[] { "ext4", "bpf" }, dump.Modules);
        Assert.Equal(2, dump.ForModule("ext4").Count);
        var ext4 = SymbolTable.FromKallsyms(dump, "ext4");
        Assert.Equal(0, ext4.SymPos(0));
        Assert.False(dump.AddressesHidden);
    }

    [Fact]
    public void RestrictedDumpIsRecognised()
    {
        var dump = KallsymsFile.Parse("0000000000000000 T _stext\n0000000000000000 t helper\n");
        Assert.True(dump.AddressesHidden);
    }

    [Fact]
    public void ReferenceDumpReadsFromGzip()
    {
        var dump = KallsymsFile.Read(SymbolFixtures.ReferenceDump);
        Assert.Equal(94266, dump.Symbols.Count);
        Assert.Empty(dump.Modules);
    }
}
