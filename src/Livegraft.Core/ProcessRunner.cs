using System.ComponentModel;
using System.Diagnostics;
using System.Text;

namespace Livegraft;

/// <summary>A host program to run: what, with which arguments and environment, and where its
/// output goes.</summary>
public sealed record ProcessSpec(string File, IReadOnlyList<string> Arguments)
{
    /// <summary>Working directory; null keeps the caller's.</summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>Environment changes: a null value removes the variable.</summary>
    public IReadOnlyDictionary<string, string?>? Environment { get; init; }

    /// <summary>Run the tool in the C locale (<c>LC_ALL=C</c>) so that its messages are the documented ones.</summary>
    public bool CLocale { get; init; } = true;

    /// <summary>Bytes written to the tool's stdin (then closed); null gives it an empty stdin.</summary>
    public ReadOnlyMemory<byte>? Stdin { get; init; }

    /// <summary>Called for every stdout line (text mode only).</summary>
    public Action<string>? OnStdoutLine { get; init; }

    /// <summary>Write stdout lines to this file instead of keeping them in memory.</summary>
    public string? StdoutFile { get; init; }

    /// <summary>Keep stdout as raw bytes (<see cref="ProcessResult.StdoutBytes"/>), for decompressors.</summary>
    public bool BinaryStdout { get; init; }

    /// <summary>Expected stdout size in bytes, a capacity hint for <see cref="BinaryStdout"/>.</summary>
    public int StdoutCapacity { get; init; }

    /// <summary>The command line as a person would type it, for messages.</summary>
    public string Display => Arguments.Count == 0 ? File : File + " " + string.Join(' ', Arguments);
}

/// <summary>What a finished tool did.</summary>
/// <param name="ExitCode">Its exit status.</param>
/// <param name="Stdout">Its stdout (empty with <see cref="ProcessSpec.StdoutFile"/> or <see cref="ProcessSpec.BinaryStdout"/>).</param>
/// <param name="Stderr">Its stderr (a very chatty tool's is cut to its last megabyte).</param>
public sealed record ProcessResult(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>Stdout bytes with <see cref="ProcessSpec.BinaryStdout"/>.</summary>
    public byte[] StdoutBytes { get; init; } = [];

    /// <summary>The last <paramref name="lines"/> lines of stderr (stdout when stderr is empty):
    /// the part of a compiler or make failure a person needs to read.</summary>
    public string Tail(int lines = 40)
    {
        var text = Stderr.Trim().Length > 0 ? Stderr : Stdout;
        var all = text.TrimEnd().Split('\n');
        return string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
    }
}

