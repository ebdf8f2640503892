namespace Livegraft.Vm;

/// <summary>Diagnostic ids of the QEMU targets (LG0700–LG0799); docs/diagnostics.md lists them all.</summary>
public static class VmErrors
{
    /// <summary>The host's busybox cannot go into a guest (missing applet list, dynamically linked).</summary>
    public const string BusyboxUnusable = "LG0700";
    /// <summary>The guest did not become ready in time.</summary>
    public const string BootTimeout = "LG0701";
    /// <summary>QEMU exited, or the VM is not running.</summary>
    public const string VmExited = "LG0702";
    /// <summary>The guest stopped answering while running a command.</summary>
    public const string GuestUnresponsive = "LG0703";
    /// <summary>A kernel module (or one it needs) cannot be resolved.</summary>
    public const string ModuleUnresolved = "LG0704";
    /// <summary>The kernel image or its modules directory is missing.</summary>
    public const string KernelFilesMissing = "LG0705";
    /// <summary>A host executable for the guest is missing or its libraries cannot be found.</summary>
    public const string ExecutableUnusable = "LG0706";
    /// <summary>A disk image cannot be made.</summary>
    public const string DiskImage = "LG0707";
    /// <summary>Writing a file into the running guest failed.</summary>
    public const string PutFileFailed = "LG0708";
    /// <summary>A guest command that had to succeed failed or timed out.</summary>
    public const string GuestCommandFailed = "LG0709";
    /// <summary>A host file for the initramfs does not exist.</summary>
    public const string InitramfsFileMissing = "LG0710";
    /// <summary>A guest command ran out of time and was killed (<c>livegraft vm</c>).</summary>
    public const string CommandTimedOut = "LG0712";
    /// <summary>A guest user entry is invalid or already exists.</summary>
    public const string BadUser = "LG0713";
    /// <summary>A guest path is not absolute, or has spaces or <c>..</c>.</summary>
    public const string BadGuestPath = "LG0714";
    /// <summary>A file is too large for a newc cpio entry.</summary>
    public const string CpioTooLarge = "LG0715";
    /// <summary>A file changed size while it was copied into the initramfs.</summary>
    public const string ShortRead = "LG0716";
}
