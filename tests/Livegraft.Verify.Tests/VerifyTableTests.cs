using Livegraft.Diff;
using Livegraft.Elf;
using Livegraft.Verify;

namespace Livegraft.Verify.Tests;

public sealed class VerifyTableTests
{
    [Fact]
    public void TableRoundTrips()
    {
        var entries = new List<FunctionExpectation>
        {
            new("vmlinux", "m_show", 1, ExpectationRole.Replaced, [0x0f, 0x1f, 0, 0, 0, 0xc3], [0, 0, 0, 0, 0, 0xff]),
            new("binfmt_misc", "bm_status_read", 0, ExpectationRole.Referenced, [1, 2, 3], [0xff, 0xff, 0xff]),
        };
        var blob = VerifyTable.Encode(entries, o => o == "vmlinux" ? 0 : 1);
        var back = VerifyTable.Decode(blob);
        Assert.Equal(2, back.Count);
        Assert.Equal(entries[0].KlpSymbol, back[0].KlpSymbol);
        Assert.Equal(entries[1].Expected, back[1].Expected);
        Assert.Equal(entries[1].Role, back[1].Role);
        Assert.Equal(5, back[0].MaskedBytes);
    }

    [Fact]
    public void MalformedTableIsLG0353()
    {
        var e = Assert.Throws<LivegraftException>(() => VerifyTable.Decode("LGVERIF1\x05\0\0\0\0\0\0\0"u8));
        Assert.Equal(VerifyErrors.NoTable, e.Diagnostics[0].Id);
    }

    [Theory]
    [InlineData(".klp.sym.vmlinux.m_show,1", "vmlinux", "m_show", 1)]
    [InlineData(".klp.sym.binfmt_misc.foo.constprop.0,0", "binfmt_misc", "foo.constprop.0", 0)]
    public void KlpSymbolsParse(string symbol, string obj, string name, int sympos)
    {
        Assert.True(RunPreVerifier.TryParseKlpSymbol(symbol, out var o, out var n, out var p));
        Assert.Equal((obj, name, sympos), (o, n, p));
    }

    [Fact]
    public void FirstDifferenceHonoursBothMasks()
    {
        var e = new FunctionExpectation("vmlinux", "f", 0, ExpectationRole.Replaced, [1, 0, 3, 4], [0xff, 0, 0xff, 0xff]);
        Assert.Equal(-1, e.FirstDifference([1, 9, 3, 4]));
        Assert.Equal(2, e.FirstDifference([1, 9, 7, 4]));
        Assert.Equal(-1, e.FirstDifference([1, 9, 7, 4], [0xff, 0xff, 0, 0xff]));
        Assert.Equal(3, e.FirstDifference([1, 9, 3]));
    }
}
