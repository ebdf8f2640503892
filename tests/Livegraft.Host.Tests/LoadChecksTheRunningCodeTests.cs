using System.Buffers.Binary;
using Livegraft.Elf;
using Livegraft.Verify;
using static Livegraft.Elf.ElfNative;

namespace Livegraft.Host.Tests;

/// <summary>
/// A library caller of <see cref="LivepatchManager.Load"/> cannot skip run-pre verification: the
/// manager checks the module's embedded table against the running kernel's code itself and refuses
/// a mismatch (exit 4, LG0350) before <c>finit_module</c>. The "running kernel" is a procfs tree
/// whose kallsyms and kcore say the function's code is not what the patch was built from; the
/// module is an ELF relocatable with just what <c>load</c> reads first (a module the real kernel
/// would reject anyway, should the check ever be skipped).
/// </summary>
public class LoadChecksTheRunningCodeTests
{
    private const ulong Text = 0xffffffff81000000;

    [Fact]
    public void A_library_caller_gets_the_refusal()
    {
        using var t = new TempTree();
        t.Write("proc/sys/kernel/osrelease", BuiltModules.Release + "\n");
        t.Write("proc/cmdline", "console=ttyS0\n");
        t.Write("proc/kallsyms", $"{Text:x16} T _stext\n{Text + 0x10:x16} T patched_fn\n");
        t.Write("proc/kcore", Core(Text, [.. Enumerable.Range(0, 0x20).Select(i => (byte)i)]));
        Directory.CreateDirectory(Path.Combine(t.Root, "sys/kernel/livepatch"));
        var ko = t.Write("patch.ko", Module([new("vmlinux", "patched_fn", 0, ExpectationRole.Replaced, [0x10, 0x11, 0xee, 0x13], [0xff, 0xff, 0xff, 0xff])]));

        var e = Assert.Throws<LivegraftException>(() => new LivepatchManager(t.Paths).Load(ko, new TransitionOptions()));
        Assert.Equal(ExitCode.VerificationFailed, e.ExitCode);
        var d = Assert.Single(e.Diagnostics);
        Assert.Equal(VerifyErrors.CodeMismatch, d.Id);
        Assert.Equal("vmlinux:patched_fn+0x2", d.Location);
    }

    /// <summary>A livepatch "module" for <see cref="BuiltModules.Release"/> carrying a verification table.</summary>
    private static byte[] Module(List<FunctionExpectation> entries)
    {
        var elf = new ElfFile();
        elf.AddSection(new ElfSection(".gnu.linkonce.this_module", SHT_PROGBITS) { Flags = SHF_ALLOC | SHF_WRITE, Data = new byte[64] });
        elf.AddSection(new ElfSection(".modinfo", SHT_PROGBITS)
        {
            Flags = SHF_ALLOC,
            Data = System.Text.Encoding.UTF8.GetBytes($"vermagic={BuiltModules.Release} SMP preempt mod_unload modversions \0livepatch=Y\0name=lg_refused\0"),
        });
        var blob = VerifyTable.Encode(entries, _ => 0);
        var section = elf.AddSection(new ElfSection(".rodata.livegraft.verify", SHT_PROGBITS) { Flags = SHF_ALLOC, Data = blob });
        elf.SymbolTable!.Symbols.Add(new ElfSymbol { Name = VerifyTable.BlobSymbol, Type = STT_OBJECT, Bind = STB_GLOBAL, Section = section, Size = (ulong)blob.Length });
        return elf.ToArray();
    }

    /// <summary>A kcore-shaped ELF core: one PT_LOAD mapping <paramref name="bytes"/> at <paramref name="address"/>.</summary>
    private static byte[] Core(ulong address, byte[] bytes)
    {
        const int ehdr = 64, phdr = 56;
        var file = new byte[ehdr + phdr + bytes.Length];
        file[0] = 0x7f;
        "ELF"u8.CopyTo(file.AsSpan(1));
        file[4] = ELFCLASS64;
        file[5] = ELFDATA2LSB;
        file[6] = EV_CURRENT;
        BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(0x10), ET_CORE);
        BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(0x20), ehdr);
        BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(0x36), phdr);
        BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(0x38), 1);
        var load = file.AsSpan(ehdr, phdr);
        BinaryPrimitives.WriteUInt32LittleEndian(load, PT_LOAD);
        BinaryPrimitives.WriteUInt64LittleEndian(load[0x08..], ehdr + phdr);
        BinaryPrimitives.WriteUInt64LittleEndian(load[0x10..], address);
        BinaryPrimitives.WriteUInt64LittleEndian(load[0x20..], (ulong)bytes.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(load[0x28..], (ulong)bytes.Length);
        bytes.CopyTo(file, ehdr + phdr);
        return file;
    }
}
