using Livegraft.Elf;
using static Livegraft.Elf.ElfNative;
using Livegraft.Symbols;

namespace Livegraft.Verify;

/// <summary>
/// One klp object of the <em>running</em> kernel: addresses from <c>/proc/kallsyms</c>, bytes from
/// <c>/proc/kcore</c> (an ELF core whose PT_LOAD segments map kernel virtual addresses). Needs root
/// and a kernel not in lockdown; where either is missing <see cref="Verify"/> notes why, and the
/// module's own pre-patch check (docs/verify.md) is what protects the kernel.
/// </summary>
/// <remarks>
/// The bytes are live text: alternatives, paravirt sites, jump labels, static calls and ftrace
/// have already rewritten it, exactly the sites the expectation masks leave out. A module object's
/// code has its relocations applied, which the expectation's relocation mask covers as well.
/// </remarks>
public sealed class RunningKernelCode : ITargetCode
{
    private readonly Kcore _kcore;

    private RunningKernelCode(string objectName, SymbolTable symbols, Kcore kcore)
    {
        ObjectName = objectName;
        Symbols = symbols;
        _kcore = kcore;
    }

    /// <inheritdoc/>
    public string ObjectName { get; }

    /// <inheritdoc/>
    public SymbolTable Symbols { get; }

    /// <summary>Checks <paramref name="expectations"/> (a module's embedded table) against the running
    /// kernel, object by object; <c>/proc/kallsyms</c> and <c>/proc/kcore</c> are opened once for all
    /// of them. Objects whose code cannot be read here (a module not loaded yet, lockdown, no root)
    /// are left out with a note saying why: the module checks them itself.</summary>
    public static VerifyReport Verify(IEnumerable<FunctionExpectation> expectations, out IReadOnlyList<string> notes, string procRoot = "/proc")
    {
        var checks = new List<FunctionCheck>();
        var skipped = new List<string>();
        KallsymsFile? dump = null;
        string? dumpProblem = null;
        try
        {
            dump = KallsymsFile.Read(Path.Combine(procRoot, "kallsyms"));
        }
        catch (LivegraftException e)
        {
            dumpProblem = $"cannot read {procRoot}/kallsyms: {e.Diagnostics[0].Message}";
        }
        Kcore? kcore = null;
        string? kcoreProblem = null;
        try
        {
            foreach (var group in expectations.GroupBy(e => e.Object, StringComparer.Ordinal))
            {
                var symbols = dump is null ? null : SymbolTable.FromKallsyms(dump, group.Key);
                var why = dumpProblem ?? Unreadable(symbols!, group.Key);
                if (why is null && kcore is null && kcoreProblem is null)
                    kcore = Kcore.TryOpen(procRoot, out kcoreProblem);
                why ??= kcoreProblem;
                if (why is not null)
                {
                    skipped.Add($"{group.Key}: not checked before loading ({why}); the module checks it before it is enabled");
                    continue;
                }
                var code = new RunningKernelCode(group.Key, symbols!, kcore!);
                checks.AddRange(group.Select(e => RunPreVerifier.Check(e, code)));
            }
        }
        finally
        {
            kcore?.Dispose();
        }
        notes = skipped;
        return new VerifyReport(checks);
    }

    /// <summary>Why an object's symbols give no addresses to read at, or null when they do.</summary>
    private static string? Unreadable(SymbolTable symbols, string objectName)
    {
        if (symbols.Count == 0)
            return objectName == SymbolTable.VmlinuxObject ? "no symbols in kallsyms" : $"module {objectName} is not loaded";
        // kptr_restrict zeroes every address; the last symbol of an object never is 0 otherwise
        // (only vmlinux's first, per-CPU, symbols are).
        return symbols.Symbols[symbols.Count - 1].Address == 0 ? "kallsyms hides addresses (kptr_restrict; not root?)" : null;
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
        return _kcore.Read(address, size) is { } bytes ? new TargetFunction(address, bytes, []) : null;
    }

    /// <summary><c>/proc/kcore</c>: its PT_LOAD segments, read at kernel virtual addresses.</summary>
    private sealed class Kcore : IDisposable
    {
        private readonly FileStream _file;
        private readonly (ulong VirtualAddress, ulong Offset, ulong Size)[] _segments;

        private Kcore(FileStream file, (ulong, ulong, ulong)[] segments)
        {
            _file = file;
            _segments = segments;
        }

        /// <summary>Opens the core; null with <paramref name="why"/> when it cannot be read.</summary>
        public static Kcore? TryOpen(string procRoot, out string? why)
        {
            FileStream file;
            try
            {
                file = new FileStream(Path.Combine(procRoot, "kcore"), FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.RandomAccess);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                why = $"cannot open {procRoot}/kcore ({e.Message.TrimEnd('.')}; lockdown or not root)";
                return null;
            }
            try
            {
                why = null;
                return new Kcore(file, ReadSegments(file));
            }
            catch (Exception e) when (e is IOException or LivegraftException)
            {
                file.Dispose();
                why = $"cannot read {procRoot}/kcore: {e.Message}";
                return null;
            }
        }

        /// <summary>Up to <paramref name="size"/> bytes at <paramref name="address"/> (fewer at the end of
        /// a segment); null when no segment maps it.</summary>
        public byte[]? Read(ulong address, int size)
        {
            foreach (var (va, offset, length) in _segments)
            {
                if (address < va || address - va >= length)
                    continue;
                var bytes = new byte[(int)Math.Min((ulong)size, length - (address - va))];
                try
                {
                    _file.Position = (long)(offset + (address - va));
                    _file.ReadExactly(bytes);
                }
                catch (IOException)
                {
                    return null;
                }
                return bytes;
            }
            return null;
        }

        public void Dispose() => _file.Dispose();

        private static (ulong, ulong, ulong)[] ReadSegments(FileStream kcore) =>
            [.. ElfFile.ReadSegments(kcore, kcore.Name).Segments.Where(p => p.Type == PT_LOAD).Select(p => (p.VirtualAddress, p.Offset, p.FileSize))];

    }
}
