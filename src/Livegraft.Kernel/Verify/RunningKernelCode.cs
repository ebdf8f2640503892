using System.Buffers.Binary;
using Livegraft.Kernel.Symbols;

namespace Livegraft.Kernel.Verify;

/// <summary>
/// One klp object of the <em>running</em> kernel: addresses from <c>/proc/kallsyms</c>, bytes from
/// <c>/proc/kcore</c> (an ELF core whose PT_LOAD segments map kernel virtual addresses). Needs root
/// and a kernel not in lockdown; where either is missing <see cref="TryOpen"/> says why, and the
/// module's own pre-patch check (docs/verify.md) is what protects the kernel.
/// </summary>
/// <remarks>
/// The bytes are live text: alternatives, paravirt sites, jump labels, static calls and ftrace
/// have already rewritten it, exactly the sites the expectation masks leave out. A module object's
/// code has its relocations applied, which the expectation's relocation mask covers as well.
/// </remarks>
public sealed class RunningKernelCode : ITargetCode, IDisposable
{
    private const uint PtLoad = 1;
    private readonly FileStream _kcore;
    private readonly (ulong VirtualAddress, ulong Offset, ulong Size)[] _segments;

    private RunningKernelCode(string objectName, SymbolTable symbols, FileStream kcore, (ulong, ulong, ulong)[] segments)
    {
        ObjectName = objectName;
        Symbols = symbols;
        _kcore = kcore;
        _segments = segments;
    }

    /// <inheritdoc/>
    public string ObjectName { get; }

    /// <inheritdoc/>
    public SymbolTable Symbols { get; }

    /// <summary>Opens <paramref name="objectName"/> (<c>vmlinux</c> or a loaded module) of the running
    /// kernel; null with <paramref name="why"/> when its code cannot be read from user space.</summary>
    public static RunningKernelCode? TryOpen(string objectName, out string why, string procRoot = "/proc")
    {
        SymbolTable symbols;
        try
        {
            symbols = SymbolTable.Open(Path.Combine(procRoot, "kallsyms"), objectName);
        }
        catch (Exception e) when (e is LivegraftException or IOException or UnauthorizedAccessException)
        {
            why = $"cannot read {procRoot}/kallsyms: {e.Message}";
            return null;
        }
        if (symbols.Count == 0)
        {
            why = objectName == SymbolTable.VmlinuxObject ? "no symbols in kallsyms" : $"module {objectName} is not loaded";
            return null;
        }
        if (symbols.Symbols.All(s => s.Address == 0))
        {
            why = "kallsyms hides addresses (kptr_restrict; not root?)";
            return null;
        }
        FileStream kcore;
        try
        {
            kcore = new FileStream(Path.Combine(procRoot, "kcore"), FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.RandomAccess);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            why = $"cannot open {procRoot}/kcore ({e.Message.TrimEnd('.')}; lockdown or not root)";
            return null;
        }
        try
        {
            var segments = ReadSegments(kcore);
            why = "";
            return new RunningKernelCode(objectName, symbols, kcore, segments);
        }
        catch (Exception e) when (e is IOException or InvalidDataException)
        {
            kcore.Dispose();
            why = $"cannot read {procRoot}/kcore: {e.Message}";
            return null;
        }
    }

    /// <summary>Checks <paramref name="expectations"/> (a module's embedded table) against the running
    /// kernel, object by object. Objects whose code cannot be read here (a module not loaded yet,
    /// lockdown, no root) are left out with a note saying why: the module checks them itself.</summary>
    public static VerifyReport Verify(IEnumerable<FunctionExpectation> expectations, out IReadOnlyList<string> notes, string procRoot = "/proc")
    {
        var checks = new List<FunctionCheck>();
        var skipped = new List<string>();
        foreach (var group in expectations.GroupBy(e => e.Object, StringComparer.Ordinal))
        {
            using var code = TryOpen(group.Key, out var why, procRoot);
            if (code is null)
            {
                skipped.Add($"{group.Key}: not checked before loading ({why}); the module checks it before it is enabled");
                continue;
            }
            checks.AddRange(group.Select(e => RunPreVerifier.Check(e, code)));
        }
        notes = skipped;
        return new VerifyReport(checks);
    }

