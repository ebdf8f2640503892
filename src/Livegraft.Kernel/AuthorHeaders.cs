using System.Reflection;

namespace Livegraft.Kernel;

/// <summary>
/// The patch-author headers (<c>livegraft.h</c>, <c>kpatch-macros.h</c>, <c>kpatch-syscall.h</c>,
/// <c>linux/livepatch_helpers.h</c>), shipped as embedded resources from
/// <c>src/Livegraft.Kernel/Module/include</c> and extracted for the compiler's <c>-I</c>.
/// </summary>
public static class AuthorHeaders
{
    /// <summary>Logical-name prefix of the embedded headers (see the project file).</summary>
    public const string ResourcePrefix = "Livegraft.Kernel.include.";

    /// <summary>Relative paths of the headers, e.g. <c>linux/livepatch_helpers.h</c>.</summary>
    public static IReadOnlyList<string> Names { get; } =
        [.. typeof(AuthorHeaders).Assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal))
            .Select(n => n[ResourcePrefix.Length..])
            .Order(StringComparer.Ordinal)];

    /// <summary>The text of one header.</summary>
    public static string Read(string name)
    {
        using var s = typeof(AuthorHeaders).Assembly.GetManifestResourceStream(ResourcePrefix + name)
            ?? throw new ArgumentException($"no embedded header {name}", nameof(name));
        using var r = new StreamReader(s);
        return r.ReadToEnd();
    }

    /// <summary>Extracts the headers into <c>&lt;cacheRoot&gt;/include/&lt;content hash&gt;</c> (once;
    /// atomically) and returns that directory. The hash in the path means a changed header never
    /// meets a stale copy, and the changed <c>-I</c> makes kbuild recompile.</summary>
    public static string Extract(string? cacheRoot = null)
    {
        cacheRoot ??= KernelTarget.CacheRoot;
        var contents = Names.Select(n => (Name: n, Bytes: System.Text.Encoding.UTF8.GetBytes(Read(n)))).ToList();
        var all = new List<byte>();
        foreach (var (name, bytes) in contents)
        {
            all.AddRange(System.Text.Encoding.UTF8.GetBytes(name + "\0"));
            all.AddRange(bytes);
        }
        var hash = Sha256Hash.HashHex(all.ToArray())[..16];
        var dir = Path.Combine(cacheRoot, "include", hash);
        if (Directory.Exists(dir))
            return dir;
        var tmp = dir + ".tmp-" + Environment.ProcessId + "-" + Environment.CurrentManagedThreadId;
        if (Directory.Exists(tmp))
            Directory.Delete(tmp, recursive: true);
        foreach (var (name, bytes) in contents)
        {
            var path = Path.Combine(tmp, name);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllBytes(path, bytes);
        }
        try
        {
            Directory.Move(tmp, dir);
        }
        catch (IOException) when (Directory.Exists(dir))
        {
            Directory.Delete(tmp, recursive: true); // another process won the race with identical content
        }
        return dir;
    }

    /// <summary>The assembly version recorded in built modules.</summary>
    internal static string LivegraftVersion =>
        typeof(AuthorHeaders).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? typeof(AuthorHeaders).Assembly.GetName().Version?.ToString() ?? "0";
}
