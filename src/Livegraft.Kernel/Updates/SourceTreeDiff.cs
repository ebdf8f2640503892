using System.Formats.Tar;
using System.IO.Compression;
using Livegraft.Kernel.Patches;

namespace Livegraft.Kernel.Updates;

/// <summary>One file that differs between a target's source and an update's.</summary>
/// <param name="Path">Tree-relative path.</param>
/// <param name="Kind">Modified, added or deleted.</param>
/// <param name="Ignored">Why the change is not code a live patch carries (debian/, documentation,
/// another architecture, build files), or null for code.</param>
/// <param name="Diff">The file's unified diff (<c>-p1</c> paths), for code files.</param>
public sealed record ChangedSourceFile(string Path, FileChangeKind Kind, string? Ignored, string? Diff = null);

/// <summary>The difference between two kernel sources: every changed file, with the unified diff of
/// each code file.</summary>
/// <param name="Files">Every changed file, code or not, by path.</param>
public sealed record SourceTreeDiff(IReadOnlyList<ChangedSourceFile> Files)
{
    /// <summary>The code files.</summary>
    public IEnumerable<ChangedSourceFile> Code => Files.Where(f => f.Ignored is null);

    /// <summary>The unified diff of <paramref name="files"/> (default: every code file), in path order.</summary>
    public string PatchOf(IEnumerable<ChangedSourceFile>? files = null) =>
        string.Concat((files ?? Code).OrderBy(f => f.Path, StringComparer.Ordinal).Select(f => f.Diff));

