using System.Runtime.InteropServices;

namespace Livegraft.Host.Native;

/// <summary>
/// The libc entry points of kexec and boot safety: <c>kexec_file_load(2)</c> through
/// <c>syscall(2)</c> (glibc has no wrapper), <c>reboot(2)</c>, <c>sync(2)</c>, and <c>open</c> +
/// <c>fsync</c> of a directory, which .NET cannot do (a rename is durable only once its directory is).
/// </summary>
internal static partial class Libc
{
    /// <summary>x86-64 <c>__NR_kexec_file_load</c> (arch/x86/entry/syscalls/syscall_64.tbl).</summary>
    public const long SYS_kexec_file_load = 320;

    /// <summary><c>KEXEC_FILE_UNLOAD</c> (include/uapi/linux/kexec.h): drop a loaded image.</summary>
    public const ulong KEXEC_FILE_UNLOAD = 0x1;

    /// <summary><c>KEXEC_FILE_NO_INITRAMFS</c>: no initrd; the initrd fd is ignored.</summary>
    public const ulong KEXEC_FILE_NO_INITRAMFS = 0x4;

    /// <summary><c>RB_KEXEC</c> = <c>LINUX_REBOOT_CMD_KEXEC</c> (include/uapi/linux/reboot.h); glibc's
    /// <c>reboot(int)</c> adds the two magic numbers itself.</summary>
    public const int RB_KEXEC = 0x45584543;

    public const int EBADMSG = 74;
    public const int ENOMEM = 12;
    public const int EBADF = 9;
    public const int EFBIG = 27;
    public const int ENOMSG = 42;
    public const int E2BIG = 7;

    private const int O_RDONLY = 0;
    private const int O_DIRECTORY = 0x10000;
    private const int O_CLOEXEC = 0x80000;

    [LibraryImport(Lib, EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall5(long number, long a0, long a1, ulong a2, nint a3, ulong a4);

    [LibraryImport(Lib, EntryPoint = "reboot", SetLastError = true)]
    private static partial int RebootCall(int howto);

    [LibraryImport(Lib, EntryPoint = "sync")]
    public static partial void Sync();

    [LibraryImport(Lib, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport(Lib, EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport(Lib, EntryPoint = "close")]
    private static partial int Close(int fd);

    /// <summary><c>kexec_file_load(kernel_fd, initrd_fd, cmdline_len, cmdline, flags)</c>; returns 0 or an
    /// errno. The command line is passed with its terminating NUL, counted in <c>cmdline_len</c>
    /// (kimage_file_prepare_segments checks the last byte is NUL).</summary>
    public static unsafe int KexecFileLoad(int kernelFd, int initrdFd, string? commandLine, ulong flags)
    {
        if (commandLine is null)
            return Syscall5(SYS_kexec_file_load, kernelFd, initrdFd, 0, 0, flags) == 0 ? 0 : Marshal.GetLastPInvokeError();
        var bytes = System.Text.Encoding.UTF8.GetBytes(commandLine + "\0");
        fixed (byte* p = bytes)
            return Syscall5(SYS_kexec_file_load, kernelFd, initrdFd, (ulong)bytes.Length, (nint)p, flags) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    /// <summary><c>reboot(RB_KEXEC)</c>: boots the loaded kexec image. Returns only on failure, with the errno.</summary>
    public static int RebootKexec() => RebootCall(RB_KEXEC) == 0 ? 0 : Marshal.GetLastPInvokeError();

    /// <summary>fsyncs a directory, so that the renames and creations in it survive a crash; returns 0 or an errno.</summary>
    public static int FsyncDirectory(string path)
    {
        var fd = Open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return Marshal.GetLastPInvokeError();
        var r = Fsync(fd) == 0 ? 0 : Marshal.GetLastPInvokeError();
        return Close(fd) == 0 || r != 0 ? r : Marshal.GetLastPInvokeError();
    }
}