/// <summary>
/// The one way Livegraft runs host programs (make, tar, apt-get, decompressors, QEMU): arguments
/// are passed as a list (no shell), the locale is C, cancellation kills the whole process tree, and
/// a program that cannot be started is reported as <see cref="CoreErrors.CannotRun"/> naming it.
/// </summary>
public static class ProcessRunner
{
    /// <summary>Runs a tool to its end and returns what it did, whatever its exit status.
    /// Cancellation kills its process tree and throws <see cref="OperationCanceledException"/>.</summary>
    public static ProcessResult Run(ProcessSpec spec, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        using var process = StartProcess(spec, redirectStdin: true);
        var stderr = new StringBuilder();
        var stdout = new StringBuilder();
        using var stdoutWriter = spec.StdoutFile is null ? null : new StreamWriter(spec.StdoutFile);
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
        process.BeginErrorReadLine();
        Task<byte[]>? binary = null;
        if (spec.BinaryStdout)
            binary = Task.Run(() => ReadAll(process.StandardOutput.BaseStream, spec.StdoutCapacity), CancellationToken.None);
        else
        {
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
                spec.OnStdoutLine?.Invoke(e.Data);
            };
            process.BeginOutputReadLine();
        }
        var input = spec.Stdin;
        var writer = Task.Run(() =>
        {
            try
            {
                if (input is { } bytes)
                    process.StandardInput.BaseStream.Write(bytes.Span);
                process.StandardInput.Close();
            }
            catch (IOException)
            {
                // The tool quit before reading everything; its exit status says why.
            }
        }, CancellationToken.None);
        using (cancellationToken.Register(() => Kill(process)))
            process.WaitForExit();
        writer.Wait(CancellationToken.None);
        var bytesOut = binary?.GetAwaiter().GetResult() ?? [];
        cancellationToken.ThrowIfCancellationRequested();
        lock (stdout)
            lock (stderr)
                return new ProcessResult(process.ExitCode, stdout.ToString(), stderr.ToString()) { StdoutBytes = bytesOut };
    }

    /// <summary>Runs a tool and throws <see cref="LivegraftException"/> with <paramref name="errorId"/>
    /// and the tool's stderr tail when it exits non-zero.</summary>
    /// <param name="spec">The tool.</param>
    /// <param name="errorId">Diagnostic id of a failure (the caller's meaning: "preparing the tree failed"...).</param>
    /// <param name="what">What the tool was doing, for the message; defaults to its command line.</param>
    /// <param name="exitCode">Exit code of the failure.</param>
    /// <param name="cancellationToken">Kills the tool.</param>
    public static ProcessResult RunChecked(ProcessSpec spec, string errorId, string? what = null,
        ExitCode exitCode = ExitCode.HostFailure, CancellationToken cancellationToken = default)
    {
        var result = Run(spec, cancellationToken);
        if (result.ExitCode != 0)
            throw new LivegraftException(exitCode, errorId, $"{what ?? spec.Display} failed (exit {result.ExitCode}):\n{result.Tail()}");
        return result;
    }

    /// <summary>Starts a long-running program (QEMU, a watchdog shell) with redirected stdin,
    /// stdout and stderr, for the caller to drive; dispose the handle to kill it.</summary>
    public static RunningProcess Start(ProcessSpec spec) => new(StartProcess(spec, redirectStdin: true));

    /// <summary>Finds a program in <c>PATH</c> or the sbin directories, which a non-login root shell may
    /// lack; returns <paramref name="name"/> unchanged when it is nowhere (starting it then names it).</summary>
    public static string Find(string name)
    {
        if (name.Contains('/', StringComparison.Ordinal))
            return name;
        var dirs = (System.Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"]);
        foreach (var dir in dirs)
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
                return candidate;
        }
        return name;
    }

    /// <summary>True when <paramref name="name"/> can be found (see <see cref="Find"/>).</summary>
    public static bool Exists(string name) => File.Exists(Find(name));

    private static Process StartProcess(ProcessSpec spec, bool redirectStdin)
    {
        var utf8 = new UTF8Encoding(false);
        var psi = new ProcessStartInfo(spec.File)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = redirectStdin,
            UseShellExecute = false,
            StandardOutputEncoding = spec.BinaryStdout ? null : utf8,
            StandardErrorEncoding = utf8,
            StandardInputEncoding = utf8,
        };
        foreach (var a in spec.Arguments)
            psi.ArgumentList.Add(a);
        if (spec.WorkingDirectory is not null)
            psi.WorkingDirectory = spec.WorkingDirectory;
        if (spec.CLocale)
            psi.Environment["LC_ALL"] = "C";
        if (spec.Environment is not null)
            foreach (var (k, v) in spec.Environment)
            {
                if (v is null)
                    psi.Environment.Remove(k);
                else
                    psi.Environment[k] = v;
            }
        try
        {
            return Process.Start(psi) ?? throw new LivegraftException(ExitCode.HostFailure, CoreErrors.CannotRun, $"cannot run {spec.File}");
        }
        catch (Win32Exception e)
        {
            throw new LivegraftException(ExitCode.HostFailure, CoreErrors.CannotRun,
                $"cannot run {spec.File}: {e.Message} (scripts/install-deps installs the tools Livegraft needs)");
        }
    }

    internal static void Kill(Process process)
    {
        try
        {
            if (!process.HasExited)
                process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }
    }

    private static byte[] ReadAll(Stream s, int capacity)
    {
        var buffer = new byte[Math.Max(capacity, 1 << 16)];
        var length = 0;
        while (true)
        {
            if (length == buffer.Length)
                Array.Resize(ref buffer, checked(buffer.Length * 2));
            var n = s.Read(buffer, length, buffer.Length - length);
            if (n == 0)
                break;
            length += n;
        }
        if (length != buffer.Length)
            Array.Resize(ref buffer, length);
        return buffer;
    }
}

/// <summary>A program started with <see cref="ProcessRunner.Start"/>. Disposing kills it (and its children).</summary>
public sealed class RunningProcess : IDisposable
{
    private readonly Process _process;

    internal RunningProcess(Process process)
    {
        _process = process;
        _process.StandardInput.AutoFlush = true;
        _process.StandardInput.NewLine = "\n";
    }

    /// <summary>Its process id.</summary>
    public int Id => _process.Id;

    /// <summary>Its stdin, UTF-8, auto-flushed, "\n" line ends.</summary>
    public StreamWriter Stdin => _process.StandardInput;

    /// <summary>Its stdout.</summary>
    public StreamReader Stdout => _process.StandardOutput;

    /// <summary>Its stderr.</summary>
    public StreamReader Stderr => _process.StandardError;

    /// <summary>True once it has exited.</summary>
    public bool HasExited
    {
        get
        {
            try
            {
                return _process.HasExited;
            }
            catch (InvalidOperationException)
            {
                return true;
            }
        }
    }

    /// <summary>Waits for it to exit; false when <paramref name="timeout"/> passed first.</summary>
    public bool WaitForExit(TimeSpan timeout) => _process.WaitForExit(timeout);

    /// <summary>Kills it and its children (no-op when it has exited), then waits briefly for it.</summary>
    public void Kill()
    {
        ProcessRunner.Kill(_process);
        try
        {
            _process.WaitForExit(5000);
        }
        catch (InvalidOperationException)
        {
            // Already reaped.
        }
    }

    /// <summary>Kills it and releases the handle.</summary>
    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }
}
