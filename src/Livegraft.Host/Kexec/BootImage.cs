using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Livegraft.Host.Kexec;

/// <summary>
/// An x86 bzImage as the boot protocol describes it (Documentation/x86/boot.rst, "The real-mode
/// kernel header"): the release and version string the kernel itself records in its setup header
/// (<c>kernel_version</c>, what <c>file</c> prints), and whether <c>kexec_file_load</c>'s bzImage64
/// loader can take it (arch/x86/kernel/kexec-bzimage64.c, <c>bzImage64_probe</c>).
/// </summary>
/// <param name="Path">The image file.</param>
/// <param name="Release">First word of <c>kernel_version</c>, e.g. <c>6.1.0-57-amd64</c>.</param>
/// <param name="Version">The whole <c>kernel_version</c> string.</param>
/// <param name="Protocol">Boot protocol version, e.g. <c>2.15</c>.</param>
/// <param name="Size">File size in bytes.</param>
public sealed record BootImage(string Path, string Release, string Version, string Protocol, long Size)
{
    private const int SetupSectsOffset = 0x1F1;
    private const int BootFlagOffset = 0x1FE;
    private const int HeaderOffset = 0x202;
    private const int VersionOffset = 0x206;
    private const int KernelVersionOffset = 0x20E;
    private const int LoadFlagsOffset = 0x211;
    private const int XLoadFlagsOffset = 0x236;
    private const byte LoadedHigh = 0x01;
    private const ushort XlfKernel64 = 0x01;
    private const ushort XlfCanBeLoadedAbove4G = 0x02;

    /// <summary>Reads and checks the header: LG0640 when the file is missing, LG0641 when it is not a
    /// bzImage that the 64-bit kexec loader accepts (protocol 2.12+, 64-bit entry, loadable above 4 GiB).</summary>
    public static BootImage Read(string path)
    {
        byte[] head;
        long size;
        try
        {
            using var f = File.OpenRead(path);
            size = f.Length;
            head = new byte[(int)Math.Min(size, 64 * 1024)];
            f.ReadExactly(head);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new LivegraftException(ExitCode.InvalidInput, KexecErrors.ImageMissing, "kernel image not found", path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LivegraftException(ExitCode.InvalidInput, KexecErrors.ImageMissing, "cannot read kernel image: " + e.Message, path);
        }
        return Parse(path, head, size);
    }

    /// <summary>Parses the first bytes of an image (at least the setup sectors).</summary>
    public static BootImage Parse(string path, ReadOnlySpan<byte> head, long size)
    {
        LivegraftException Bad(string why) => new(ExitCode.InvalidInput, KexecErrors.NotBootable, "not a bootable x86-64 bzImage: " + why, path);
        if (head.Length < XLoadFlagsOffset + 2)
            throw Bad("file too short for a boot header");
        if (BinaryPrimitives.ReadUInt16LittleEndian(head[BootFlagOffset..]) != 0xAA55 || !head.Slice(HeaderOffset, 4).SequenceEqual("HdrS"u8))
            throw Bad("no 'HdrS' setup header at 0x202");
        var protocol = BinaryPrimitives.ReadUInt16LittleEndian(head[VersionOffset..]);
        var protocolText = string.Create(CultureInfo.InvariantCulture, $"{protocol >> 8}.{protocol & 0xFF:D2}");
        if (protocol < 0x020C)
            throw Bad($"boot protocol {protocolText} is older than 2.12 (no xloadflags)");
        var xload = BinaryPrimitives.ReadUInt16LittleEndian(head[XLoadFlagsOffset..]);
        if ((head[LoadFlagsOffset] & LoadedHigh) == 0 || (xload & XlfKernel64) == 0 || (xload & XlfCanBeLoadedAbove4G) == 0)
            throw Bad("no 64-bit entry point (xloadflags XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G)");
        var setupSects = head[SetupSectsOffset] == 0 ? 4 : head[SetupSectsOffset];
        var pointer = BinaryPrimitives.ReadUInt16LittleEndian(head[KernelVersionOffset..]);
        var at = pointer + 0x200;
        if (pointer == 0 || at >= head.Length || at >= (setupSects + 1) * 512)
            throw Bad("no kernel_version string in the setup header");
        var end = head[at..].IndexOf((byte)0);
        var version = Encoding.ASCII.GetString(head.Slice(at, end < 0 ? Math.Min(256, head.Length - at) : end));
        var release = version.Split(' ', 2)[0];
        if (release.Length == 0)
            throw Bad("empty kernel_version string");
        return new BootImage(path, release, version, protocolText, size);
    }
}

/// <summary>Kernel release strings: the flavour and the ordering of <c>&lt;upstream&gt;-&lt;abi&gt;-&lt;flavour&gt;</c>.</summary>
public static class KernelRelease
{
    /// <summary>
    /// The flavour: what follows the upstream version once the ABI number is dropped, e.g.
    /// <c>amd64</c> for <c>6.1.0-56-amd64</c>, <c>cloud-amd64</c> for <c>6.1.0-57-cloud-amd64</c>,
    /// <c>generic</c> for Ubuntu's <c>5.15.0-91-generic</c>. Purely numeric parts are ABI numbers.
    /// Empty for a bare upstream release such as <c>6.1.0</c>.
    /// </summary>
    public static string Flavour(string release)
    {
        var parts = release.Split('-');
        return string.Join('-', parts.Skip(1).Where(p => p.Length == 0 || !p.All(char.IsAsciiDigit)));
    }

    /// <summary>Orders releases by upstream version (numerically, part by part), then ABI number, then text.</summary>
    public static int Compare(string a, string b)
    {
        static long[] Key(string r)
        {
            var parts = r.Split('-');
            var numbers = parts[0].Split('.').Select(Number).ToList();
            while (numbers.Count < 3)
                numbers.Add(0);
            numbers.Add(parts.Skip(1).FirstOrDefault(p => p.Length > 0 && p.All(char.IsAsciiDigit)) is { } abi ? Number(abi) : -1);
            return [.. numbers];
        }
        static long Number(string s) => long.TryParse(new string(s.TakeWhile(char.IsAsciiDigit).ToArray()), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0;
        var (ka, kb) = (Key(a), Key(b));
        for (var i = 0; i < Math.Min(ka.Length, kb.Length); i++)
        {
            var c = ka[i].CompareTo(kb[i]);
            if (c != 0)
                return c;
        }
        var length = ka.Length.CompareTo(kb.Length);
        return length != 0 ? length : string.CompareOrdinal(a, b);
    }
}