    /// <summary>
    /// Compares the target's source, as extracted in its prepared tree (<paramref name="treeRoot"/>,
    /// whose source files are exactly the target's tarball), with an update's source: a kernel source
    /// tarball (.tar, .tar.xz, .tar.gz, .tar.bz2, .tar.zst, read as a stream) or a directory.
    /// <paramref name="oldTarball"/>, when given, lists the target's own files, so that files the update
    /// deletes are seen too (the prepared tree also holds build output).
    /// </summary>
    public static SourceTreeDiff Compute(string treeRoot, string update, string? oldTarball, Action<string>? progress = null, CancellationToken cancellationToken = default)
    {
        progress?.Invoke($"comparing the target's source with {update}");
        var files = new List<ChangedSourceFile>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (path, content) in Read(update, withContent: true, cancellationToken))
        {
            seen.Add(path);
            var old = Path.Combine(treeRoot, path);
            var existing = File.Exists(old) ? File.ReadAllBytes(old) : null;
            if (existing is not null && existing.AsSpan().SequenceEqual(content))
                continue;
            var kind = existing is null ? FileChangeKind.Added : FileChangeKind.Modified;
            var ignored = IgnoredBecause(path);
            files.Add(new ChangedSourceFile(path, kind, ignored, ignored is null ? UnifiedDiff(path, existing, content) : null));
        }
        if (oldTarball is not null)
            foreach (var (path, _) in Read(oldTarball, withContent: false, cancellationToken))
            {
                if (seen.Contains(path))
                    continue;
                var ignored = IgnoredBecause(path);
                var before = Path.Combine(treeRoot, path);
                files.Add(new ChangedSourceFile(path, FileChangeKind.Deleted, ignored,
                    ignored is null && File.Exists(before) ? UnifiedDiff(path, File.ReadAllBytes(before), null) : null));
            }
        files.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        progress?.Invoke($"{files.Count} files differ, {files.Count(f => f.Ignored is null)} of them code");
        return new SourceTreeDiff(files);
    }

    /// <summary>Why a changed file is no code a live patch of an x86-64 kernel carries, or null.</summary>
    public static string? IgnoredBecause(string path)
    {
        var top = path.Split('/')[0];
        if (top == "debian")
            return "Debian packaging";
        if (top is "Documentation" or "LICENSES" || !path.Contains('/', StringComparison.Ordinal))
            return "documentation or top-level files";
        if (top is "tools" or "samples" or "scripts" or "usr")
            return "build tools and samples, not kernel code";
        if (top == "arch" && path.Split('/') is [_, var arch, ..] && arch != "x86")
            return "another architecture";
        if (path.EndsWith(".bpf.c", StringComparison.Ordinal) || path.EndsWith(".bpf.h", StringComparison.Ordinal))
            return "a BPF program (built for the BPF target and loaded as data, not kernel code)";
        return System.IO.Path.GetExtension(path) is ".c" or ".h" or ".S" or ".inc" ? null : "not C source (build, configuration or data files)";
    }

    /// <summary>The unified diff of one file (<c>--- /dev/null</c> for an added one, <c>+++ /dev/null</c>
    /// for a deleted one), as GNU diff writes it.</summary>
    private static string UnifiedDiff(string path, byte[]? before, byte[]? after)
    {
        var dir = Directory.CreateTempSubdirectory("livegraft-update-diff-").FullName;
        try
        {
            var a = System.IO.Path.Combine(dir, "a");
            var b = System.IO.Path.Combine(dir, "b");
            File.WriteAllBytes(a, before ?? []);
            File.WriteAllBytes(b, after ?? []);
            var r = ProcessRunner.Run(new ProcessSpec("diff", ["-u", "--label", before is null ? "/dev/null" : "a/" + path, "--label", after is null ? "/dev/null" : "b/" + path, a, b]));
            if (r.ExitCode > 1)
                throw new LivegraftException(ExitCode.HostFailure, KernelErrors.UpdateSourceInvalid, $"diff failed on {path}: {r.Stderr.Trim()}", path);
            return r.Stdout;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The regular files of a tarball or directory: tree-relative path (the top directory a
    /// source tarball puts everything under is dropped) and, when asked for, the content.</summary>
    private static IEnumerable<(string Path, byte[] Content)> Read(string source, bool withContent, CancellationToken cancellationToken)
    {
        if (Directory.Exists(source))
        {
            foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
            {
                cancellationToken.ThrowIfCancellationRequested();
                var rel = System.IO.Path.GetRelativePath(source, file).Replace('\\', '/');
                if (rel.StartsWith(".git/", StringComparison.Ordinal))
                    continue;
                yield return (rel, withContent ? File.ReadAllBytes(file) : []);
            }
            yield break;
        }
        if (!File.Exists(source))
            throw new LivegraftException(ExitCode.InvalidInput, KernelErrors.UpdateSourceInvalid, "no such source tarball or directory", source);
        var decompressed = Decompress(source, out var process);
        try
        {
            using var reader = new TarReader(decompressed);
            string? top = null;
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                TarEntry? entry;
                try
                {
                    entry = reader.GetNextEntry(copyData: false);
                }
                catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException)
                {
                    throw new LivegraftException(ExitCode.InvalidInput, KernelErrors.UpdateSourceInvalid, $"not a readable source tarball: {e.Message}", source);
                }
                if (entry is null)
                    break;
                if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile))
                    continue;
                var name = entry.Name.TrimStart('.', '/');
                var slash = name.IndexOf('/', StringComparison.Ordinal);
                top ??= slash > 0 ? name[..slash] : "";
                var rel = top.Length > 0 && name.StartsWith(top + "/", StringComparison.Ordinal) ? name[(top.Length + 1)..] : name;
                byte[] content = [];
                if (withContent && entry.DataStream is { } data)
                {
                    using var m = new MemoryStream((int)Math.Min(entry.Length, int.MaxValue));
                    data.CopyTo(m);
                    content = m.ToArray();
                }
                yield return (rel, content);
            }
        }
        finally
        {
            decompressed.Dispose();
            process?.Dispose();
        }
    }

    private static Stream Decompress(string tarball, out RunningProcess? process)
    {
        process = null;
        var file = File.OpenRead(tarball);
        Span<byte> magic = stackalloc byte[6];
        var n = file.Read(magic);
        file.Position = 0;
        var tool = magic[..n] switch
        {
            [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00] => "xz",
            [0x28, 0xb5, 0x2f, 0xfd, ..] => "zstd",
            [(byte)'B', (byte)'Z', (byte)'h', ..] => "bzip2",
            _ => null,
        };
        if (magic[..n] is [0x1f, 0x8b, ..])
            return new GZipStream(file, CompressionMode.Decompress);
        if (tool is null)
            return file;
        file.Dispose();
        process = ProcessRunner.Start(new ProcessSpec(tool, ["-dc", tarball]));
        return process.Stdout.BaseStream;
    }
}
