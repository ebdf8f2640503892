namespace Livegraft.Elf.Tests;

/// <summary>The readelf-style printer against a golden file (set LIVEGRAFT_UPDATE_GOLDEN=1 to rewrite it).</summary>
public class ElfPrinterTests
{
    private static string PrinterObject()
    {
        var dir = Path.Combine(Fixtures.ProjectDirectory(), "Fixtures");
        var source = File.ReadAllText(Path.Combine(dir, "printer.c"));
        return Fixtures.CompileC(source, "printer.c", "-O2", "-ffunction-sections", "-fno-asynchronous-unwind-tables", "-fno-pic", "-mcmodel=kernel");
    }

    [Fact]
    public void MatchesGoldenFile()
    {
        var path = PrinterObject();
        var text = ElfPrinter.Print(ElfFile.Read(path));
        var golden = Path.Combine(Fixtures.ProjectDirectory(), "Golden", "printer.txt");
        if (Environment.GetEnvironmentVariable("LIVEGRAFT_UPDATE_GOLDEN") == "1")
            File.WriteAllText(golden, text);
        Assert.True(File.Exists(golden), $"{golden} is missing: run with LIVEGRAFT_UPDATE_GOLDEN=1");
        Assert.Equal(File.ReadAllText(golden).ReplaceLineEndings("\n"), text);
    }

    [Fact]
    public void NamesSymbolsAndAddendsLikeReadelf()
    {
        var path = PrinterObject();
        var text = ElfPrinter.Print(ElfFile.Read(path));
        // The same facts readelf -r prints: the call to printk and the string it passes.
        var readelf = Fixtures.Run("readelf", ["-r", "-W", path]).Stdout;
        Assert.Contains("R_X86_64_PLT32", readelf, StringComparison.Ordinal);
        Assert.Matches(@"R_X86_64_PLT32\s+0{16} printk - 4\n", text);
        Assert.Matches(@"R_X86_64_PC32\s+0{16} external_counter - 4\n", text);
        Assert.Matches(@"R_X86_64_64\s+0{14}10 table \+ 10\n", text);
    }

    [Fact]
    public void PrintsAnEditedModelWithCurrentIndices()
    {
        var elf = ElfFile.Read(PrinterObject());
        ModifiedWriteTests.AddSectionSymbolAndRelocation(elf);
        var text = ElfPrinter.Print(elf);
        var index = elf.Sections.IndexOf(elf.FindSection(".livegraft.test")!);
        Assert.Contains($"[{index,2}] .livegraft.test", text, StringComparison.Ordinal);
        Assert.Contains("livegraft_test_object + 10", text, StringComparison.Ordinal);
    }
}
