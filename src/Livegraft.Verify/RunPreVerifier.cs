using Livegraft.Diff;
using Livegraft.Elf;
using static Livegraft.Elf.ElfNative;

namespace Livegraft.Verify;

/// <summary>Diagnostic ids of run-pre verification (LG0350–LG0369).</summary>
public static class VerifyErrors
{
    /// <summary>A function's code in the target differs from the code the patch was built from.</summary>
    public const string CodeMismatch = "LG0350";
    /// <summary>A function to verify is not in the target's symbols (or its sympos does not resolve).</summary>
    public const string SymbolMissing = "LG0351";
    /// <summary>A function's bytes are not in the target file (no PT_LOAD / section data).</summary>
    public const string NoBytes = "LG0352";
    /// <summary>A module carries no (or a malformed) embedded verification table.</summary>
    public const string NoTable = "LG0353";
    /// <summary>Build-time verification was skipped on request (warning).</summary>
    public const string Skipped = "LG0354";
    /// <summary>A function the differ names is not in the original object.</summary>
    public const string NotInObject = "LG0355";
    /// <summary>What the pre-load check of the running kernel did or could not do (note).</summary>
    public const string NotCheckedHere = "LG0356";
    /// <summary>A module object was to be checked against an image file, which has only vmlinux.</summary>
    public const string ModuleNeedsRelease = "LG0357";
}

/// <summary>The outcome of checking one function.</summary>
/// <param name="Object">klp object.</param>
/// <param name="Name">Function.</param>
/// <param name="Sympos">sympos.</param>
/// <param name="Role">Replaced or referenced.</param>
/// <param name="Size">Bytes in the function.</param>
/// <param name="MaskedBytes">Bytes not compared (expectation mask plus the target's own relocations).</param>
/// <param name="Address">Address (vmlinux) or section offset (module) in the target; null when not found.</param>
/// <param name="FirstDifference">First differing offset, or null when the code matches.</param>
/// <param name="Id">Diagnostic id when it failed.</param>
/// <param name="Problem">What failed, or null.</param>
public sealed record FunctionCheck(string Object, string Name, int Sympos, ExpectationRole Role, int Size, int MaskedBytes,
    ulong? Address, int? FirstDifference, string? Id, string? Problem)
{
    /// <summary>True when the function matched.</summary>
    public bool Ok => Problem is null;

    /// <summary>The failure as a diagnostic (null when it matched).</summary>
    public Diagnostic? ToDiagnostic(string? file = null) => Problem is null ? null :
        new Diagnostic(Id!, Severity.Error, Problem, file,
            $"{Object}:{(Sympos == 0 ? Name : Name + "," + Sympos)}{(FirstDifference is { } d ? $"+0x{d:x}" : "")}");
}

/// <summary>All checks of one verification.</summary>
public sealed record VerifyReport(IReadOnlyList<FunctionCheck> Functions)
{
    /// <summary>True when every function matched.</summary>
    public bool Ok => Functions.All(f => f.Ok);

    /// <summary>Average masked bytes per function.</summary>
    public double AverageMaskedBytes => Functions.Count == 0 ? 0 : Functions.Average(f => (double)f.MaskedBytes);

    /// <summary>Throws LG0350–LG0352 (exit 4, wrong kernel) naming every function that failed.</summary>
    public void ThrowIfFailed(string? file = null)
    {
        var bad = Functions.Where(f => !f.Ok).Select(f => f.ToDiagnostic(file)!).ToArray();
        if (bad.Length > 0)
            throw new LivegraftException(ExitCode.VerificationFailed, bad);
    }
}

/// <summary>
/// Run-pre matching (after Ksplice): the code a patch was built from must be the code the target
/// runs. Expectations come from the original objects; the target's code from the kernel image
/// (vmlinux through kallsyms and program headers) or the module's <c>.ko</c>.
/// </summary>
public static class RunPreVerifier
{
    /// <summary>What a diff of <paramref name="origObject"/> needs verified: every replaced function
    /// (callers changed by inlining included) and every function of the same object the new code
    /// reaches through a livepatch relocation. <c>.init</c>/<c>.exit</c> code is skipped: it is freed
    /// (or never loaded) in a running kernel.</summary>
    public static List<FunctionExpectation> Expectations(ElfFile origObject, DiffResult diff, SpecialSectionSizes sizes)
    {
        var masks = ExpectationBuilder.Index(origObject, sizes);
        var functions = origObject.SymbolTable?.Symbols.Where(s => s.IsFunction && s.Section is not null && s.Size > 0).ToList() ?? [];
        var result = new List<FunctionExpectation>();
        var seen = new HashSet<(string, int)>();
        foreach (var f in diff.Functions)
        {
            var sym = functions.Find(s => s.Name == f.OldName)
                ?? throw new LivegraftException(ExitCode.InvalidInput, VerifyErrors.NotInObject,
                    $"replaced function '{f.OldName}' is not a function of the original object", origObject.FileName);
            if (seen.Add((f.OldName, f.Sympos)))
                result.Add(ExpectationBuilder.Build(masks, sym, diff.ObjectName, f.Sympos, ExpectationRole.Replaced));
        }
        foreach (var r in diff.KlpRelocations)
        {
            if (!TryParseKlpSymbol(r.SymbolName, out var obj, out var name, out var sympos) || obj != diff.ObjectName)
                continue;
            var sym = functions.Find(s => s.Name == name);
            // A __weak definition of the unit may not be what the kernel runs (fork.c's
            // arch_dup_task_struct against x86's): the reference binds by name to whichever the
            // linker kept, so the unit's body proves nothing about it.
            if (sym is null || IsInitOrExit(sym.Section!.Name) || sym.Bind == ElfNative.STB_WEAK || !seen.Add((name, sympos)))
                continue;
            result.Add(ExpectationBuilder.Build(masks, sym, obj, sympos, ExpectationRole.Referenced));
        }
        return result;
    }

