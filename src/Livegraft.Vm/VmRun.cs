using System.Runtime.CompilerServices;
using System.Text.Json;

namespace Livegraft.Vm;

/// <summary>What one command in a throwaway guest did (<c>livegraft vm</c>).</summary>
/// <param name="Release">The kernel booted.</param>
/// <param name="Result">The command's result.</param>
/// <param name="BootTime">Boot time.</param>
/// <param name="Diagnostics">A timeout, when the guest killed the command.</param>
public sealed record VmRunResult(string Release, VmCommandResult Result, TimeSpan BootTime, IReadOnlyList<Diagnostic> Diagnostics)
{
    /// <summary>The command's own status, or host failure when it timed out.</summary>
    public int ExitCode => Result.TimedOut ? (int)Livegraft.ExitCode.HostFailure : Result.ExitCode;

    /// <summary>The <c>--json</c> document.</summary>
    public void WriteJson(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteBoolean("ok", !Result.TimedOut && Result.ExitCode == 0);
        w.WriteNumber("exitCode", ExitCode);
        w.WriteNumber("commandExitCode", Result.ExitCode);
        w.WriteBoolean("timedOut", Result.TimedOut);
        w.WriteString("output", Result.Output);
        w.WriteString("kernel", Release);
        w.WriteNumber("bootSeconds", Math.Round(BootTime.TotalSeconds, 2));
        w.WriteNumber("runSeconds", Math.Round(Result.Elapsed.TotalSeconds, 2));
        Json.WriteDiagnostics(w, Diagnostics);
        w.WriteEndObject();
    }
}

/// <summary>Boots a throwaway guest, runs one command, powers it off: <c>livegraft vm</c>'s entry point.</summary>
public static class VmRun
{
    /// <summary>Runs <paramref name="command"/> in a fresh guest described by <paramref name="options"/>
    /// (its kernel image is fetched when missing; the NativeAOT livegraft binary goes in when this
    /// process is one).</summary>
    public static VmRunResult Run(VmOptions options, string command, Action<string>? progress = null)
    {
        options.Kernel.EnsureImage(progress);
        options.LivegraftBinary ??= NativeSelf();
        using var session = VmSession.Start(options, progress);
        progress?.Invoke("running");
        var result = session.Run(command, options.CommandTimeout);
        IReadOnlyList<Diagnostic> diagnostics = result.TimedOut
            ? [new Diagnostic(VmErrors.CommandTimedOut, Severity.Error, $"the command timed out after {options.CommandTimeout.TotalSeconds:0} s and was killed")]
            : [];
        return new VmRunResult(options.Kernel.Release, result, session.BootTime, diagnostics);
    }

    /// <summary>This process's executable when it is the NativeAOT build (it then runs in the guest
    /// with nothing but glibc); null under <c>dotnet livegraft.dll</c> or a framework-dependent apphost.</summary>
    public static string? NativeSelf() =>
        !RuntimeFeature.IsDynamicCodeSupported && Environment.ProcessPath is { } self && File.Exists(self) ? self : null;
}
