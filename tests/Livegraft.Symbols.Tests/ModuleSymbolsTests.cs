using Livegraft.Symbols;

namespace Livegraft.Symbols.Tests;

public class ModuleSymbolsTests
{
    private static string Ko(string relative) => Path.Combine(KernelTarget.Reference.ModulesDirectory, "kernel", relative);

    /// <summary>Each module's core symbols, read from its .ko, match what /proc/kallsyms listed for it after
    /// insmod in the reference VM (names, types with export case, order); only the load addresses differ.</summary>
    [Theory]
    [InlineData("lib/crc16.ko")]
    [InlineData("fs/mbcache.ko")]
    [InlineData("fs/jbd2/jbd2.ko")]
    [InlineData("fs/ext4/ext4.ko")]
    [InlineData("fs/fat/fat.ko")]
    [InlineData("fs/fat/vfat.ko")]
    [InlineData("drivers/block/loop.ko")]
    public void CoreSymbolsMatchProcKallsyms(string ko)
    {
        KernelTarget.Reference.EnsureImage();
        var module = ModuleSymbols.Read(Ko(ko));
        var dump = KallsymsFile.Read(SymbolFixtures.ModulesDump).ForModule(module.Name);
        Assert.NotEmpty(dump);
        Assert.Equal(dump.Select(s => $"{s.Type} {s.Name}"), module.Symbols.Select(s => $"{s.Type} {s.Name}"));
    }

    [Fact]
    public void ModuleNameComesFromModinfo()
    {
        KernelTarget.Reference.EnsureImage();
        Assert.Equal("jbd2", ModuleSymbols.Read(Ko("fs/jbd2/jbd2.ko")).Name);
    }

    [Fact]
    public void GplExportsStayLowerCase()
    {
        KernelTarget.Reference.EnsureImage();
        // EXPORT_SYMBOL_GPL(fat_dir_empty): exported, but is_exported() only searches __ksymtab.
        var s = Assert.Single(SymbolTable.FromModule(Ko("fs/fat/fat.ko")).Lookup("fat_dir_empty"));
        Assert.Equal('t', s.Type);
    }

    [Fact]
    public void ExportedFunctionsAreUpperCaseAndCarryElfDetail()
    {
        KernelTarget.Reference.EnsureImage();
        var table = SymbolTable.FromModule(Ko("fs/jbd2/jbd2.ko"));
        var start = Assert.Single(table.Lookup("jbd2_journal_start"));
        Assert.Equal('T', start.Type);
        Assert.Equal(SymbolKind.Function, start.Kind);
        Assert.Equal(".text", start.Section);
        Assert.True(start.Size > 0);
        Assert.True(table.TryGetContaining(start.Address + 1, out var at, ".text"));
        Assert.Same(start, at.Symbol);
    }

    [Fact]
    public void DuplicateNamesInAModuleGetSympos()
    {
        KernelTarget.Reference.EnsureImage();
        var table = SymbolTable.FromModule(Ko("fs/ext4/ext4.ko"));
        var all = table.Lookup("__func__.0");
        Assert.Equal(28, all.Count);
        Assert.Equal(1, table.SymPos(all[0]));
        Assert.Equal(28, table.SymPos(all[27]));
    }

    [Fact]
    public void FullViewAddsInitSymbols()
    {
        KernelTarget.Reference.EnsureImage();
        var core = ModuleSymbols.Read(Ko("fs/ext4/ext4.ko"));
        var full = ModuleSymbols.Read(Ko("fs/ext4/ext4.ko"), ModuleSymbolView.Full);
        Assert.True(full.Symbols.Count > core.Symbols.Count);
        Assert.Contains(full.Symbols, s => s.Name == "ext4_init_fs");
        Assert.DoesNotContain(core.Symbols, s => s.Name == "ext4_init_fs");
    }

    [Fact]
    public void TruncatedModuleIsRefused()
    {
        KernelTarget.Reference.EnsureImage();
        var bytes = File.ReadAllBytes(Ko("lib/crc16.ko"));
        var e = Assert.ThrowsAny<LivegraftException>(() => ModuleSymbols.Parse(bytes[..(bytes.Length / 2)], "crc16.ko"));
        Assert.Equal("LG0003", e.Diagnostics[0].Id); // Livegraft.Elf: a table lies outside the file
        Assert.Equal("crc16.ko", e.Diagnostics[0].File);
    }

    [Fact]
    public void NotAnElfIsRefused()
    {
        var e = Assert.ThrowsAny<LivegraftException>(() => ModuleSymbols.Parse(new byte[100], "zeros.ko"));
        Assert.Equal("LG0002", e.Diagnostics[0].Id); // Livegraft.Elf: not an ELF file
    }
}
