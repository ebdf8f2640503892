using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace Livegraft.Core.Tests;

/// <summary>The pipeline of docs/architecture.md holds in the code: project references point only
/// down the stages, every stage has its test project, and the rules "one process runner, one ELF
/// reader, no kernel C in C# strings" are kept.</summary>
public partial class ArchitectureTests
{
    /// <summary>The stages, lowest first; projects on one line are siblings and may not reference each other.</summary>
    private static readonly string[][] Stages =
    [
        ["Livegraft.Core"], ["Livegraft.Elf"], ["Livegraft.Symbols"], ["Livegraft.Diff"], ["Livegraft.Verify"],
        ["Livegraft.Kernel"], ["Livegraft.Host", "Livegraft.Vm"], ["Livegraft.Cli"],
    ];

    private static int StageOf(string project) => Array.FindIndex(Stages, s => s.Contains(project));

    private static IEnumerable<string> References(string csproj) =>
        XDocument.Load(csproj).Descendants("ProjectReference")
            .Select(r => Path.GetFileNameWithoutExtension(r.Attribute("Include")!.Value));

    [Fact]
    public void EveryProjectIsAStageAndReferencesOnlyLowerStages()
    {
        var projects = Directory.GetDirectories(Path.Combine(Repository.Root, "src")).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(Stages.SelectMany(s => s).Order(StringComparer.Ordinal), projects);
        foreach (var project in projects)
        {
            var stage = StageOf(project!);
            foreach (var reference in References(Path.Combine(Repository.Root, "src", project!, project + ".csproj")))
                Assert.True(StageOf(reference) >= 0 && StageOf(reference) < stage,
                    $"{project} references {reference}: arrows go one way, down the pipeline (docs/architecture.md)");
        }
    }

    [Fact]
    public void EveryProjectHasItsTestProject()
    {
        var tests = Directory.GetDirectories(Path.Combine(Repository.Root, "tests"), "Livegraft.*.Tests").Select(Path.GetFileName).ToHashSet(StringComparer.Ordinal);
        foreach (var project in Stages.SelectMany(s => s))
            Assert.Contains(project + ".Tests", tests);
    }

    [Fact]
    public void TheArchitecturePageDrawsTheSameStages()
    {
        var page = File.ReadAllText(Path.Combine(Repository.Root, "docs", "architecture.md"));
        var line = string.Join(" → ", Stages.Select(s => string.Join(" | ", s.Select(p => p["Livegraft.".Length..]))));
        Assert.Contains(line, page);
    }

    [Fact]
    public void OnlyCoreStartsProcesses()
    {
        foreach (var file in Repository.SourceFiles().Where(f => Repository.ProjectOf(f) != "Livegraft.Core"))
        {
            var text = File.ReadAllText(file);
            Assert.False(text.Contains("ProcessStartInfo", StringComparison.Ordinal) || text.Contains("Process.Start(", StringComparison.Ordinal),
                $"{file} starts a process itself: use Livegraft.ProcessRunner");
        }
    }

    [Fact]
    public void OnlyElfParsesElf()
    {
        foreach (var file in Repository.SourceFiles().Where(f => Repository.ProjectOf(f) != "Livegraft.Elf"))
        {
            var text = File.ReadAllText(file);
            Assert.False(ElfMagic().IsMatch(text), $"{file} checks the ELF magic itself: read ELF through Livegraft.Elf");
        }
    }

    [Fact]
    public void KernelCLivesInCFiles()
    {
        foreach (var file in Repository.SourceFiles())
        {
            var text = File.ReadAllText(file);
            Assert.False(CInString().IsMatch(text), $"{file} holds kernel C in a string: put it in src/Livegraft.Kernel/Module/ (.c/.h)");
        }
    }

    [GeneratedRegex(@"0x7[fF]\s*,\s*\(byte\)\s*'E'|\\u007fELF|""\\x7fELF|\[0\]\s*!?=\s*0x7[fF]")]
    private static partial Regex ElfMagic();

    [GeneratedRegex(@"""[^""\n]*(#include\s*<|MODULE_LICENSE|MODULE_INFO\(|klp_enable_patch|static\s+(int|void)\s+\w+\s*\()")]
    private static partial Regex CInString();
}
