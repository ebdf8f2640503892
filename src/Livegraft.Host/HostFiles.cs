namespace Livegraft.Host;

/// <summary>File writes that never leave a half-written file under the target name.</summary>
internal static class HostFiles
{
    /// <summary>Writes to a temp file in the same directory, flushes it to disk, renames it over the
    /// target (rename(2) is atomic within a file system) and flushes the directory, so the new file
    /// survives a crash right after. Failures throw <paramref name="errorId"/> (exit 3).</summary>
    public static void WriteAtomic(string path, ReadOnlySpan<byte> bytes, UnixFileMode? mode = null, string errorId = "LG0614")
    {
        var temp = path + ".tmp-" + Environment.ProcessId;
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, Share = FileShare.None };
            if (mode is { } m && !OperatingSystem.IsWindows())
                options.UnixCreateMode = m;
            using (var stream = new FileStream(temp, options))
            {
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
            Native.Libc.FsyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try
            {
                File.Delete(temp);
            }
            catch (Exception cleanup) when (cleanup is IOException or UnauthorizedAccessException)
            {
                // The original error is the one to report.
            }
            throw new LivegraftException(ExitCode.HostFailure, errorId, "cannot write: " + e.Message, path);
        }
    }
}