    /// <summary>Splits <c>.klp.sym.&lt;obj&gt;.&lt;name&gt;,&lt;sympos&gt;</c>.</summary>
    public static bool TryParseKlpSymbol(string symbol, out string obj, out string name, out int sympos)
    {
        obj = name = "";
        sympos = 0;
        const string prefix = ".klp.sym.";
        if (!symbol.StartsWith(prefix, StringComparison.Ordinal))
            return false;
        var dot = symbol.IndexOf('.', prefix.Length);
        var comma = symbol.LastIndexOf(',');
        if (dot < 0 || comma < dot)
            return false;
        obj = symbol[prefix.Length..dot];
        name = symbol[(dot + 1)..comma];
        return int.TryParse(symbol.AsSpan(comma + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out sympos);
    }

    /// <summary>Checks every expectation against the target code of its object.</summary>
    public static VerifyReport Check(IEnumerable<FunctionExpectation> expectations, Func<string, ITargetCode> targetOf)
    {
        var checks = new List<FunctionCheck>();
        foreach (var e in expectations)
            checks.Add(Check(e, targetOf(e.Object)));
        return new VerifyReport(checks);
    }

    /// <summary>Checks one function.</summary>
    public static FunctionCheck Check(FunctionExpectation e, ITargetCode target)
    {
        var sym = target.Symbols.Find(e.Name, e.Sympos);
        if (sym is null)
            return Fail(e, null, null, VerifyErrors.SymbolMissing, target.Symbols.CountOf(e.Name) switch
            {
                0 => $"'{e.Name}' is not in {target.ObjectName}'s symbols: the target was not built from this source and configuration",
                var n => $"'{e.Name}' occurs {n} times in {target.ObjectName}; sympos {e.Sympos} does not resolve",
            });
        var index = IndexOf(target, sym);
        var code = target.Read(index, e.Size);
        if (code is null)
            return Fail(e, sym.Address, null, VerifyErrors.NoBytes, $"'{e.Display}' at 0x{sym.Address:x} has no bytes in the {target.ObjectName} file");
        var diff = e.FirstDifference(code.Bytes, code.Mask);
        var masked = code.Mask.Length == 0 ? e.MaskedBytes : e.Mask.Zip(code.Mask).Count(p => p.First == 0 || p.Second == 0);
        if (diff < 0)
            return new FunctionCheck(e.Object, e.Name, e.Sympos, e.Role, e.Size, masked, code.Address, null, null, null);
        var found = diff < code.Bytes.Length ? $"0x{code.Bytes[diff]:x2}" : "end of code";
        return Fail(e, code.Address, diff, VerifyErrors.CodeMismatch,
            $"{(e.Role == ExpectationRole.Replaced ? "replaced" : "referenced")} function '{e.Display}' differs from the code this patch was built from at offset 0x{diff:x} (expected 0x{e.Expected[diff]:x2}, target has {found}): wrong source, configuration or compiler for this kernel");
    }

    /// <summary>Content matcher for the build's parent symbols (sympos by content): does the target's copy at
    /// a kallsyms index have the given function's code?</summary>
    public static Func<ElfSymbol, ElfFile, int, bool> ContentMatcher(ITargetCode target, SpecialSectionSizes sizes)
    {
        var cache = new Dictionary<ElfFile, ExpectationBuilder.ObjectMasks>(ReferenceEqualityComparer.Instance);
        return (function, orig, index) =>
        {
            if (!function.IsFunction || function.Section is null || function.Size == 0)
                return false;
            if (!cache.TryGetValue(orig, out var masks))
                cache[orig] = masks = ExpectationBuilder.Index(orig, sizes);
            var e = ExpectationBuilder.Build(masks, function, target.ObjectName, 0, ExpectationRole.Replaced);
            var code = target.Read(index, e.Size);
            return code is not null && e.FirstDifference(code.Bytes, code.Mask) < 0;
        };
    }

    private static int IndexOf(ITargetCode target, Symbols.KernelSymbol sym)
    {
        foreach (var i in target.Symbols.IndicesOf(sym.Name))
            if (ReferenceEquals(target.Symbols.Symbols[i], sym))
                return i;
        return target.Symbols.IndicesOf(sym.Name)[0];
    }

    private static FunctionCheck Fail(FunctionExpectation e, ulong? address, int? at, string id, string problem) =>
        new(e.Object, e.Name, e.Sympos, e.Role, e.Size, e.MaskedBytes, address, at, id, problem);

    private static bool IsInitOrExit(string section) =>
        section.StartsWith(".init", StringComparison.Ordinal) || section.StartsWith(".exit", StringComparison.Ordinal);
}
