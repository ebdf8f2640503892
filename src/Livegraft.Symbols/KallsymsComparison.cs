namespace Livegraft.Symbols;

/// <summary>One entry where the image's kallsyms and a running kernel's disagree.</summary>
/// <param name="Index">Position in kallsyms order.</param>
/// <param name="Image">The image's entry, or null past its end.</param>
/// <param name="Running">The running kernel's entry (address with the slide removed), or null past its end.</param>
public sealed record KallsymsMismatch(int Index, KernelSymbol? Image, KernelSymbol? Running);

/// <summary>
/// The acceptance rule of docs/symbols.md: the vmlinux lines of a running kernel's
/// <c>/proc/kallsyms</c> (those without <c>[module]</c>) equal the image's kallsyms tables entry by
/// entry: name, type and address, with every non-absolute address shifted by one KASLR slide
/// (zero when booted with <c>nokaslr</c>).
/// </summary>
public sealed class KallsymsComparison
{
    /// <summary>How many mismatches are kept for reporting; all are counted.</summary>
    public const int MaxReported = 20;

    private KallsymsComparison(int imageCount, int runningCount, ulong slide, int mismatchCount, IReadOnlyList<KallsymsMismatch> mismatches)
    {
        ImageCount = imageCount;
        RunningCount = runningCount;
        Slide = slide;
        MismatchCount = mismatchCount;
        Mismatches = mismatches;
    }

    /// <summary>Symbols in the image.</summary>
    public int ImageCount { get; }

    /// <summary>vmlinux symbols in the running kernel's list.</summary>
    public int RunningCount { get; }

    /// <summary>KASLR slide applied to non-<c>A</c> addresses (running minus image); 0 for <c>nokaslr</c>.</summary>
    public ulong Slide { get; }

    /// <summary>Number of differing entries, counting length differences.</summary>
    public int MismatchCount { get; }

    /// <summary>The first <see cref="MaxReported"/> differing entries.</summary>
    public IReadOnlyList<KallsymsMismatch> Mismatches { get; }

    /// <summary>True when every entry matches.</summary>
    public bool IsEqual => MismatchCount == 0;

    /// <summary>Compares the image's symbols with a running kernel's vmlinux symbols (module lines are ignored).</summary>
    /// <param name="image">Symbols decoded from the image, in kallsyms order.</param>
    /// <param name="running">A <c>/proc/kallsyms</c> dump, or its vmlinux part.</param>
    /// <param name="allowSlide">Accept one KASLR slide, taken from the first non-absolute symbol.</param>
    public static KallsymsComparison Compare(IReadOnlyList<KernelSymbol> image, IReadOnlyList<KernelSymbol> running, bool allowSlide = false)
    {
        var vmlinux = running.Where(s => s.Module is null).ToArray();
        ulong slide = 0;
        if (allowSlide)
        {
            var first = image.FirstOrDefault(s => s.Type != 'A');
            var firstIndex = first is null ? -1 : IndexOf(image, first);
            if (firstIndex >= 0 && firstIndex < vmlinux.Length)
                slide = unchecked(vmlinux[firstIndex].Address - first!.Address);
        }
        var reported = new List<KallsymsMismatch>();
        var count = 0;
        var n = Math.Max(image.Count, vmlinux.Length);
        for (var i = 0; i < n; i++)
        {
            var a = i < image.Count ? image[i] : null;
            var b = i < vmlinux.Length ? vmlinux[i] : null;
            if (b is not null && b.Type != 'A')
                b = b with { Address = unchecked(b.Address - slide) };
            if (a is not null && b is not null && a.Name == b.Name && a.Type == b.Type && a.Address == b.Address)
                continue;
            count++;
            if (reported.Count < MaxReported)
                reported.Add(new KallsymsMismatch(i, a, b));
        }
        return new KallsymsComparison(image.Count, vmlinux.Length, slide, count, reported);
    }

    /// <summary>Throws <see cref="LivegraftException"/> (exit 4, LG0321) when the lists differ.</summary>
    public void ThrowIfDifferent(string? file = null)
    {
        if (IsEqual)
            return;
        var diagnostics = new List<Diagnostic>
        {
            new(SymbolErrors.KallsymsDiffer, Severity.Error,
                $"running kernel's kallsyms differ from the image's: {MismatchCount} of {Math.Max(ImageCount, RunningCount)} entries " +
                $"(image {ImageCount}, running {RunningCount}, slide 0x{Slide:x})", file),
        };
        foreach (var m in Mismatches)
            diagnostics.Add(new Diagnostic(SymbolErrors.KallsymsDiffer, Severity.Note,
                $"image '{m.Image?.ToString() ?? "(end)"}', running '{m.Running?.ToString() ?? "(end)"}'", file, $"entry {m.Index}"));
        throw new LivegraftException(ExitCode.VerificationFailed, diagnostics.ToArray());
    }

    private static int IndexOf(IReadOnlyList<KernelSymbol> list, KernelSymbol item)
    {
        for (var i = 0; i < list.Count; i++)
        {
            if (ReferenceEquals(list[i], item))
                return i;
        }
        return -1;
    }
}
