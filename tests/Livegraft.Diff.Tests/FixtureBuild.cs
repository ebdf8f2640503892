using System.Collections.Concurrent;
using Livegraft.Elf;

namespace Livegraft.Diff.Tests;

/// <summary>Compiles the C fixtures with kernel-like flags, once per case and test run.</summary>
public static class FixtureBuild
{
    /// <summary>The flags kbuild passes for x86-64 that shape what the differ sees (fentry calls,
    /// __mcount_loc, one section per function and object, kernel code model).</summary>
    public static readonly string[] KernelFlags =
    [
        "-O2", "-mfentry", "-pg", "-mrecord-mcount", "-ffunction-sections", "-fdata-sections", "-mcmodel=kernel",
        "-fno-pic", "-fno-asynchronous-unwind-tables", "-mno-red-zone", "-fno-common", "-c",
    ];

    private static readonly ConcurrentDictionary<string, Lazy<string>> Objects = new(StringComparer.Ordinal);

    /// <summary>Scratch folder of this test run, removed when the process exits.</summary>
    public static string TempDirectory { get; } = CreateTemp();

    /// <summary>Folder holding the fixture sources (copied next to the test assembly).</summary>
    public static string FixturesDirectory => Path.Combine(AppContext.BaseDirectory, "Fixtures");

    private static string CreateTemp()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"livegraft-diff-tests-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                if (Environment.GetEnvironmentVariable("LIVEGRAFT_KEEP_TEST_FILES") is null)
                    Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        };
        return dir;
    }

    /// <summary>Path of <c>&lt;case&gt;/&lt;variant&gt;.o</c>, compiled on first use with the
    /// case's extra flags and object transforms (<see cref="ObjectTransforms"/>).</summary>
    public static string ObjectPath(string caseName, string variant, IReadOnlyList<string>? cflags = null, IReadOnlyList<string>? transforms = null) =>
        Objects.GetOrAdd($"{caseName}/{variant}", _ => new Lazy<string>(() => ObjectTransforms.Apply(Compile(caseName, variant, cflags ?? []), variant, transforms ?? []))).Value;

    /// <summary>Reads the compiled object.</summary>
    public static ElfFile Read(string caseName, string variant, IReadOnlyList<string>? cflags = null, IReadOnlyList<string>? transforms = null) =>
        ElfFile.Read(ObjectPath(caseName, variant, cflags, transforms));

    private static string Compile(string caseName, string variant, IReadOnlyList<string> cflags)
    {
        var source = Path.Combine(FixturesDirectory, caseName, variant + ".c");
        Assert.True(File.Exists(source), $"missing fixture {source}");
        // Both versions are compiled as the same file name from the same kind of folder, as kbuild
        // compiles the tree before and after the patch: __FILE__ and the STT_FILE symbol must match.
        var dir = Path.Combine(TempDirectory, caseName, variant);
        Directory.CreateDirectory(dir);
        File.Copy(source, Path.Combine(dir, "unit.c"), overwrite: true);
        var args = new List<string>(KernelFlags) { "-I", FixturesDirectory, "unit.c", "-o", "unit.o" };
        args.InsertRange(0, cflags);
        var r = Run("gcc", args, dir);
        Assert.True(r.ExitCode == 0, $"gcc failed on {caseName}/{variant}.c:\n{r.Stderr}");
        return Path.Combine(dir, "unit.o");
    }

    /// <summary>Runs a host tool with the C locale.</summary>
    public static ProcessResult Run(string file, IEnumerable<string> args, string? workingDirectory = null)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try
        {
            return ProcessRunner.Run(new ProcessSpec(file, [.. args]) { WorkingDirectory = workingDirectory }, timeout.Token);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"{file} {string.Join(' ', args)} timed out");
            throw;
        }
    }
}
