using Microsoft.Win32.SafeHandles;

namespace Livegraft.Symbols;

/// <summary>Receives one line of a <see cref="TextSource"/>: its bytes without the <c>\n</c>, and the
/// offset of its first byte.</summary>
internal delegate void LineVisitor(ReadOnlySpan<byte> line, long offset);

/// <summary>
/// The bytes of a line-oriented symbol file (a <c>/proc/kallsyms</c> dump, <c>Module.symvers</c>),
/// either in memory or left in the file. Files are streamed through a small buffer when scanned and
/// read back at an offset (<c>pread</c>) when an entry is asked for, so a process holds an index of
/// the file, not the file.
/// </summary>
internal abstract class TextSource
{
    private const int ChunkSize = 64 * 1024;

    /// <summary>Size in bytes.</summary>
    public abstract long Length { get; }

    /// <summary>Reads up to <paramref name="buffer"/>.Length bytes at <paramref name="offset"/>; returns how many.</summary>
    public abstract int Read(long offset, Span<byte> buffer);

    /// <summary>Keeps <paramref name="bytes"/> (not copied).</summary>
    public static TextSource InMemory(byte[] bytes) => new MemoryText(bytes);

    /// <summary>Leaves <paramref name="path"/> on disk; <paramref name="errorId"/> names the diagnostic
    /// raised if it changes while the index is in use. A file whose bytes cannot be read back at an
    /// offset (a procfs file such as <c>/proc/kallsyms</c>: size 0, generated on each read) is read
    /// once into memory instead.</summary>
    public static TextSource OnDisk(string path, string errorId) =>
        new FileInfo(path) is { Length: 0 } || path.StartsWith("/proc/", StringComparison.Ordinal)
            ? new MemoryText(File.ReadAllBytes(path))
            : new FileText(path, errorId);

    /// <summary>Number of <c>\n</c> bytes, to size per-line arrays exactly before a scan.</summary>
    public virtual int CountNewlines()
    {
        var buffer = new byte[ChunkSize];
        var count = 0;
        long offset = 0;
        int read;
        while ((read = Read(offset, buffer)) > 0)
        {
            count += buffer.AsSpan(0, read).Count((byte)'\n');
            offset += read;
        }
        return count;
    }

    /// <summary>Calls <paramref name="visit"/> for every line, in order (the last one may lack its <c>\n</c>).</summary>
    public virtual void ForEachLine(LineVisitor visit)
    {
        var buffer = new byte[ChunkSize];
        int filled = 0;
        long bufferOffset = 0;
        while (true)
        {
            var read = Read(bufferOffset + filled, buffer.AsSpan(filled));
            filled += read;
            var span = buffer.AsSpan(0, filled);
            var position = 0;
            int newline;
            while ((newline = span[position..].IndexOf((byte)'\n')) >= 0)
            {
                visit(span.Slice(position, newline), bufferOffset + position);
                position += newline + 1;
            }
            if (read == 0)
            {
                if (position < filled)
                    visit(span[position..], bufferOffset + position);
                return;
            }
            // Keep the unfinished line; a line longer than the buffer grows it.
            span[position..].CopyTo(buffer);
            bufferOffset += position;
            filled -= position;
            if (filled == buffer.Length)
                Array.Resize(ref buffer, buffer.Length * 2);
        }
    }

    /// <summary>True when the <paramref name="expected"/>.Length bytes at <paramref name="offset"/> are
    /// exactly <paramref name="expected"/>.</summary>
    public bool BytesEqual(long offset, ReadOnlySpan<byte> expected)
    {
        Span<byte> buffer = expected.Length <= 256 ? stackalloc byte[expected.Length] : new byte[expected.Length];
        return Read(offset, buffer) == expected.Length && buffer.SequenceEqual(expected);
    }

    /// <summary>The <paramref name="count"/> bytes at <paramref name="offset"/>.</summary>
    public byte[] ReadBytes(long offset, int count)
    {
        var bytes = new byte[count];
        if (Read(offset, bytes) != count)
            throw new InvalidOperationException("symbol file is shorter than when it was indexed");
        return bytes;
    }

    /// <summary>The line containing <paramref name="offset"/>, without its <c>\n</c>, read in a window that
    /// grows until both ends are found.</summary>
    public byte[] LineAt(long offset)
    {
        for (var window = 256; ; window *= 4)
        {
            var start = Math.Max(0, offset - window);
            var bytes = new byte[(int)Math.Min(Length - start, 2L * window)];
            var n = Read(start, bytes);
            var span = bytes.AsSpan(0, n);
            var at = (int)(offset - start);
            var begin = span[..at].LastIndexOf((byte)'\n') + 1;
            var end = span[at..].IndexOf((byte)'\n');
            var beginKnown = begin > 0 || start == 0;
            var endKnown = end >= 0 || start + n == Length;
            if (beginKnown && endKnown)
                return span[begin..(end >= 0 ? at + end : n)].ToArray();
        }
    }

    private sealed class MemoryText(byte[] bytes) : TextSource
    {
        public override long Length => bytes.Length;

        public override int Read(long offset, Span<byte> buffer)
        {
            if (offset >= bytes.Length)
                return 0;
            var n = (int)Math.Min(buffer.Length, bytes.Length - offset);
            bytes.AsSpan((int)offset, n).CopyTo(buffer);
            return n;
        }

        public override int CountNewlines() => bytes.AsSpan().Count((byte)'\n');

        public override void ForEachLine(LineVisitor visit)
        {
            var span = bytes.AsSpan();
            var position = 0;
            while (position < span.Length)
            {
                var newline = span[position..].IndexOf((byte)'\n');
                var end = newline < 0 ? span.Length : position + newline;
                visit(span[position..end], position);
                position = end + 1;
            }
        }
    }

    /// <summary>A file read through one handle, opened on first use and closed by its finalizer with the
    /// index that owns it. Length and modification time are checked before every read: a file rewritten
    /// after it was indexed is an error, not wrong symbols (a file replaced by rename keeps being read
    /// through the handle, which still names the indexed one).</summary>
    private sealed class FileText : TextSource
    {
        private readonly string _path;
        private readonly string _errorId;
        private readonly long _length;
        private readonly DateTime _written;
        private SafeFileHandle? _handle;

        public FileText(string path, string errorId)
        {
            _path = path;
            _errorId = errorId;
            _handle = File.OpenHandle(path);
            _length = RandomAccess.GetLength(_handle);
            _written = File.GetLastWriteTimeUtc(_handle);
        }

        public override long Length => _length;

        public override int Read(long offset, Span<byte> buffer)
        {
            var handle = Handle();
            var total = 0;
            while (total < buffer.Length && offset + total < _length)
            {
                var n = RandomAccess.Read(handle, buffer[total..], offset + total);
                if (n == 0)
                    break;
                total += n;
            }
            return total;
        }

        /// <summary>The open handle, after checking (fstat, cheap next to a read) that the file is still
        /// the one indexed.</summary>
        private SafeFileHandle Handle()
        {
            try
            {
                var handle = _handle is { IsClosed: false } open ? open : _handle = File.OpenHandle(_path);
                if (RandomAccess.GetLength(handle) != _length || File.GetLastWriteTimeUtc(handle) != _written)
                    throw new LivegraftException(ExitCode.InvalidInput, _errorId, "the file changed while it was in use", _path);
                return handle;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new LivegraftException(ExitCode.InvalidInput, _errorId, $"cannot read: {e.Message}", _path);
            }
        }
    }
}
