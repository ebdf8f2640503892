using System.Buffers.Binary;
using Livegraft.Verify;

namespace Livegraft.Verify.Tests;

/// <summary>
/// The user-space run-pre check over a procfs root: kallsyms for addresses and a kcore-shaped ELF
/// core (one PT_LOAD segment) for bytes. The real <c>/proc/kcore</c> is exercised in the VM by
/// tests/Livegraft.Cli.Tests/VerificationEndToEndTests.cs.
/// </summary>
public sealed class RunningKernelCodeTests : IDisposable
{
    private const ulong Text = 0xffffffff81000000;
    private readonly string _proc = Directory.CreateTempSubdirectory("livegraft-proc-").FullName;

    public RunningKernelCodeTests()
    {
        File.WriteAllText(Path.Combine(_proc, "kallsyms"), $"""
            {Text:x16} T _stext
            {Text + 0x10:x16} t helper
            {Text + 0x20:x16} T target_fn
            {Text + 0x30:x16} t helper
            ffffffffc0000000 t modfn	[somemod]

            """.Replace("\r", "", StringComparison.Ordinal));
        var code = new byte[0x40];
        for (var i = 0; i < code.Length; i++)
            code[i] = (byte)i;
        File.WriteAllBytes(Path.Combine(_proc, "kcore"), Core(Text, code));
    }

    public void Dispose() => Directory.Delete(_proc, recursive: true);

    [Fact]
    public void Matching_and_differing_functions_are_told_apart_with_masks_and_sympos()
    {
        var expectations = new List<FunctionExpectation>
        {
            new("vmlinux", "target_fn", 0, ExpectationRole.Replaced, [0x20, 0x21, 0x99, 0x23], [0xff, 0xff, 0, 0xff]),
            new("vmlinux", "helper", 2, ExpectationRole.Referenced, [0x30, 0x31, 0x32, 0x77], [0xff, 0xff, 0xff, 0xff]),
        };
        var report = RunningKernelCode.Verify(expectations, out var notes, _proc);
        Assert.Empty(notes);
        Assert.True(report.Functions[0].Ok);
        Assert.False(report.Functions[1].Ok);
        Assert.Equal(VerifyErrors.CodeMismatch, report.Functions[1].Id);
        Assert.Equal(3, report.Functions[1].FirstDifference);
    }

    [Fact]
    public void Objects_that_cannot_be_read_are_left_to_the_module_with_a_note()
    {
        var expectations = new List<FunctionExpectation> { new("othermod", "f", 0, ExpectationRole.Replaced, [1], [0xff]) };
        var report = RunningKernelCode.Verify(expectations, out var notes, _proc);
        Assert.Empty(report.Functions);
        Assert.Contains("othermod is not loaded", Assert.Single(notes), StringComparison.Ordinal);

        File.Delete(Path.Combine(_proc, "kcore"));
        RunningKernelCode.Verify([new("vmlinux", "target_fn", 0, ExpectationRole.Replaced, [0x20], [0xff])], out notes, _proc);
        Assert.Contains("kcore", Assert.Single(notes), StringComparison.Ordinal);
    }

    /// <summary>An ELF64 core with one PT_LOAD mapping <paramref name="bytes"/> at <paramref name="address"/>.</summary>
    private static byte[] Core(ulong address, byte[] bytes)
    {
        const int ehdr = 64, phdr = 56;
        var file = new byte[ehdr + 2 * phdr + bytes.Length];
        "\x7f"u8.CopyTo(file);
        "ELF"u8.CopyTo(file.AsSpan(1));
        file[4] = 2; // ELFCLASS64
        file[5] = 1; // little-endian
        file[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(0x10), 4); // ET_CORE
        BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(0x20), ehdr);
        BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(0x36), phdr);
        BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(0x38), 2);
        var note = file.AsSpan(ehdr, phdr);
        BinaryPrimitives.WriteUInt32LittleEndian(note, 4); // PT_NOTE, ignored
        var load = file.AsSpan(ehdr + phdr, phdr);
        BinaryPrimitives.WriteUInt32LittleEndian(load, 1); // PT_LOAD
        BinaryPrimitives.WriteUInt64LittleEndian(load[0x08..], ehdr + 2 * phdr);
        BinaryPrimitives.WriteUInt64LittleEndian(load[0x10..], address);
        BinaryPrimitives.WriteUInt64LittleEndian(load[0x20..], (ulong)bytes.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(load[0x28..], (ulong)bytes.Length);
        bytes.CopyTo(file, ehdr + 2 * phdr);
        return file;
    }
}
