using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using Livegraft.Kernel;

namespace Livegraft.Elf.Tests;

/// <summary>Paths to real inputs: the reference kernel's image package, its prepared tree and
/// objects compiled at test time. Everything expensive is built once and cached in Livegraft's cache.</summary>
internal static class Fixtures
{
    private static readonly Lazy<KernelTarget> Target = new(() =>
    {
        KernelTarget.Reference.EnsureImage();
        return KernelTarget.Reference;
    });

    private static readonly Lazy<IReadOnlyList<string>> KernelObjectList = new(BuildKernelObjects);
    private static readonly Lazy<string> VmlinuxPath = new(ExtractVmlinux);
    private static readonly object CompileLock = new();

    /// <summary>The directories of the prepared tree whose objects the round-trip tests cover.</summary>
    public static readonly string[] KernelDirectories = ["fs/proc", "kernel/sched"];

    public static string ModulesDirectory() => Target.Value.ModulesDirectory;

    /// <summary>Folder of this test project's sources (fixtures and golden files live there).</summary>
    public static string ProjectDirectory([CallerFilePath] string path = "") => Path.GetDirectoryName(path)!;

    /// <summary>Scratch folder for this test run.</summary>
    public static string TempDirectory { get; } = CreateTemp();

    private static string CreateTemp()
    {
        var dir = Path.Combine(Path.GetTempPath(), "livegraft-elf-tests-" + Environment.ProcessId);
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>Where test-time compiled objects are cached across runs.</summary>
    public static string ObjectCache
    {
        get
        {
            var dir = Path.Combine(KernelTarget.CacheRoot, "elf-tests");
            Directory.CreateDirectory(dir);
            return dir;
        }
    }

    /// <summary>Every .o in <see cref="KernelDirectories"/> of the prepared tree, compiling them once if missing.
    /// Skips the test when the tree has not been prepared on this machine.</summary>
    public static IReadOnlyList<string> KernelObjects()
    {
        var tree = KernelTarget.Reference.TreeDirectory;
        if (!File.Exists(Path.Combine(tree, ".config")))
            Assert.Skip($"no prepared kernel tree at {tree}");
        return KernelObjectList.Value;
    }

    private static List<string> BuildKernelObjects()
    {
        var tree = KernelTarget.Reference.TreeDirectory;
        // built-in.a is the last thing kbuild makes in a directory: when present, every object is.
        if (!KernelDirectories.All(d => File.Exists(Path.Combine(tree, d, "built-in.a"))))
        {
            var args = new List<string> { "-C", tree, "-j2", "CC=gcc-12", "KERNELRELEASE=" + KernelTarget.ReferenceRelease };
            args.AddRange(KernelDirectories.Select(d => d + "/"));
            var r = Run("make", args, timeout: TimeSpan.FromMinutes(30));
            Assert.True(r.ExitCode == 0, $"make failed ({r.ExitCode}):\n{r.Stderr}");
        }
        // Other builds share the tree and rewrite objects while we test: read a private snapshot.
        var snapshot = Path.Combine(TempDirectory, "kernel-objects");
        var copies = new List<string>();
        foreach (var source in KernelDirectories.SelectMany(d => Directory.EnumerateFiles(Path.Combine(tree, d), "*.o", SearchOption.AllDirectories)))
        {
            var copy = Path.Combine(snapshot, Path.GetRelativePath(tree, source));
            Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
            try
            {
                File.Copy(source, copy, overwrite: true);
                copies.Add(copy);
            }
            catch (FileNotFoundException)
            {
                // being rebuilt by someone else right now
            }
        }
        copies.Sort(StringComparer.Ordinal);
        return copies;
    }

    /// <summary>The snapshot of a kernel object such as <c>fs/proc/cmdline.o</c> (another fs/proc object if
    /// that one was being rebuilt when the snapshot was taken).</summary>
    public static string KernelObject(string relative)
    {
        var objects = KernelObjects();
        return objects.FirstOrDefault(p => p.EndsWith("/" + relative, StringComparison.Ordinal))
            ?? objects.First(p => p.Contains("/fs/proc/", StringComparison.Ordinal));
    }

    /// <summary>The uncompressed vmlinux ELF from the image's bzImage, extracted once into the cache.</summary>
    public static string Vmlinux() => VmlinuxPath.Value;

    private static string ExtractVmlinux()
    {
        var target = Target.Value;
        var path = Path.Combine(target.CacheDirectory, "vmlinux");
        if (File.Exists(path))
            return path;
        var image = File.ReadAllBytes(target.KernelImage);
        // The payload is an XZ stream somewhere after the real-mode setup code (boot protocol:
        // payload_offset); searching for the stream magic is what scripts/extract-vmlinux does.
        ReadOnlySpan<byte> magic = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
        var at = image.AsSpan(0x200).IndexOf(magic);
        Assert.True(at >= 0, "no XZ stream in " + target.KernelImage);
        var xz = path + ".xz.tmp-" + Environment.ProcessId;
        var tmp = path + ".tmp-" + Environment.ProcessId;
        try
        {
            File.WriteAllBytes(xz, image[(0x200 + at)..]);
            var r = ProcessRunner.Run(new ProcessSpec("xz", ["-dc", "--single-stream", xz]) { BinaryStdout = true });
            Assert.True(r.ExitCode == 0, "xz failed: " + r.Stderr);
            File.WriteAllBytes(tmp, r.StdoutBytes);
            var head = new byte[4];
            using (var f = File.OpenRead(tmp))
                f.ReadExactly(head);
            Assert.True(head is [0x7f, (byte)'E', (byte)'L', (byte)'F'], "the bzImage payload is not an ELF file");
            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            File.Delete(xz);
            File.Delete(tmp);
        }
        return path;
    }

    /// <summary>Runs a tool, capturing its output; fails the test on timeout.</summary>
    public static ProcessResult Run(string file, IEnumerable<string> args, string? workingDirectory = null, TimeSpan? timeout = null)
    {
        using var limit = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(5));
        try
        {
            return ProcessRunner.Run(new ProcessSpec(file, [.. args]) { WorkingDirectory = workingDirectory }, limit.Token);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"{file} {string.Join(' ', args)} timed out");
            throw;
        }
    }

    /// <summary>Compiles C source with gcc-12 into an object cached by content, and returns its path.
    /// The source is written as <paramref name="fileName"/> and compiled from its own folder, so the
    /// STT_FILE symbol and DWARF name do not depend on where the test runs.</summary>
    public static string CompileC(string source, string fileName, params string[] flags)
    {
        var key = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\0', [source, fileName, .. flags]))))[..16];
        var obj = Path.Combine(ObjectCache, $"{Path.GetFileNameWithoutExtension(fileName)}-{key}.o");
        lock (CompileLock)
        {
            if (File.Exists(obj))
                return obj;
            var dir = Path.Combine(TempDirectory, "cc-" + key);
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, fileName), source);
            var tmp = obj + ".tmp-" + Environment.ProcessId;
            var r = Run("gcc-12", [.. flags, "-c", fileName, "-o", tmp], dir, TimeSpan.FromMinutes(5));
            Assert.True(r.ExitCode == 0, $"gcc-12 failed:\n{r.Stderr}");
            File.Move(tmp, obj, overwrite: true);
            return obj;
        }
    }

    /// <summary>Writes <paramref name="bytes"/> to a fresh file in the scratch folder.</summary>
    public static string WriteTemp(string name, byte[] bytes)
    {
        var path = Path.Combine(TempDirectory, $"{Guid.NewGuid():N}-{name}");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Asserts that readelf -a -W prints no warning or error for <paramref name="path"/>.</summary>
    public static void AssertReadelfClean(string path, string args = "-a")
    {
        var r = Run("readelf", [args, "-W", path]);
        Assert.True(r.ExitCode == 0 && r.Stderr.Length == 0, $"readelf {args} -W {path} exited {r.ExitCode}:\n{r.Stderr}");
        Assert.DoesNotContain("Warning", r.Stdout, StringComparison.Ordinal);
    }

    /// <summary>Asserts that <c>ld -r</c> links <paramref name="path"/> silently.</summary>
    public static void AssertLinks(string path)
    {
        var output = path + ".ld-r.o";
        var r = Run("ld", ["-r", "-o", output, path]);
        Assert.True(r.ExitCode == 0 && r.Stderr.Length == 0, $"ld -r {path} exited {r.ExitCode}:\n{r.Stderr}");
    }

    /// <summary>Asserts that LibObjectFile reads <paramref name="bytes"/> without error diagnostics.</summary>
    public static void AssertLibObjectFileReads(byte[] bytes, string what)
    {
        using var stream = new MemoryStream(bytes);
        var ok = LibObjectFile.Elf.ElfFile.TryRead(stream, out _, out var diagnostics);
        var errors = diagnostics is null ? "" : string.Join("\n", diagnostics.Messages.Select(m => m.ToString()));
        Assert.True(ok && diagnostics is { HasErrors: false }, $"LibObjectFile rejects {what}:\n{errors}");
    }

    /// <summary>Decodes every relocation section, so writing re-encodes them.</summary>
    public static int DecodeAllRelocations(ElfFile elf)
    {
        var n = 0;
        foreach (var r in elf.Sections.OfType<ElfRelocationSection>())
            n += r.Relocations.Count;
        return n;
    }
}
