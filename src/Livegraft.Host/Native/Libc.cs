using System.Runtime.InteropServices;

namespace Livegraft.Host.Native;

/// <summary>
/// The few libc entry points the host side needs. Module loading goes through <c>syscall(2)</c>
/// because glibc has no <c>finit_module</c> wrapper on every release we meet, and musl and glibc
/// both export <c>syscall</c>. Only x86-64 numbers are known (arch/x86/entry/syscalls/syscall_64.tbl).
/// </summary>
internal static partial class Libc
{
    private const string Lib = "libc";

    /// <summary>x86-64 <c>__NR_finit_module</c>.</summary>
    public const long SYS_finit_module = 313;

    /// <summary>x86-64 <c>__NR_delete_module</c>.</summary>
    public const long SYS_delete_module = 176;

    /// <summary><c>O_NONBLOCK</c>: delete_module fails with EWOULDBLOCK instead of waiting for users.</summary>
    public const int O_NONBLOCK = 0x800;

    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EINTR = 4;
    public const int ENOEXEC = 8;
    public const int EAGAIN = 11;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int EINVAL = 22;
    public const int ENOKEY = 126;
    public const int EKEYREJECTED = 129;
    public const int ENOSYS = 38;

    [LibraryImport(Lib, EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall3(long number, long a0, nint a1, long a2);

    [LibraryImport(Lib, EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall2(long number, nint a0, long a1);

    [LibraryImport(Lib, EntryPoint = "geteuid")]
    public static partial uint GetEffectiveUserId();

    [LibraryImport(Lib, EntryPoint = "klogctl", SetLastError = true)]
    private static partial int KlogCtl(int type, nint buffer, int length);

    /// <summary><c>SYSLOG_ACTION_READ_ALL</c>: read the kernel log ring buffer without consuming it.</summary>
    private const int SyslogActionReadAll = 3;

    /// <summary>The kernel log ring buffer's text (<c>klogctl(SYSLOG_ACTION_READ_ALL)</c>, as dmesg reads
    /// it); null when the caller may not read it (dmesg_restrict without CAP_SYSLOG).</summary>
    public static unsafe string? KernelLog()
    {
        var buffer = new byte[1 << 20];
        fixed (byte* p = buffer)
        {
            var n = KlogCtl(SyslogActionReadAll, (nint)p, buffer.Length);
            return n < 0 ? null : System.Text.Encoding.UTF8.GetString(buffer, 0, n);
        }
    }

    [LibraryImport(Lib, EntryPoint = "strerror")]
    private static partial nint StrError(int errnum);

    /// <summary><c>finit_module(fd, params, flags)</c>; returns 0 or an errno.</summary>
    public static unsafe int FinitModule(int fd, string parameters, int flags)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(parameters + "\0");
        fixed (byte* p = bytes)
        {
            var r = Syscall3(SYS_finit_module, fd, (nint)p, flags);
            return r == 0 ? 0 : Marshal.GetLastPInvokeError();
        }
    }

    /// <summary><c>delete_module(name, flags)</c>; returns 0 or an errno.</summary>
    public static unsafe int DeleteModule(string name, int flags)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(name + "\0");
        fixed (byte* p = bytes)
        {
            var r = Syscall2(SYS_delete_module, (nint)p, flags);
            return r == 0 ? 0 : Marshal.GetLastPInvokeError();
        }
    }

    /// <summary>Symbolic name and text of an errno, e.g. <c>ENOEXEC (Exec format error)</c>.</summary>
    public static string Describe(int errno)
    {
        var name = errno switch
        {
            EPERM => "EPERM", ENOENT => "ENOENT", EINTR => "EINTR", ENOEXEC => "ENOEXEC", EAGAIN => "EWOULDBLOCK",
            EBUSY => "EBUSY", EEXIST => "EEXIST", EINVAL => "EINVAL", ENOKEY => "ENOKEY", EKEYREJECTED => "EKEYREJECTED", ENOSYS => "ENOSYS",
            EBADMSG => "EBADMSG", ENOMEM => "ENOMEM", EBADF => "EBADF", EFBIG => "EFBIG", ENOMSG => "ENOMSG", E2BIG => "E2BIG",
            _ => "errno " + errno,
        };
        string? text = null;
        try
        {
            text = Marshal.PtrToStringUTF8(StrError(errno));
        }
        catch (DllNotFoundException)
        {
        }
        return text is null ? name : $"{name} ({text})";
    }
}
