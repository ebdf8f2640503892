using System.Text;

namespace Livegraft.Vm;

/// <summary>
/// Writes a cpio archive in the "new ASCII" (<c>newc</c>, magic <c>070701</c>) format, the only
/// one the kernel's initramfs unpacker accepts (<c>Documentation/driver-api/early-userspace/buffer-format.rst</c>).
/// </summary>
/// <remarks>
/// Every header is 110 ASCII bytes: the magic and thirteen 8-digit hex fields. The name (with its
/// NUL) is padded so the data starts on a 4-byte boundary, and the data is padded to 4 bytes too.
/// The archive ends with an entry named <c>TRAILER!!!</c>. Times are written as 0 so the same
/// inputs always give the same bytes.
/// </remarks>
public sealed class CpioWriter
{
    /// <summary>File type bits of <c>st_mode</c> (<c>S_IFMT</c> and friends).</summary>
    public const uint S_IFMT = 0xF000, S_IFDIR = 0x4000, S_IFREG = 0x8000, S_IFLNK = 0xA000, S_IFCHR = 0x2000;

    private const string Magic = "070701";
    private const string Trailer = "TRAILER!!!";
    private readonly Stream _out;
    private uint _nextInode = 1;
    private long _position;

    /// <summary>Creates a writer appending to <paramref name="output"/>.</summary>
    public CpioWriter(Stream output) => _out = output;

    /// <summary>Writes a directory entry.</summary>
    public void WriteDirectory(string name, uint mode = 0x1ED /* 0755 */) =>
        WriteEntry(name, S_IFDIR | (mode & 0xFFF), nlink: 2, ReadOnlySpan<byte>.Empty);

    /// <summary>Writes a regular file from memory.</summary>
    public void WriteFile(string name, ReadOnlySpan<byte> data, uint mode = 0x1A4 /* 0644 */) =>
        WriteEntry(name, S_IFREG | (mode & 0xFFF), nlink: 1, data);

    /// <summary>Writes a regular file streamed from <paramref name="data"/>, which must be <paramref name="length"/> bytes long.</summary>
    public void WriteFile(string name, Stream data, long length, uint mode = 0x1A4)
    {
        if (length > uint.MaxValue)
            throw new LivegraftException(ExitCode.InvalidInput, VmErrors.CpioTooLarge, $"{name} is too large for a newc cpio entry ({length} bytes)");
        WriteHeader(name, S_IFREG | (mode & 0xFFF), nlink: 1, (uint)length, 0, 0);
        var copied = CopyExactly(data, length);
        if (copied != length)
            throw new LivegraftException(ExitCode.HostFailure, VmErrors.ShortRead, $"{name}: expected {length} bytes, read {copied}");
        Pad();
    }

    /// <summary>Writes a symbolic link whose target is stored as the entry's data.</summary>
    public void WriteSymlink(string name, string target) =>
        WriteEntry(name, S_IFLNK | 0x1FF, nlink: 1, Encoding.UTF8.GetBytes(target));

    /// <summary>Writes a character device node (e.g. <c>dev/console</c>, 5:1).</summary>
    public void WriteCharDevice(string name, uint major, uint minor, uint mode = 0x180 /* 0600 */)
    {
        WriteHeader(name, S_IFCHR | (mode & 0xFFF), nlink: 1, 0, major, minor);
        Pad();
    }

    /// <summary>Writes the trailer entry that ends the archive.</summary>
    public void WriteTrailer()
    {
        _nextInode = 0;
        WriteEntry(Trailer, 0, nlink: 1, ReadOnlySpan<byte>.Empty);
    }

    private void WriteEntry(string name, uint mode, uint nlink, ReadOnlySpan<byte> data)
    {
        WriteHeader(name, mode, nlink, (uint)data.Length, 0, 0);
        Write(data);
        Pad();
    }

    private void WriteHeader(string name, uint mode, uint nlink, uint size, uint rdevMajor, uint rdevMinor)
    {
        name = name.TrimStart('/');
        if (name.Length == 0)
            name = ".";
        var nameBytes = Encoding.UTF8.GetBytes(name);
        var header = new StringBuilder(110);
        header.Append(Magic);
        uint ino = name == Trailer ? 0 : _nextInode++;
        foreach (var field in new uint[] { ino, mode, 0, 0, nlink, 0, size, 0, 0, rdevMajor, rdevMinor, (uint)nameBytes.Length + 1, 0 })
            header.Append(field.ToString("x8"));
        Write(Encoding.ASCII.GetBytes(header.ToString()));
        Write(nameBytes);
        Write([0]);
        Pad();
    }

    private long CopyExactly(Stream source, long length)
    {
        var buffer = new byte[81920];
        long total = 0;
        while (total < length)
        {
            var n = source.Read(buffer, 0, (int)Math.Min(buffer.Length, length - total));
            if (n == 0)
                break;
            Write(buffer.AsSpan(0, n));
            total += n;
        }
        return total;
    }

    private void Write(ReadOnlySpan<byte> bytes)
    {
        _out.Write(bytes);
        _position += bytes.Length;
    }

    private void Pad()
    {
        var pad = (int)((4 - (_position & 3)) & 3);
        if (pad > 0)
            Write(stackalloc byte[pad]);
    }
}
