namespace Livegraft.Kernel.Packages;

/// <summary>
/// Fetches Debian packages with <c>apt-get download name=version</c> and extracts them
/// (<c>dpkg-deb -x</c>) into Livegraft's cache, keyed by version; nothing is installed on the
/// machine. Every entry is built in a private work directory and renamed into place under a
/// <see cref="CacheLock"/>, so concurrent processes and threads neither fetch twice nor see half
/// an entry, and an interrupted run leaves only a work directory the next one removes.
/// </summary>
public static class PackageCache
{
    /// <summary>Returns <paramref name="final"/>, building it first with <paramref name="build"/>
    /// (given an empty work directory that becomes <paramref name="final"/>) unless
    /// <paramref name="complete"/> says it is there. Serialised by the lock file <paramref name="lockFile"/>.</summary>
    public static string Ensure(string final, string lockFile, string what, Func<string, bool> complete,
        Action<string> build, Action<string>? progress = null, CancellationToken cancellationToken = default)
    {
        if (complete(final))
            return final;
        using var _ = CacheLock.Acquire(lockFile, what, progress, cancellationToken);
        if (complete(final))
            return final; // fetched by whoever held the lock before us
        var parent = Path.GetDirectoryName(final)!;
        Directory.CreateDirectory(parent);
        // Work directories of runs that died while holding this lock (we hold it now: nobody uses them).
        foreach (var stale in Directory.GetDirectories(parent, Path.GetFileName(final) + ".tmp-*"))
            Directory.Delete(stale, recursive: true);
        var work = CacheLock.WorkDirectoryFor(final);
        Directory.CreateDirectory(work);
        try
        {
            build(work);
            if (Directory.Exists(final))
                Directory.Delete(final, recursive: true); // incomplete: complete() said no
            Directory.Move(work, final);
        }
        finally
        {
            if (Directory.Exists(work))
                Directory.Delete(work, recursive: true);
        }
        return final;
    }

    /// <summary>Downloads <paramref name="package"/> into <paramref name="scratch"/> and extracts
    /// it into <paramref name="root"/> (several packages may share one root); the .deb is deleted.</summary>
    /// <exception cref="LivegraftException">LG0301 when apt-get or dpkg-deb fails.</exception>
    public static void DownloadInto(DebianPackage package, string root, string scratch, Action<string>? progress, CancellationToken cancellationToken = default)
    {
        var deb = Download(package.Spec, scratch, progress, cancellationToken);
        progress?.Invoke($"extracting {Path.GetFileName(deb)}");
        Directory.CreateDirectory(root);
        ProcessRunner.RunChecked(new ProcessSpec("dpkg-deb", ["-x", deb, root]) { WorkingDirectory = scratch }, KernelErrors.DownloadFailed,
            $"extracting {Path.GetFileName(deb)}", cancellationToken: cancellationToken);
        File.Delete(deb);
    }

    /// <summary>Runs <c>apt-get download <paramref name="spec"/></c> in the empty directory
    /// <paramref name="directory"/>; returns the .deb.</summary>
    public static string Download(string spec, string directory, Action<string>? progress, CancellationToken cancellationToken = default)
    {
        progress?.Invoke($"downloading {spec}");
        Directory.CreateDirectory(directory);
        foreach (var old in Directory.GetFiles(directory, "*.deb"))
            File.Delete(old);
        ProcessRunner.RunChecked(new ProcessSpec("apt-get", ["download", spec]) { WorkingDirectory = directory }, KernelErrors.DownloadFailed,
            $"apt-get download {spec}", cancellationToken: cancellationToken);
        return Directory.GetFiles(directory, "*.deb").SingleOrDefault()
            ?? throw new LivegraftException(ExitCode.HostFailure, KernelErrors.DownloadFailed, $"apt-get download {spec} produced no .deb");
    }

    /// <summary>Decompresses every <c>.ko.xz</c>, <c>.ko.zst</c> and <c>.ko.gz</c> under
    /// <paramref name="directory"/> in place (<c>CONFIG_MODULE_COMPRESS_*</c> images), leaving <c>.ko</c> files.</summary>
    public static void DecompressModules(string directory, Action<string>? progress)
    {
        if (!Directory.Exists(directory))
            return;
        foreach (var (extension, tool) in new[] { (".ko.xz", new[] { "xz", "-d", "-f" }), (".ko.zst", ["zstd", "-d", "-f", "-q", "--rm"]), (".ko.gz", ["gzip", "-d", "-f"]) })
        {
            var files = Directory.EnumerateFiles(directory, "*" + extension, SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
            if (files.Count == 0)
                continue;
            progress?.Invoke($"decompressing {files.Count} {extension} modules");
            foreach (var batch in files.Chunk(256))
                ProcessRunner.RunChecked(new ProcessSpec(tool[0], [.. tool[1..], .. batch]), KernelErrors.DownloadFailed, $"decompressing {extension} modules");
        }
    }

    /// <summary>The source tarball of a <c>linux-source-X.Y</c> package version, fetched once into
    /// <c>&lt;cache&gt;/sources/&lt;name&gt;_&lt;version&gt;/</c> and shared by every release built from it.</summary>
    /// <exception cref="LivegraftException">LG0301 when the download fails, LG0307 when the
    /// package holds no single <c>/usr/src/*.tar.*</c>.</exception>
    public static string SourceTarball(DebianPackage source, Action<string>? progress = null, CancellationToken cancellationToken = default)
    {
        var dir = Path.Combine(KernelTarget.CacheRoot, "sources", source.CacheKey);
        Ensure(dir, dir + ".lock", source.Spec, d => Tarball(d) is not null, work =>
        {
            var scratch = Path.Combine(work, ".download");
            var root = Path.Combine(scratch, "root");
            DownloadInto(source, root, scratch, progress, cancellationToken);
            var src = Path.Combine(root, "usr", "src");
            var tarball = (Directory.Exists(src) ? Directory.GetFiles(src, "*.tar.*") : []) is [var one] ? one
                : throw new LivegraftException(ExitCode.InvalidInput, KernelErrors.SourceOverrideInvalid,
                    "the package holds no single /usr/src/*.tar.* source tarball", source.Spec);
            File.Move(tarball, Path.Combine(work, Path.GetFileName(tarball)));
            Directory.Delete(scratch, recursive: true);
        }, progress, cancellationToken);
        return Tarball(dir)!;
    }

    private static string? Tarball(string dir) =>
        Directory.Exists(dir) && Directory.GetFiles(dir, "*.tar.*") is [var one] ? one : null;
}
