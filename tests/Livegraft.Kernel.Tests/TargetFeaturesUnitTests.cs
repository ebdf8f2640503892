using Livegraft.Diff;
using Livegraft.Kernel.Features;
using Livegraft.Kernel.Packages;
using Livegraft.Kernel.Units;

namespace Livegraft.Kernel.Tests;

/// <summary>The pieces of a target's features that need no tree: the compiler comparison, the
/// config drift check, <c>--sizes</c>, the feature record, kbuild's command-file formats, and the
/// cache's fetch-once-under-a-lock rule.</summary>
public sealed class TargetFeaturesUnitTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("livegraft-features-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string MachineGcc12 => ProcessRunner.Run(new ProcessSpec("gcc-12", ["--version"])).Stdout.Split('\n')[0].Trim();

    [Fact]
    public void TheSameCompilerPasses()
    {
        var r = TargetCompiler.Check("test-release", MachineGcc12);
        Assert.Null(r.Warning);
    }

    [Fact]
    public void AnotherDistroRevisionOfTheSameGccIsAWarning()
    {
        // "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0" → the same release with another revision.
        var line = MachineGcc12;
        var version = line[(line.LastIndexOf(' ') + 1)..];
        var r = TargetCompiler.Check("test-release", $"gcc-12 (Debian {version}-1livegraft) {version}");
        Assert.Equal(KernelErrors.CompilerRevision, r.Warning?.Id);
        Assert.Equal(Severity.Warning, r.Warning?.Severity);
    }

    [Theory]
    [InlineData("gcc-12 (Debian 12.3.0-1) 12.3.0")]
    [InlineData("gcc-12 (GCC) 11.4.0")]
    [InlineData("gcc-livegraft-missing (Debian 12.2.0-14) 12.2.0")]
    public void AnotherGccReleaseOrAMissingCompilerIsRefused(string wanted)
    {
        var e = Assert.Throws<LivegraftException>(() => TargetCompiler.Check("test-release", wanted));
        Assert.Equal(KernelErrors.CompilerMismatch, e.Diagnostics[0].Id);
        Assert.Equal(ExitCode.HostFailure, e.ExitCode);
        Assert.Contains("test-release", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ConfigDriftNamesEveryChangedOptionButTheRustToolchains()
    {
        var shipped = Path.Combine(_dir, "shipped");
        var prepared = Path.Combine(_dir, "prepared");
        File.WriteAllText(shipped, "CONFIG_A=y\nCONFIG_PAHOLE_VERSION=124\nCONFIG_DEBUG_INFO_BTF=y\nCONFIG_RUSTC_VERSION=0\nCONFIG_CC_VERSION_TEXT=\"x86_64-linux-gnu-gcc-12 (Debian) 12.2.0\"\n# CONFIG_B is not set\n");
        File.WriteAllText(prepared, "CONFIG_A=y\nCONFIG_PAHOLE_VERSION=0\nCONFIG_RUSTC_VERSION=109500\nCONFIG_CC_VERSION_TEXT=\"gcc-12 (Debian) 12.2.0\"\nCONFIG_B=y\n");
        Assert.Equal(["CONFIG_B: unset → y", "CONFIG_DEBUG_INFO_BTF: y → unset", "CONFIG_PAHOLE_VERSION: 124 → 0"], PreparedConfig.Drift(shipped, prepared));
        Assert.Empty(PreparedConfig.Drift(shipped, shipped));
    }

    [Fact]
    public void SizesParseAndReplaceTheTargetsValues()
    {
        var values = SizesOverride.Parse("alt=14, alt-len=12,pv=0");
        var sizes = SizesOverride.Apply(new SpecialSectionSizes(), values);
        Assert.Equal((14, 12, 0, 12), (sizes.AltInstr, sizes.AltInstrLenOffset, sizes.ParavirtPatchSite, sizes.BugEntry));
        Assert.False(SizesOverride.IsComplete(values));
        var all = string.Join(',', SizesOverride.Names.Select(n => n.Name + "=8"));
        Assert.True(SizesOverride.IsComplete(SizesOverride.Parse(all)));
        // A kernel without struct paravirt_patch_site: no .parainstructions layout at all.
        Assert.DoesNotContain(SpecialSections.For(sizes), s => s.Name == ".parainstructions");
        Assert.Contains(SpecialSections.For(sizes), s => s.Name == ".altinstructions" && s.EntrySize == 14 && s.Site == 12);
    }

    [Theory]
    [InlineData("alt")]
    [InlineData("alt=x")]
    [InlineData("nosuch=4")]
    [InlineData("bug=12,bug=12")]
    public void BadSizesAreAUsageError(string text)
    {
        var e = Assert.Throws<LivegraftException>(() => SizesOverride.Parse(text));
        Assert.Equal(DiffErrors.SizesSyntax, e.Diagnostics[0].Id);
        Assert.Equal(ExitCode.Usage, e.ExitCode);
    }

    [Fact]
    public void TheFeatureRecordRoundTrips()
    {
        var f = new TargetFeatures
        {
            Sizes = new SpecialSectionSizes { AltInstr = 14, AltInstrLenOffset = 12, ParavirtPatchSite = 0, ParavirtLenOffset = 0, PrintkIndexEntry = 0 },
            CmdFilePrefix = "savedcmd_",
            ClearsKlpRelocations = true,
            FunctionPaddingBytes = 16,
            Ibt = true,
            CompilerVersionText = "x86_64-linux-gnu-gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0",
            ProbeSha256 = TargetProbe.SourceSha256,
        };
        Assert.Equal(f, TargetFeatures.Parse(f.ToText()));
        Assert.Null(TargetFeatures.Parse("alt-instr=14\n"));
    }

    [Theory]
    [InlineData("cmd_")]
    [InlineData("savedcmd_")]
    public void KbuildCommandFilesOfBothFormatsAreRead(string prefix)
    {
        var obj = Path.Combine(_dir, "cmdline.o");
        File.WriteAllText(Path.Combine(_dir, ".cmdline.o.cmd"),
            $"{prefix}fs/proc/cmdline.o := gcc-12 -Wp,-MMD,fs/proc/.cmdline.o.d -DKBUILD_MODFILE='\"fs/proc/proc\"' -DKBUILD_MODNAME='\"proc\"' -c -o fs/proc/cmdline.o fs/proc/cmdline.c\n\n"
            + "source_fs/proc/cmdline.o := fs/proc/cmdline.c\n\ndeps_fs/proc/cmdline.o := \\\n  include/linux/fs.h \\\n\n");
        var (command, deps) = KbuildCommand.ReadCmdFile(obj, prefix);
        Assert.Equal("vmlinux", command.Parent);
        Assert.Equal(["fs/proc/cmdline.c", "include/linux/fs.h"], deps);
        var other = prefix == "cmd_" ? "savedcmd_" : "cmd_";
        var e = Assert.Throws<LivegraftException>(() => KbuildCommand.ReadCmdFile(obj, other));
        Assert.Equal(KernelErrors.CmdFileUnreadable, e.Diagnostics[0].Id);
    }

    [Fact]
    public void ConcurrentEnsuresBuildACacheEntryOnce()
    {
        // Several threads of one process (xunit runs test classes in parallel) asking for the same
        // missing entry: one builds it in its own work directory, the others wait and reuse it.
        var final = Path.Combine(_dir, "entry");
        var builds = 0;
        var results = new string[6];
        Parallel.For(0, results.Length, i => results[i] = PackageCache.Ensure(final, final + ".lock", "test entry",
            d => File.Exists(Path.Combine(d, "done")),
            work =>
            {
                Interlocked.Increment(ref builds);
                Thread.Sleep(200);
                File.WriteAllText(Path.Combine(work, "done"), "yes");
            }));
        Assert.Equal(1, builds);
        Assert.All(results, r => Assert.Equal(final, r));
        Assert.Equal(["done"], Directory.GetFiles(final).Select(Path.GetFileName));
        Assert.Empty(Directory.GetDirectories(_dir, "entry.tmp-*"));
    }
}
