
namespace Livegraft.Host.Tests;

/// <summary>Locations the tests use, and a temporary host tree for the parsing helpers.</summary>
internal static class TestPaths
{
    /// <summary>tests/Livegraft.Host.Tests/Fixtures in the source tree.</summary>
    public static string FixtureSources { get; } = FindUp(Path.Combine("tests", "Livegraft.Host.Tests", "Fixtures"));

    /// <summary>The repository root.</summary>
    public static string RepoRoot { get; } = Path.GetFullPath(Path.Combine(FixtureSources, "..", "..", ".."));

    /// <summary>The NativeAOT <c>livegraft</c> the guest runs: <c>$LIVEGRAFT_BIN</c>, else what
    /// <c>make publish</c> writes.</summary>
    public static string NativeLivegraft =>
        Environment.GetEnvironmentVariable("LIVEGRAFT_BIN") is { Length: > 0 } bin ? bin : Path.Combine(RepoRoot, "artifacts", "livegraft", "livegraft");

    private static string FindUp(string relative)
    {
        for (var dir = AppContext.BaseDirectory; dir is not null; dir = Path.GetDirectoryName(dir))
        {
            var candidate = Path.Combine(dir, relative);
            if (Directory.Exists(candidate))
                return candidate;
        }
        throw new InvalidOperationException($"cannot find {relative} above {AppContext.BaseDirectory}");
    }
}

/// <summary>A scratch directory deleted on dispose.</summary>
internal sealed class TempTree : IDisposable
{
    public TempTree() => Root = Directory.CreateTempSubdirectory("livegraft-host-test-").FullName;

    public string Root { get; }

    public HostPaths Paths => new(Path.Combine(Root, "sys"), Path.Combine(Root, "proc"), Path.Combine(Root, "state"), Path.Combine(Root, "units"))
    {
        Keys = Path.Combine(Root, "keys"),
        Cache = Path.Combine(Root, "cache"),
        Run = Path.Combine(Root, "run"),
    };

    /// <summary>Writes a file (creating directories) and returns its path.</summary>
    public string Write(string relative, string text)
    {
        var path = Path.Combine(Root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }

    /// <summary>Writes bytes (creating directories) and returns the path.</summary>
    public string Write(string relative, byte[] bytes)
    {
        var path = Path.Combine(Root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    public void Dispose() => Directory.Delete(Root, recursive: true);
}

/// <summary>
/// The fixture modules of Fixtures/, built once per test run with kbuild against the reference
/// kernel's headers (about 10 s) into a temporary directory.
/// </summary>
public sealed class BuiltModules
{
    /// <summary>The reference release the fixtures are built for.</summary>
    public const string Release = "6.1.0-56-amd64";

    private static readonly Lazy<BuiltModules> Instance = new(() => new BuiltModules());

    private BuiltModules()
    {
        var headers = "/usr/src/linux-headers-" + Release;
        if (!System.IO.Directory.Exists(headers))
        {
            Error = $"kernel headers {headers} not installed";
            return;
        }
        Directory = System.IO.Directory.CreateTempSubdirectory("livegraft-host-fixtures-").FullName;
        foreach (var file in System.IO.Directory.GetFiles(TestPaths.FixtureSources))
            File.Copy(file, Path.Combine(Directory, Path.GetFileName(file)));
        var make = ProcessRunner.Run(new ProcessSpec("make", ["-s", "-C", headers, "M=" + Directory, "modules"]));
        if (make.ExitCode != 0)
            Error = "kbuild failed: " + make.Stderr;
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                System.IO.Directory.Delete(Directory, recursive: true);
            }
            catch (IOException)
            {
            }
        };
    }

    /// <summary>The built modules; a build failure fails the test (VM tests are never skipped).</summary>
    public static BuiltModules Get()
    {
        var m = Instance.Value;
        if (m.Error is not null)
            Assert.Fail(m.Error);
        return m;
    }

    public string Directory { get; } = "";

    public string? Error { get; }

    /// <summary>Path of a built module, e.g. <c>lg-sample.ko</c>.</summary>
    public string this[string file] => Path.Combine(Directory, file);
}
