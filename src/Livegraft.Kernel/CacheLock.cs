namespace Livegraft.Kernel;

/// <summary>
/// An exclusive lock on a cache file shared by every Livegraft process and thread: an in-process
/// gate per path (threads of one process queue, e.g. xunit test classes running in parallel) plus
/// an open with <see cref="FileShare.None"/> on the file itself (.NET takes a <c>flock</c> on it,
/// so other processes queue; the kernel drops it when a process dies).
/// </summary>
internal sealed class CacheLock : IDisposable
{
    private static readonly Dictionary<string, SemaphoreSlim> Gates = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _gate;
    private readonly FileStream _file;

    private CacheLock(SemaphoreSlim gate, FileStream file)
    {
        _gate = gate;
        _file = file;
    }

    /// <summary>Waits for and takes the lock on <paramref name="path"/> (created when missing);
    /// <paramref name="what"/> names what is being waited for in progress messages.</summary>
    public static CacheLock Acquire(string path, string what, Action<string>? progress, CancellationToken cancellationToken)
    {
        path = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        SemaphoreSlim gate;
        lock (Gates)
        {
            if (!Gates.TryGetValue(path, out gate!))
                Gates[path] = gate = new SemaphoreSlim(1, 1);
        }
        if (!gate.Wait(0, cancellationToken))
        {
            progress?.Invoke($"waiting for another thread of this process to release {what}");
            gate.Wait(cancellationToken);
        }
        try
        {
            var announced = false;
            while (true)
            {
                try
                {
                    return new CacheLock(gate, new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
                }
                catch (IOException)
                {
                    if (!announced)
                        progress?.Invoke($"waiting for another Livegraft process to release {what} ({path})");
                    announced = true;
                    Task.Delay(500, cancellationToken).GetAwaiter().GetResult();
                }
            }
        }
        catch
        {
            gate.Release();
            throw;
        }
    }

    /// <summary>A work directory beside <paramref name="final"/> that no other process or thread
    /// uses: <c>final.tmp-&lt;pid&gt;-&lt;random&gt;</c>.</summary>
    public static string WorkDirectoryFor(string final) =>
        $"{final}.tmp-{Environment.ProcessId}-{System.Security.Cryptography.RandomNumberGenerator.GetHexString(6, lowercase: true)}";

    public void Dispose()
    {
        _file.Dispose();
        _gate.Release();
    }
}
