namespace Livegraft.Host;

/// <summary>
/// Where the host's kernel interfaces and Livegraft's own state live. The defaults are the real
/// paths; tests point the roots at a directory tree they build to exercise the parsers.
/// </summary>
/// <param name="Sys">Mount point of sysfs, normally <c>/sys</c>.</param>
/// <param name="Proc">Mount point of procfs, normally <c>/proc</c>.</param>
/// <param name="State">Root of installed patches, normally <c>/var/lib/livegraft</c>.</param>
/// <param name="SystemdUnits">Directory for the boot unit, normally <c>/etc/systemd/system</c>.</param>
/// <param name="Boot">Where installed kernel images live (<c>vmlinuz-&lt;release&gt;</c>, <c>initrd.img-&lt;release&gt;</c>), normally <c>/boot</c>.</param>
/// <param name="Keys">Trusted public keys of patch repositories, normally <c>/etc/livegraft/keys</c> (docs/fleet.md).</param>
/// <param name="Cache">Verified downloads of repository patches, normally <c>/var/cache/livegraft</c>.</param>
/// <param name="Run">Runtime state that must not outlive a boot (the host lock), normally <c>/run</c>.</param>
public sealed record HostPaths(string Sys = "/sys", string Proc = "/proc", string State = "/var/lib/livegraft", string SystemdUnits = "/etc/systemd/system", string Boot = "/boot",
    string Keys = "/etc/livegraft/keys", string Cache = "/var/cache/livegraft", string Run = "/run")
{
    /// <summary><c>/run/livegraft/lock</c>: held by whoever changes the host's patches (<see cref="HostLock"/>).</summary>
    public string LockFile => Path.Combine(Run, "livegraft", "lock");

    /// <summary>The real host.</summary>
    public static HostPaths Default { get; } = new();

    /// <summary><c>/sys/kernel/livepatch</c>: one directory per registered patch (livepatch.rst, "Sysfs").</summary>
    public string LivepatchRoot => Path.Combine(Sys, "kernel", "livepatch");

    /// <summary>The sysfs directory of one patch.</summary>
    public string PatchDirectory(string name) => Path.Combine(LivepatchRoot, name);

    /// <summary><c>/sys/module/&lt;name&gt;</c>.</summary>
    public string ModuleDirectory(string name) => Path.Combine(Sys, "module", name);

    /// <summary><c>/sys/kernel/notes</c>: the running kernel's ELF notes, holding its GNU build id.</summary>
    public string KernelNotes => Path.Combine(Sys, "kernel", "notes");

    /// <summary><c>/proc/modules</c>: loaded modules, most recently loaded first.</summary>
    public string Modules => Path.Combine(Proc, "modules");

    /// <summary><c>/proc/sys/kernel/osrelease</c>: what <c>uname -r</c> prints.</summary>
    public string OsRelease => Path.Combine(Proc, "sys", "kernel", "osrelease");

    /// <summary><c>/proc/sys/kernel/tainted</c>: the taint mask.</summary>
    public string Tainted => Path.Combine(Proc, "sys", "kernel", "tainted");

    /// <summary>What <c>update</c> last did and what it replaced (for <c>rollback</c>): <c>/var/lib/livegraft/update.json</c>.</summary>
    public string UpdateRecord => Path.Combine(State, "update.json");

    /// <summary><c>/proc/cmdline</c>.</summary>
    public string CommandLine => Path.Combine(Proc, "cmdline");

    /// <summary><c>/proc/sys/kernel/random/boot_id</c>: a UUID fresh at every boot, kexec included.</summary>
    public string BootId => Path.Combine(Proc, "sys", "kernel", "random", "boot_id");

    /// <summary><c>/proc/uptime</c>: seconds since boot.</summary>
    public string Uptime => Path.Combine(Proc, "uptime");

    /// <summary><c>/sys/kernel/kexec_loaded</c>: exists with CONFIG_KEXEC_CORE; 1 when an image is loaded.</summary>
    public string KexecLoaded => Path.Combine(Sys, "kernel", "kexec_loaded");

    /// <summary><c>/proc/sys/kernel/kexec_load_disabled</c>: 1 forbids both kexec syscalls until the next boot.</summary>
    public string KexecLoadDisabled => Path.Combine(Proc, "sys", "kernel", "kexec_load_disabled");

    /// <summary><c>/sys/kernel/security/lockdown</c> (securityfs): the lockdown mode in brackets.</summary>
    public string Lockdown => Path.Combine(Sys, "kernel", "security", "lockdown");

    /// <summary><c>/proc/1/comm</c>: the name of PID 1 (<c>systemd</c> or not).</summary>
    public string InitComm => Path.Combine(Proc, "1", "comm");
}
