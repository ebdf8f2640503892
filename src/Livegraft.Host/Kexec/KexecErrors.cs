namespace Livegraft.Host.Kexec;

/// <summary>Diagnostic ids of kexec reboots and boot safety (LG0640–LG0669, docs/kexec.md).</summary>
public static class KexecErrors
{
    /// <summary>The kernel image (or the release's <c>/boot/vmlinuz-&lt;release&gt;</c>) does not exist or cannot be read.</summary>
    public const string ImageMissing = "LG0640";
    /// <summary>The file is not an x86-64 bzImage the kexec loader accepts.</summary>
    public const string NotBootable = "LG0641";
    /// <summary>The image is of another flavour than the running kernel (amd64 vs cloud-amd64).</summary>
    public const string FlavourMismatch = "LG0642";
    /// <summary>No installed image of the running kernel's flavour under <c>/boot</c>.</summary>
    public const string NoImageOfFlavour = "LG0643";
    /// <summary>The running kernel has no kexec support (no CONFIG_KEXEC_CORE, or no kexec_file_load: ENOSYS).</summary>
    public const string NoKexecSupport = "LG0644";
    /// <summary>kexec is disabled by policy: <c>kernel.kexec_load_disabled=1</c> (EPERM until the next boot).</summary>
    public const string KexecDisabled = "LG0645";
    /// <summary>Lockdown or signature enforcement refused the image (EPERM under lockdown, EKEYREJECTED, ENOKEY, EBADMSG).</summary>
    public const string SignatureRefused = "LG0646";
    /// <summary><c>kexec_file_load</c> failed otherwise (ENOEXEC, EINVAL, ENOMEM, EBUSY, ...).</summary>
    public const string LoadFailed = "LG0647";
    /// <summary>The initrd does not exist or cannot be read.</summary>
    public const string InitrdMissing = "LG0648";
    /// <summary>The new kernel's command line is unusable (too long, a newline or NUL in it).</summary>
    public const string BadCommandLine = "LG0649";
    /// <summary>The reboot itself failed (<c>systemctl kexec</c> or <c>reboot(2)</c>); the image was unloaded.</summary>
    public const string RebootFailed = "LG0650";
    /// <summary>Note: the image is the running release (a fast reboot into the same kernel).</summary>
    public const string SameRelease = "LG0651";
    /// <summary>The image's own release (its setup header) is not the release asked for or named in its file name.</summary>
    public const string ReleaseMismatch = "LG0652";
    /// <summary>Warning: no initrd was found for the image; it boots without one.</summary>
    public const string NoInitrd = "LG0653";
    /// <summary>Warning: the reboot record for <c>status</c> cannot be written (the reboot goes on).</summary>
    public const string RecordNotWritten = "LG0654";

    /// <summary>An installed patch is quarantined: the boot that last loaded it ended before it was confirmed healthy; not loaded.</summary>
    public const string Quarantined = "LG0655";
    /// <summary>Note: a patch's boot marker was released: the previous boot crashed while loading another patch.</summary>
    public const string MarkerReleased = "LG0656";
    /// <summary><c>install</c> refused: the same build is quarantined; <c>--force</c> tries it again.</summary>
    public const string InstallQuarantined = "LG0657";
    /// <summary>The boot marker cannot be written to persistent storage, so the patch is not loaded.</summary>
    public const string MarkerNotWritten = "LG0658";
    /// <summary><c>confirm-boot</c>: the kernel oopsed or soft-locked up after the patches loaded; they are quarantined.</summary>
    public const string Unhealthy = "LG0659";
    /// <summary>Note: <c>install</c> lifted a quarantine (<c>--force</c>, or a different build of the patch).</summary>
    public const string QuarantineLifted = "LG0660";
}
