using Livegraft.Symbols;

namespace Livegraft.Symbols.Tests;

public class KallsymsComparisonTests
{
    private static readonly KernelSymbol[] s_image =
    [
        new("fixed_percpu_data", 'A', 0),
        new("_stext", 'T', 0xffffffff81000000),
        new("helper", 't', 0xffffffff81000040),
        new("jiffies", 'D', 0xffffffff82000000),
    ];

    // The running kernel here is the checked-in dump of a nokaslr QEMU boot (see docs/symbols.md, section 5).
    // TODO(vm): once Livegraft.Vm can boot the reference target and run a command, add a live variant in
    // Livegraft.Vm.Tests that reads /proc/kallsyms (kptr_restrict 0) and calls
    // KallsymsComparison.Compare(image, running).ThrowIfDifferent(); this project does not reference Livegraft.Vm.
    [Fact]
    public void ReferenceImageEqualsTheBootedKernelIgnoringModules()
    {
        var running = KallsymsFile.Read(SymbolFixtures.ReferenceDump).Symbols
            .Concat(KallsymsFile.Read(SymbolFixtures.ModulesDump).Symbols).ToArray();
        var result = KallsymsComparison.Compare(SymbolFixtures.Tables.Symbols, running);
        Assert.True(result.IsEqual, string.Join("\n", result.Mismatches));
        Assert.Equal(94266, result.RunningCount);
        result.ThrowIfDifferent();
    }

    [Fact]
    public void KaslrSlideIsAcceptedOnlyWhenAllowed()
    {
        const ulong slide = 0x1e00000;
        var running = s_image.Select(s => s.Type == 'A' ? s : s with { Address = s.Address + slide }).ToArray();
        Assert.False(KallsymsComparison.Compare(s_image, running).IsEqual);
        var result = KallsymsComparison.Compare(s_image, running, allowSlide: true);
        Assert.True(result.IsEqual);
        Assert.Equal(slide, result.Slide);
    }

    [Fact]
    public void DifferenceIsAVerificationFailure()
    {
        var running = s_image.Select(s => s.Name == "helper" ? s with { Type = 'T' } : s).Append(new KernelSymbol("extra", 'B', 0xffffffff83000000)).ToArray();
        var result = KallsymsComparison.Compare(s_image, running);
        Assert.Equal(2, result.MismatchCount);
        Assert.Equal(2, result.Mismatches[0].Index);
        Assert.Null(result.Mismatches[1].Image);
        var e = Assert.Throws<LivegraftException>(() => result.ThrowIfDifferent("running"));
        Assert.Equal(ExitCode.VerificationFailed, e.ExitCode);
        Assert.Equal(SymbolErrors.KallsymsDiffer, e.Diagnostics[0].Id);
    }
}
