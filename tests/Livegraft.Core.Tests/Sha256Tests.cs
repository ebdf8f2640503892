namespace Livegraft.Core.Tests;

public class Sha256Tests
{
    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(55)]
    [InlineData(56)]
    [InlineData(63)]
    [InlineData(64)]
    [InlineData(119)]
    [InlineData(1000)]
    [InlineData(100_003)]
    public void MatchesTheFrameworkDigest(int length)
    {
        var data = new byte[length];
        new Random(length).NextBytes(data);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(data)), Sha256Hash.HashHex(data));
    }

    [Fact]
    public void KnownAnswer() =>
        Assert.Equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", Sha256Hash.HashHex("abc"u8));
}
