using System.Diagnostics;
using System.Text;

namespace Livegraft.Kernel;

/// <summary>What a finished host tool printed.</summary>
internal sealed record ToolResult(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>The last <paramref name="lines"/> lines of stderr (stdout when stderr is empty),
    /// the part of a compiler or make failure a person needs to read.</summary>
    public string Tail(int lines = 40)
    {
        var text = Stderr.Trim().Length > 0 ? Stderr : Stdout;
        var all = text.TrimEnd().Split('\n');
        return string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
    }
}

/// <summary>Runs host tools (make, tar, modinfo) with cancellation and readable failures.</summary>
internal static class Tool
{
    /// <summary>Runs <paramref name="file"/>; on a non-zero exit throws <see cref="LivegraftException"/>
    /// with <paramref name="errorId"/> and the stderr tail unless <paramref name="check"/> is false.
    /// Cancellation kills the tool's process tree and throws <see cref="OperationCanceledException"/>.</summary>
    public static ToolResult Run(
        string file,
        IEnumerable<string> args,
        string? workingDirectory = null,
        Action<string>? onStdoutLine = null,
        bool check = true,
        string errorId = KernelErrors.ToolFailed,
        ExitCode exitCode = ExitCode.HostFailure,
        string? what = null,
        IReadOnlyDictionary<string, string?>? environment = null,
        string? stdoutFile = null,
        CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        if (workingDirectory is not null)
            psi.WorkingDirectory = workingDirectory;
        // Tools print in the C locale so that their messages are the ones documented.
        psi.Environment["LC_ALL"] = "C";
        if (environment is not null)
            foreach (var (k, v) in environment)
            {
                if (v is null)
                    psi.Environment.Remove(k);
                else
                    psi.Environment[k] = v;
            }

        Process process;
        try
        {
            process = Process.Start(psi)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new LivegraftException(ExitCode.HostFailure, KernelErrors.ToolFailed, $"cannot run {file}: {e.Message} (run scripts/install-deps)");
        }

        using (process)
        {
            var stdout = new StringBuilder();
            var stderr = new StringBuilder();
            using var stdoutWriter = stdoutFile is null ? null : new StreamWriter(stdoutFile);
            process.OutputDataReceived += (_, e) =>
            {
                if (e.Data is null)
                    return;
                if (stdoutWriter is not null)
                {
                    lock (stdoutWriter)
                        stdoutWriter.WriteLine(e.Data);
                }
                else
                {
                    lock (stdout)
                        stdout.Append(e.Data).Append('\n');
                }
                onStdoutLine?.Invoke(e.Data);
            };
            process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is null)
                    return;
                lock (stderr)
                {
                    stderr.Append(e.Data).Append('\n');
                    // Keep memory bounded on very chatty tools; only the tail is ever shown.
                    if (stderr.Length > 4 << 20)
                        stderr.Remove(0, stderr.Length - (1 << 20));
                }
            };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            using (cancellationToken.Register(() =>
            {
                try
                {
                    process.Kill(entireProcessTree: true);
                }
                catch (InvalidOperationException)
                {
                    // Already exited.
                }
            }))
            {
                process.WaitForExit();
            }
            cancellationToken.ThrowIfCancellationRequested();
            ToolResult result;
            lock (stdout)
                lock (stderr)
                    result = new ToolResult(process.ExitCode, stdout.ToString(), stderr.ToString());
            if (check && result.ExitCode != 0)
            {
                var label = what ?? $"{file} {string.Join(' ', psi.ArgumentList)}";
                throw new LivegraftException(exitCode, errorId, $"{label} failed (exit {result.ExitCode}):\n{result.Tail()}");
            }
            return result;
        }
    }
}
