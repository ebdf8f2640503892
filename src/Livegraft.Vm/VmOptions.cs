using Livegraft.Kernel;

namespace Livegraft.Vm;

/// <summary>A host file to place in the guest's initramfs.</summary>
/// <param name="HostPath">File on the host.</param>
/// <param name="GuestPath">Absolute path in the guest.</param>
/// <param name="Mode">Permission bits; null keeps the host file's.</param>
public sealed record GuestFile(string HostPath, string GuestPath, uint? Mode = null);

/// <summary>What to boot and what to put in the guest. Defaults match docs/vm.md.</summary>
public sealed class VmOptions
{
    /// <summary>Creates options for <paramref name="kernel"/>, whose image must be extracted (<see cref="KernelTarget.EnsureImage"/>).</summary>
    public VmOptions(KernelTarget kernel) => Kernel = kernel;

    /// <summary>The kernel release to boot; its modules feed <see cref="Modules"/>.</summary>
    public KernelTarget Kernel { get; }

    /// <summary>Modules to include (with their dependencies); <c>modprobe</c> them in the guest.</summary>
    public IList<string> Modules { get; } = [];

    /// <summary>Host files to include in the initramfs.</summary>
    public IList<GuestFile> Files { get; } = [];

    /// <summary>Host executables (with their shared libraries) to include, keyed by guest path.</summary>
    public IDictionary<string, string> Executables { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>The NativeAOT <c>livegraft</c> binary to install as <c>/usr/bin/livegraft</c>, if any.</summary>
    public string? LivegraftBinary { get; set; }

    /// <summary>Raw disk images attached as virtio disks (<c>/dev/vda</c>, <c>/dev/vdb</c>, ...);
    /// when any is given the virtio and ext4 modules are included and virtio_blk is loaded at boot.</summary>
    public IList<string> Disks { get; } = [];

    /// <summary>
    /// Kernels the guest can kexec into: each one's image, and the session's own, lands in
    /// <c>/boot/vmlinuz-&lt;release&gt;</c> with the session's initramfs as <c>/boot/initrd.img-&lt;release&gt;</c>,
    /// on one more virtio disk (after <see cref="Disks"/>) that <c>/init</c> mounts at <c>/boot</c>. The
    /// initramfs then carries every module of <see cref="Modules"/> for these releases too. Their images
    /// must be extracted (<see cref="KernelTarget.EnsureImage"/>).
    /// </summary>
    public IList<KernelTarget> BootImages { get; } = [];

    /// <summary>Let a guest reboot go through a full machine reset (firmware, then the same
    /// <c>-kernel</c>) instead of ending QEMU: QEMU runs without <c>-no-reboot</c>. A panic then
    /// reboots the guest instead of being reported at once (LG0702), so only benchmarks use it.</summary>
    public bool FirmwareReboot { get; set; }

    /// <summary>Raw disk images attached read-only after <see cref="Disks"/> and the boot disk (QEMU
    /// <c>readonly=on</c>; several guests may share one). Mount them with <c>mount -o ro</c>.</summary>
    public IList<string> ReadOnlyDisks { get; } = [];

    /// <summary>When set, the guest gets a network card on QEMU's user network with <c>restrict=on</c> (it cannot
    /// connect out) and runs an SSH server (dropbear) reachable only at <c>127.0.0.1:SshPort</c> on the host.</summary>
    public int? SshPort { get; set; }

    /// <summary>Public keys (<c>authorized_keys</c> lines) that may log in as root over <see cref="SshPort"/>.</summary>
    public IList<string> AuthorizedKeys { get; } = [];

    /// <summary>Kernel parameters appended after the defaults.</summary>
    public string? KernelParameters { get; set; }

    /// <summary>Guest memory.</summary>
    public int MemoryMiB { get; set; } = 1024;

    /// <summary>Guest CPUs; the build machines have two cores shared by everyone, so keep this at 1 or 2.</summary>
    public int Cpus { get; set; } = 2;

    /// <summary>QEMU <c>-cpu</c> model (e.g. <c>max</c>); null keeps QEMU's default <c>qemu64</c>, on which
    /// NativeAOT output runs (checked: .NET 10 needs no SSE4.2 there).</summary>
    public string? Cpu { get; set; }

    /// <summary>How long to wait for <c>/init</c>'s ready marker.</summary>
    public TimeSpan BootTimeout { get; set; } = TimeSpan.FromSeconds(120);

    /// <summary>Default per-command timeout of <see cref="VmSession.Run"/>.</summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(120);

    /// <summary>Also append the console log to this host file (kept after the session ends).</summary>
    public string? ConsoleLogPath { get; set; }

    /// <summary>Where the session's temporary directory (initramfs) is created; default the system temp directory.</summary>
    public string? TempDirectory { get; set; }

    /// <summary>The QEMU binary.</summary>
    public string Qemu { get; set; } = "qemu-system-x86_64";

    /// <summary>Last chance to change the initramfs before it is written.</summary>
    public Action<InitramfsBuilder>? ConfigureInitramfs { get; set; }
}

/// <summary>What one guest command did.</summary>
/// <param name="ExitCode">The command's exit status (meaningless when <paramref name="TimedOut"/>; then 124).</param>
/// <param name="Output">Its stdout and stderr, interleaved as written, without the protocol's markers.</param>
/// <param name="TimedOut">True when the guest killed it at the timeout.</param>
/// <param name="Elapsed">Host wall time from sending to the end marker.</param>
public sealed record VmCommandResult(int ExitCode, string Output, bool TimedOut, TimeSpan Elapsed);

/// <summary>What a command that may reboot the guest did (<see cref="VmSession.RunRebooting"/>).</summary>
/// <param name="Rebooted">True when the guest came back up: the ready marker of the expected nonce appeared.</param>
/// <param name="ExitCode">The command's exit status when it ended without rebooting; null when it rebooted.</param>
/// <param name="Output">What the command printed before it ended or the guest went down.</param>
/// <param name="Elapsed">Host wall time from sending the command to its end or to the new boot's ready marker.</param>
public sealed record VmRebootResult(bool Rebooted, int? ExitCode, string Output, TimeSpan Elapsed);
