using Livegraft.Symbols;
using Livegraft.Kernel.Build;
using Livegraft.Verify;

namespace Livegraft.Kernel;

/// <summary>What <c>livegraft verify</c> found.</summary>
/// <param name="Module">The patch module checked.</param>
/// <param name="Image">What it was checked against: an image path, or "running kernel".</param>
/// <param name="Report">One check per function.</param>
/// <param name="Notes">What could not be checked and why.</param>
public sealed record ModuleVerificationReport(string Module, string Image, VerifyReport Report, IReadOnlyList<Diagnostic> Notes)
{
    /// <summary>Success when every function matched, else VerificationFailed.</summary>
    public ExitCode ExitCode => Report.Ok ? ExitCode.Success : ExitCode.VerificationFailed;
}

/// <summary>A built module's embedded run-pre table (docs/verify.md) checked against a kernel
/// image, a release's image (fetched when needed), or the running kernel: <c>livegraft verify</c>'s
/// one entry point.</summary>
public static class ModuleVerification
{
    /// <summary>Checks <paramref name="koPath"/>: against the running kernel when <paramref name="running"/>,
    /// else against <paramref name="kernel"/> (an image file or a release; default the module's own
    /// <c>livegraft.kernel_release</c>).</summary>
    public static ModuleVerificationReport Check(string koPath, string? kernel, bool running, Action<string>? progress = null)
    {
        var entries = VerifyTable.Read(koPath);
        if (running)
        {
            var report = RunningKernelCode.Verify(entries, out var notes);
            return new ModuleVerificationReport(koPath, "running kernel", report,
                [.. notes.Select(n => new Diagnostic(VerifyErrors.NotCheckedHere, Severity.Note, n, koPath))]);
        }
        KernelTarget? target = null;
        string image;
        if (kernel is not null && File.Exists(kernel))
            image = Path.GetFullPath(kernel);
        else
        {
            var release = kernel ?? (LivepatchModule.ReadInfo(koPath).GetValueOrDefault(LivegraftInfo.KernelRelease) is { Count: > 0 } v ? v[0] : null)
                ?? throw new LivegraftException(ExitCode.InvalidInput, VerifyErrors.NoTable,
                    $"the module does not record its kernel release ({LivegraftInfo.KernelRelease}); pass --kernel", koPath);
            target = new KernelTarget(release);
            target.EnsureImage(progress);
            image = target.KernelImage;
        }
        var codes = new Dictionary<string, ITargetCode>(StringComparer.Ordinal);
        ITargetCode CodeOf(string obj) => codes.TryGetValue(obj, out var c) ? c : codes[obj] = obj == "vmlinux"
            ? ImageCode.Open(image)
            : new ModuleCode(PatchBuilder.FindModule(target ?? throw new LivegraftException(ExitCode.Usage, VerifyErrors.ModuleNeedsRelease,
                $"object {obj} is a module: pass --kernel RELEASE so its .ko can be found", koPath), obj));
        return new ModuleVerificationReport(koPath, image, RunPreVerifier.Check(entries, CodeOf), []);
    }
}