    /// <summary>
    /// The check <c>livegraft load</c> runs before <c>finit_module</c>: the module's embedded table
    /// against the running kernel. Mismatches are errors (LG0350–LG0352); what could not be checked
    /// here, and the count that matched, are LG0356 notes. A module without a table (not built by
    /// Livegraft) is a note too: there is nothing to compare.
    /// </summary>
    public static IReadOnlyList<Diagnostic> CheckModule(string koPath, string procRoot = "/proc")
    {
        List<FunctionExpectation> entries;
        try
        {
            entries = VerifyTable.Read(koPath);
        }
        catch (LivegraftException e) when (e.Diagnostics[0].Id == VerifyErrors.NoTable)
        {
            return [new Diagnostic(VerifyErrors.NotCheckedHere, Severity.Note, "the running code is not checked: " + e.Diagnostics[0].Message, koPath)];
        }
        var report = Verify(entries, out var notes, procRoot);
        var result = notes.Select(n => new Diagnostic(VerifyErrors.NotCheckedHere, Severity.Note, n, koPath)).ToList();
        var bad = report.Functions.Where(f => !f.Ok).Select(f => f.ToDiagnostic(koPath)!).ToList();
        if (bad.Count > 0)
            return [.. bad, .. result];
        if (report.Functions.Count > 0)
            result.Add(new Diagnostic(VerifyErrors.NotCheckedHere, Severity.Note,
                $"{report.Functions.Count} function(s) match the running kernel's code ({report.AverageMaskedBytes:0.0} bytes masked on average)", koPath));
        return result;
    }

    /// <inheritdoc/>
    public TargetFunction? Read(int index, int size)
    {
        var address = Symbols.Symbols[index].Address;
        foreach (var (va, offset, length) in _segments)
        {
            if (address < va || address - va >= length)
                continue;
            var n = (int)Math.Min((ulong)size, length - (address - va));
            var bytes = new byte[n];
            try
            {
                _kcore.Position = (long)(offset + (address - va));
                _kcore.ReadExactly(bytes);
            }
            catch (IOException)
            {
                return null;
            }
            return new TargetFunction(address, bytes, []);
        }
        return null;
    }

    /// <inheritdoc/>
    public void Dispose() => _kcore.Dispose();

    private static (ulong, ulong, ulong)[] ReadSegments(FileStream kcore)
    {
        var header = new byte[64];
        kcore.ReadExactly(header);
        if (!header.AsSpan(0, 4).SequenceEqual((ReadOnlySpan<byte>)[0x7f, (byte)'E', (byte)'L', (byte)'F']) || header[4] != 2 || header[5] != 1)
            throw new InvalidDataException("not a little-endian ELF64 core");
        var phoff = BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(0x20));
        var phentsize = BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(0x36));
        var phnum = BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(0x38));
        if (phentsize < 56 || phnum == 0)
            throw new InvalidDataException("no program headers");
        var table = new byte[phentsize * phnum];
        kcore.Position = (long)phoff;
        kcore.ReadExactly(table);
        var result = new List<(ulong, ulong, ulong)>();
        for (var i = 0; i < phnum; i++)
        {
            var ph = table.AsSpan(i * phentsize, phentsize);
            if (BinaryPrimitives.ReadUInt32LittleEndian(ph) != PtLoad)
                continue;
            result.Add((BinaryPrimitives.ReadUInt64LittleEndian(ph[0x10..]), BinaryPrimitives.ReadUInt64LittleEndian(ph[0x08..]),
                BinaryPrimitives.ReadUInt64LittleEndian(ph[0x20..])));
        }
        return [.. result];
    }
}
