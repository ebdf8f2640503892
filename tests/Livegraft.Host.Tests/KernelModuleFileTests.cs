using System.Buffers.Binary;
using System.Text;

namespace Livegraft.Host.Tests;

public class KernelModuleFileTests
{
    [Fact]
    public void ReadsModinfoOfARealLivepatchModule()
    {
        var ko = KernelModuleFile.Read(BuiltModules.Get()["lg-sample.ko"]);
        Assert.True(ko.HasThisModule);
        Assert.True(ko.IsLivepatch);
        Assert.Equal("lg_sample", ko.Name);
        Assert.Equal(BuiltModules.Release, ko.KernelRelease);
        Assert.StartsWith(BuiltModules.Release + " SMP", ko.Vermagic);
        Assert.Equal(BuiltModules.Release, ko.Get("livegraft.kernel_release"));
        Assert.Equal("0.1.0-test", ko.LivegraftEntries.Single(kv => kv.Key == "tool_version").Value);
        Assert.False(ko.Replace);
        Assert.Equal([("vmlinux", "cmdline_proc_show", 0)], ko.Functions!);
        Assert.Empty(ko.Supersedes);
        Assert.Null(ko.RecordedKernelBuildId);
        Assert.Equal(64, ko.Sha256.Length);
    }

    [Fact]
    public void ReadsRecordedReplaceAndBuildId()
    {
        var m = BuiltModules.Get();
        Assert.True(KernelModuleFile.Read(m["lg-replace.ko"]).Replace);
        Assert.Equal("00112233445566778899aabbccddeeff00112233", KernelModuleFile.Read(m["lg-buildid.ko"]).RecordedKernelBuildId);
        var plain = KernelModuleFile.Read(m["lg_fixture.ko"]);
        Assert.True(plain.HasThisModule);
        Assert.False(plain.IsLivepatch);
    }

    [Theory]
    [InlineData("lg-sample.ko", "lg_sample")]
    [InlineData("/x/y/livepatch-foo-bar.ko", "livepatch_foo_bar")]
    [InlineData("plain", "plain")]
    public void NameFromFileNameFollowsKbuild(string file, string expected) =>
        Assert.Equal(expected, KernelModuleFile.NameFromFileName(file));

    [Fact]
    public void ReadsKlpSectionsAndSymbols()
    {
        var elf = SyntheticElf.Build(
            modinfo: "livepatch=Y\0name=lg_synth\0vermagic=6.1.0-56-amd64 SMP \0",
            extraSections: [(".klp.rela.vmlinux..text.livepatch_foo", 4, 24 * 3), (".klp.rela.ext4..data", 4, 24), (".gnu.linkonce.this_module", 1, 8)],
            symbols: [".klp.sym.vmlinux.saved_command_line,0", ".klp.sym.ext4.ext4_foo,2", "plain_symbol"]);
        var ko = KernelModuleFile.Parse(elf, "synth.ko");
        Assert.Equal("lg_synth", ko.Name);
        Assert.Equal(2, ko.KlpRelocations.Count);
        Assert.Equal(new KlpRelocationSection(".klp.rela.vmlinux..text.livepatch_foo", "vmlinux", ".text.livepatch_foo", 3), ko.KlpRelocations[0]);
        Assert.Equal("ext4", ko.KlpRelocations[1].Object);
        Assert.Equal([new KlpSymbol("vmlinux", "saved_command_line", 0), new KlpSymbol("ext4", "ext4_foo", 2)], ko.KlpSymbols);
        Assert.Equal(["vmlinux", "ext4"], ko.KlpObjects);
    }

    [Fact]
    public void MissingFileIsLG0500()
    {
        var e = Assert.Throws<LivegraftException>(() => KernelModuleFile.Read("/nonexistent/patch.ko"));
        Assert.Equal("LG0500", e.Diagnostics[0].Id);
        Assert.Equal(ExitCode.InvalidInput, e.ExitCode);
        Assert.Equal("/nonexistent/patch.ko", e.Diagnostics[0].File);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(10)]
    [InlineData(64)]
    [InlineData(1000)]
    public void TruncatedModuleIsLG0501(int length)
    {
        var bytes = File.ReadAllBytes(BuiltModules.Get()["lg-sample.ko"]);
        var e = Assert.Throws<LivegraftException>(() => KernelModuleFile.Parse(bytes[..length], "cut.ko"));
        Assert.Equal("LG0501", e.Diagnostics[0].Id);
    }

