using Livegraft.Diff;
using Livegraft.Elf;
using Livegraft.Kernel.Features;
using Livegraft.Kernel.Parent;
using Livegraft.Symbols;

namespace Livegraft.Kernel;

/// <summary>What <c>livegraft diff</c> is asked to compare.</summary>
/// <param name="OrigPath">The unit compiled before the fix.</param>
/// <param name="PatchedPath">The unit compiled after it.</param>
/// <param name="ParentPath">Symbols of the object patched: vmlinux or bzImage, module.ko, or a kallsyms dump.</param>
public sealed record ObjectDiffRequest(string OrigPath, string PatchedPath, string ParentPath)
{
    /// <summary>klp object name with a kallsyms dump: a module name (default vmlinux).</summary>
    public string? ParentName { get; init; }
    /// <summary>The target's <c>Module.symvers</c> (which symbols are exported).</summary>
    public string? SymversPath { get; init; }
    /// <summary>Where to write the output object, when the diff has one.</summary>
    public string? OutputPath { get; init; }
    /// <summary>The target release whose special-section layouts apply (read from its prepared
    /// tree, which is prepared when missing); default the reference release.</summary>
    public string Kernel { get; init; } = KernelTarget.ReferenceRelease;
    /// <summary><c>--sizes</c>: sizes given by hand (<see cref="SizesOverride"/>); when it names
    /// every size, <see cref="Kernel"/> is not read at all.</summary>
    public string? Sizes { get; init; }
}

/// <summary>What the diff found and how the command ends.</summary>
/// <param name="Result">The differ's result.</param>
/// <param name="ExitCode">Success when a patch object exists; InvalidInput for refusals and when nothing changed.</param>
/// <param name="OutputPath">The object written, or null.</param>
public sealed record ObjectDiffReport(DiffResult Result, ExitCode ExitCode, string? OutputPath);

/// <summary>The object differ on two files: <c>livegraft diff</c>'s one entry point.</summary>
public static class ObjectDiff
{
    /// <summary>Reads the parent's symbols, runs the differ and writes the output when there is one.
    /// "Nothing changed" is a refusal like any other (<see cref="DiffErrors.NothingChanged"/>, exit 2).</summary>
    public static ObjectDiffReport Run(ObjectDiffRequest request, Action<string>? progress = null)
    {
        var given = request.Sizes is { } text ? SizesOverride.Parse(text) : new Dictionary<string, int>();
        var sizes = SizesOverride.IsComplete(given) ? SizesOverride.Apply(new SpecialSectionSizes(), given)
            : SizesOverride.Apply(KernelTree.Ensure(new KernelTarget(request.Kernel), progress).Features.Sizes, given);
        var table = SymbolTable.Open(request.ParentPath, request.ParentName is { } n && n != "vmlinux" ? n : null);
        var exports = request.SymversPath is { } sv ? ModuleSymvers.Read(sv) : null;
        var options = new DiffOptions
        {
            Parent = new ParentSymbols(table, exports)
            {
                // A module's own .modinfo says which modules are loaded before it.
                Dependencies = request.ParentPath.EndsWith(".ko", StringComparison.Ordinal) ? ModuleInfo.Read(request.ParentPath).Depends : new HashSet<string>(StringComparer.Ordinal),
            },
            OrigName = request.OrigPath,
            PatchedName = request.PatchedPath,
            Sizes = sizes,
        };
        var result = Differ.Run(ElfFile.Read(request.OrigPath), ElfFile.Read(request.PatchedPath), options);
        if (result.Refusals.Count == 0 && result.NothingChanged)
            result.Refusals.Add(NothingChanged(request.PatchedPath));
        if (result.Refusals.Count > 0)
            return new ObjectDiffReport(result, ExitCode.InvalidInput, null);
        if (request.OutputPath is { } path)
            result.Output!.Write(path);
        return new ObjectDiffReport(result, ExitCode.Success, request.OutputPath);
    }

    /// <summary>The refusal of a fix that changes nothing a live patch would carry.</summary>
    public static Diagnostic NothingChanged(string file) =>
        new(DiffErrors.NothingChanged, Severity.Error, "nothing to live patch: no function the running kernel executes changed", file);
}
