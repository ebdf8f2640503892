using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Livegraft.Host;

/// <summary>
/// One operation at a time on a host: every verb that changes the live patches or the store
/// (load, unload, install, uninstall, load-installed, update, confirm-boot, reboot) holds this lock
/// (<c>flock</c> on <see cref="HostPaths.LockFile"/> through <see cref="FileShare.None"/>), so a boot
/// unit and an Ansible run never interleave. A second operation waits, saying what it waits for
/// (the holder writes its pid, verb and start time beside the lock), and gives up after the
/// timeout with LG0540. The lock lives in <c>/run</c>: a crash or reboot never leaves it held.
/// </summary>
public sealed class HostLock : IDisposable
{
    /// <summary>How long an operation waits for another one by default.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(5);

    // Threads of one process queue on a gate per lock file (flock alone does not order them); the
    // lock a thread holds is remembered so that an operation made of others (load-installed loads)
    // takes it once.
    private static readonly Dictionary<string, SemaphoreSlim> Gates = new(StringComparer.Ordinal);
    [ThreadStatic] private static HostLock? t_held;
    [ThreadStatic] private static int t_depth;

    private readonly FileStream? _file;
    private readonly string _info;
    private readonly SemaphoreSlim? _gate;

    private HostLock(FileStream? file, string info, SemaphoreSlim? gate)
    {
        _file = file;
        _info = info;
        _gate = gate;
    }

    /// <summary>Takes the lock for <paramref name="verb"/>, waiting up to <paramref name="timeout"/>.</summary>
    /// <exception cref="LivegraftException">LG0540 (exit 3) when another operation still holds it at the timeout.</exception>
    public static HostLock Acquire(HostPaths paths, string verb, TimeSpan timeout, Action<string>? progress)
    {
        if (t_held is { } held && held._info == paths.LockFile + ".holder")
        {
            t_depth++;
            return new HostLock(null, held._info, null);
        }
        SemaphoreSlim gate;
        lock (Gates)
        {
            if (!Gates.TryGetValue(paths.LockFile, out gate!))
                Gates[paths.LockFile] = gate = new SemaphoreSlim(1, 1);
        }
        if (!gate.Wait(0))
        {
            progress?.Invoke($"{verb}: waiting for another operation of this process to finish");
            if (!gate.Wait(timeout))
                throw new LivegraftException(ExitCode.HostFailure, HostErrors.HostBusy,
                    $"another operation of this process still holds the host lock after {timeout.TotalSeconds:0}s", paths.LockFile);
        }
        try
        {
            var taken = Take(paths, verb, timeout, progress, gate);
            t_held = taken;
            t_depth = 1;
            return taken;
        }
        catch
        {
            gate.Release();
            throw;
        }
    }

    private static HostLock Take(HostPaths paths, string verb, TimeSpan timeout, Action<string>? progress, SemaphoreSlim gate)
    {
        var path = paths.LockFile;
        var info = path + ".holder";
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LivegraftException(ExitCode.HostFailure, HostErrors.HostBusy, $"cannot create the host lock: {e.Message}", path);
        }
        var clock = Stopwatch.StartNew();
        var announced = TimeSpan.MinValue;
        while (true)
        {
            try
            {
                var file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                var text = string.Create(CultureInfo.InvariantCulture,
                    $"pid={Environment.ProcessId} verb={verb} since={DateTime.UtcNow:yyyy-MM-ddTHH:mm:ssZ}\n");
                TryWrite(info, text);
                if (announced != TimeSpan.MinValue)
                    progress?.Invoke(new Diagnostic(HostErrors.WaitedForLock, Severity.Note,
                        $"waited {clock.Elapsed.TotalSeconds:0.0}s for another livegraft operation", path).ToString());
                return new HostLock(file, info, gate);
            }
            catch (IOException) when (clock.Elapsed < timeout)
            {
                // Held by another operation: say by whom every 10 s, then try again.
                if (announced == TimeSpan.MinValue || clock.Elapsed - announced >= TimeSpan.FromSeconds(10))
                {
                    announced = clock.Elapsed;
                    progress?.Invoke($"{verb}: waiting for {Holder(info)} to finish (up to {timeout.TotalSeconds:0}s)");
                }
                Thread.Sleep(200);
            }
            catch (IOException)
            {
                throw new LivegraftException(ExitCode.HostFailure, HostErrors.HostBusy,
                    $"{Holder(info)} still holds the host lock after {timeout.TotalSeconds:0}s; try again when it has finished", path);
            }
            catch (UnauthorizedAccessException e)
            {
                throw new LivegraftException(ExitCode.HostFailure, HostErrors.HostBusy, $"cannot open the host lock: {e.Message}", path);
            }
        }
    }

    /// <summary>Who holds the lock, as the holder described itself.</summary>
    private static string Holder(string info)
    {
        var text = LivepatchSysfs.ReadText(info);
        if (text is null)
            return "another livegraft operation";
        var fields = text.Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(f => f.Split('=', 2)).Where(kv => kv.Length == 2).ToDictionary(kv => kv[0], kv => kv[1], StringComparer.Ordinal);
        return $"'livegraft {fields.GetValueOrDefault("verb", "?")}' (pid {fields.GetValueOrDefault("pid", "?")}, since {fields.GetValueOrDefault("since", "?")})";
    }

    private static void TryWrite(string path, string text)
    {
        try
        {
            File.WriteAllText(path, text, new UTF8Encoding(false));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Only a description for whoever waits; the lock itself is what counts.
        }
    }

    /// <summary>Releases the lock (the outermost holder on this thread does; nested ones only count down).</summary>
    public void Dispose()
    {
        if (_file is null)
        {
            t_depth = Math.Max(0, t_depth - 1);
            return;
        }
        if (!ReferenceEquals(t_held, this))
            return; // released already
        t_held = null;
        t_depth = 0;
        try
        {
            File.Delete(_info);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Best effort: the next holder overwrites it.
        }
        _file.Dispose();
        _gate!.Release();
    }
}