    [Fact]
    public void TruncatedSyntheticModuleIsLG0501()
    {
        var elf = SyntheticElf.Build("livepatch=Y\0", [], []);
        for (var cut = 0; cut < elf.Length; cut += 7)
        {
            var e = Assert.Throws<LivegraftException>(() => KernelModuleFile.Parse(elf[..cut], "cut.ko"));
            Assert.Equal("LG0501", e.Diagnostics[0].Id);
        }
    }

    [Fact]
    public void NonElfIsLG0501() =>
        Assert.Equal("LG0501", Assert.Throws<LivegraftException>(() => KernelModuleFile.Parse("#!/bin/sh\necho hi\n"u8.ToArray(), "x.ko")).Diagnostics[0].Id);
}

/// <summary>Writes a minimal ELF64 relocatable file: null section, .modinfo, extra sections, .symtab, .strtab, .shstrtab.</summary>
internal static class SyntheticElf
{
    public static byte[] Build(string modinfo, (string Name, uint Type, int Size)[] extraSections, string[] symbols)
    {
        var shstr = new MemoryStream();
        shstr.WriteByte(0);
        int AddName(MemoryStream table, string s)
        {
            var at = (int)table.Length;
            table.Write(Encoding.UTF8.GetBytes(s + "\0"));
            return at;
        }
        var strtab = new MemoryStream();
        strtab.WriteByte(0);
        var symtab = new byte[24 * (symbols.Length + 1)];
        for (var i = 0; i < symbols.Length; i++)
            BinaryPrimitives.WriteUInt32LittleEndian(symtab.AsSpan(24 * (i + 1)), (uint)AddName(strtab, symbols[i]));

        var sections = new List<(int Name, uint Type, byte[] Data, uint Link, ulong EntSize)>
        {
            (0, 0, [], 0, 0),
            (AddName(shstr, ".modinfo"), 1, Encoding.UTF8.GetBytes(modinfo), 0, 0),
        };
        foreach (var (name, type, size) in extraSections)
            sections.Add((AddName(shstr, name), type, new byte[size], 0, type == 4 ? 24u : 0));
        var symIndex = sections.Count;
        sections.Add((AddName(shstr, ".symtab"), 2, symtab, (uint)symIndex + 1, 24));
        sections.Add((AddName(shstr, ".strtab"), 3, strtab.ToArray(), 0, 0));
        var shstrIndex = sections.Count;
        var shstrName = AddName(shstr, ".shstrtab");
        sections.Add((shstrName, 3, shstr.ToArray(), 0, 0));

        var body = new MemoryStream();
        body.Write(new byte[64]);
        var offsets = new List<long>();
        foreach (var s in sections)
        {
            offsets.Add(body.Length);
            body.Write(s.Data);
        }
        while (body.Length % 8 != 0)
            body.WriteByte(0);
        var shoff = body.Length;
        for (var i = 0; i < sections.Count; i++)
        {
            var h = new byte[64];
            var s = sections[i];
            BinaryPrimitives.WriteUInt32LittleEndian(h, (uint)s.Name);
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(4), s.Type);
            BinaryPrimitives.WriteUInt64LittleEndian(h.AsSpan(0x18), i == 0 ? 0 : (ulong)offsets[i]);
            BinaryPrimitives.WriteUInt64LittleEndian(h.AsSpan(0x20), (ulong)s.Data.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(0x28), s.Link);
            BinaryPrimitives.WriteUInt64LittleEndian(h.AsSpan(0x38), s.EntSize);
            body.Write(h);
        }
        var bytes = body.ToArray();
        "\u007fELF"u8.CopyTo(bytes);
        bytes[4] = 2;
        bytes[5] = 1;
        bytes[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(16), 1); // ET_REL
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(18), 62); // EM_X86_64
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(0x28), (ulong)shoff);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(0x3a), 64);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(0x3c), (ushort)sections.Count);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(0x3e), (ushort)shstrIndex);
        return bytes;
    }
}
