using System.Globalization;
using Livegraft.Host.Native;

namespace Livegraft.Host.Kexec;

/// <summary>What <c>livegraft reboot --kexec</c> was asked for.</summary>
public sealed record KexecRequest
{
    /// <summary>A release name (its <c>/boot/vmlinuz-&lt;release&gt;</c>) or an image path; null: the newest
    /// installed image of the running kernel's flavour.</summary>
    public string? Kernel { get; init; }

    /// <summary>The initrd; null: <c>/boot/initrd.img-&lt;release&gt;</c> when it exists.</summary>
    public string? Initrd { get; init; }

    /// <summary>Command line text: the whole new command line, or appended to the running one with
    /// <see cref="ReuseCommandLine"/>; null: the running command line.</summary>
    public string? Append { get; init; }

    /// <summary>Start from the running command line (the default when <see cref="Append"/> is null).</summary>
    public bool ReuseCommandLine { get; init; }

    /// <summary>Resolve and check everything, load nothing, reboot nothing.</summary>
    public bool DryRun { get; init; }
}

/// <summary>Where the new kernel's command line came from.</summary>
public enum CommandLineSource
{
    /// <summary>The running kernel's (<c>/proc/cmdline</c>).</summary>
    Running,
    /// <summary>Given with <c>--append</c> alone.</summary>
    Given,
    /// <summary>The running one with <c>--append</c>'s text after it (<c>--reuse-cmdline --append</c>).</summary>
    RunningAppended,
}

/// <summary>How the machine goes down into the new kernel.</summary>
public enum RebootMethod
{
    /// <summary><c>systemctl kexec</c>: systemd (PID 1) stops every unit, unmounts, then calls reboot(2) itself.</summary>
    SystemctlKexec,
    /// <summary><c>sync(2)</c> then <c>reboot(RB_KEXEC)</c>, for systems without systemd (like <c>reboot -f</c>).</summary>
    RebootSyscall,
}

/// <summary>The resolved reboot: which image, initrd and command line.</summary>
/// <param name="Running">The running kernel.</param>
/// <param name="BootId">The running boot's id (<c>/proc/sys/kernel/random/boot_id</c>); a new one proves the reboot happened.</param>
/// <param name="Image">The new kernel image.</param>
/// <param name="Initrd">Its initrd, or null (booted with <c>KEXEC_FILE_NO_INITRAMFS</c>).</param>
/// <param name="CommandLine">The new kernel's command line.</param>
/// <param name="Source">Where it came from.</param>
/// <param name="Method">How the reboot will go.</param>
/// <param name="Diagnostics">Notes and warnings found while resolving.</param>
public sealed record KexecPlan(RunningKernel Running, string? BootId, BootImage Image, string? Initrd, string CommandLine,
    CommandLineSource Source, RebootMethod Method, IReadOnlyList<Diagnostic> Diagnostics)
{
    /// <summary>The running kernel's flavour.</summary>
    public string Flavour => KernelRelease.Flavour(Running.Release);
}

/// <summary>What <c>reboot --kexec</c> did before the machine went down.</summary>
/// <param name="Plan">The resolved reboot.</param>
/// <param name="DryRun">True when nothing was loaded.</param>
/// <param name="Loaded">True when the image is loaded (<c>/sys/kernel/kexec_loaded</c> reads 1).</param>
/// <param name="LoadTime">How long <c>kexec_file_load</c> took (reading, checking and placing the segments).</param>
public sealed record KexecResult(KexecPlan Plan, bool DryRun, bool Loaded, TimeSpan LoadTime)
{
    /// <summary>True when the reboot follows.</summary>
    public bool Rebooting => Loaded && !DryRun;
}

/// <summary>The last <c>reboot --kexec</c> this host made, as recorded in the store before it went down.</summary>
/// <param name="FromRelease">The release it left.</param>
/// <param name="FromBootId">The boot it left.</param>
/// <param name="ToRelease">The release it was to come back on.</param>
/// <param name="Image">The image it loaded.</param>
/// <param name="RequestedAt">When.</param>
/// <param name="Rebooted">True when the current boot id differs from <paramref name="FromBootId"/>.</param>
/// <param name="Arrived">True when it rebooted and runs <paramref name="ToRelease"/>.</param>
public sealed record KexecRecord(string FromRelease, string FromBootId, string ToRelease, string Image, string RequestedAt, bool Rebooted, bool Arrived);

/// <summary>The host's kexec facilities, for <c>status</c>.</summary>
/// <param name="Supported">True when the kernel has kexec (<c>/sys/kernel/kexec_loaded</c> exists).</param>
/// <param name="Loaded">True when an image is loaded and a kexec reboot would boot it.</param>
/// <param name="LoadDisabled"><c>kernel.kexec_load_disabled</c>, null when unreadable.</param>
/// <param name="Lockdown">The lockdown mode (<c>none</c>, <c>integrity</c>, <c>confidentiality</c>), null when securityfs does not say.</param>
/// <param name="LastReboot">The last recorded kexec reboot, if any.</param>
public sealed record KexecState(bool Supported, bool Loaded, bool? LoadDisabled, string? Lockdown, KexecRecord? LastReboot);

/// <summary>
/// A fast reboot into another kernel: resolve the image, load it with <c>kexec_file_load(2)</c> (the
/// path that checks signatures under lockdown), record the reboot, then go down through an orderly
/// shutdown (<c>systemctl kexec</c> when systemd is PID 1, else sync and <c>reboot(RB_KEXEC)</c>).
/// Every refusal happens before anything is loaded; a failed reboot unloads the image again.
/// </summary>
public sealed class KexecReboot
{
    /// <summary>x86 <c>COMMAND_LINE_SIZE</c> (arch/x86/include/asm/setup.h), terminating NUL included.</summary>
    public const int CommandLineSize = 2048;

    /// <summary>File in the store recording the last kexec reboot (key=value lines).</summary>
    public const string RecordFile = "kexec-reboot";

    private readonly HostPaths _paths;

    /// <summary>For the real host, or the given roots.</summary>
    public KexecReboot(HostPaths? paths = null) => _paths = paths ?? HostPaths.Default;

    /// <summary>Checked before loading; tests over a temporary tree turn it off.</summary>
    internal bool RequireRoot { get; init; } = true;

    /// <summary>
    /// Resolves, checks and (unless a dry run) loads the image, calls <paramref name="render"/> once with
    /// what was loaded (so the caller can print it before the machine goes down), then reboots. Returns
    /// only for a dry run, or after <c>systemctl kexec</c> has queued the shutdown; throws
    /// <see cref="LivegraftException"/> for every refusal (nothing loaded) and for a failed reboot
    /// (LG0650, image unloaded again).
    /// </summary>
    public KexecResult Run(KexecRequest request, Action<KexecResult> render, Action<string>? progress = null)
    {
        var plan = Resolve(request);
        foreach (var d in plan.Diagnostics)
            progress?.Invoke(d.ToString());
        if (!request.DryRun && RequireRoot)
            LivepatchManager.RequireRoot("reboot into another kernel", "kexec_file_load(2) and reboot(2) need CAP_SYS_BOOT", null);
        if (!File.Exists(_paths.KexecLoaded))
            throw new LivegraftException(ExitCode.HostFailure, KexecErrors.NoKexecSupport,
                $"the running kernel {plan.Running.Release} has no kexec support ({_paths.KexecLoaded} is missing: built without CONFIG_KEXEC_CORE)");
        if (request.DryRun)
        {
            if (LivepatchSysfs.ReadFlag(_paths.KexecLoadDisabled) == true)
                throw Disabled();
            var dry = new KexecResult(plan, DryRun: true, Loaded: false, TimeSpan.Zero);
            render(dry);
            return dry;
        }

        progress?.Invoke($"loading {plan.Image.Path} ({plan.Image.Release})" + (plan.Initrd is null ? "" : $" with {plan.Initrd}"));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Load(plan);
        var result = new KexecResult(plan, DryRun: false, Loaded: LivepatchSysfs.ReadFlag(_paths.KexecLoaded) != false, clock.Elapsed);
        new BootSafety(_paths).Confirm(wait: false, progress, orderlyReboot: true);
        WriteRecord(plan, progress);
        render(result);
        Console.Out.Flush();
        Console.Error.Flush();
        progress?.Invoke(plan.Method == RebootMethod.SystemctlKexec ? "rebooting: systemctl kexec" : "rebooting: sync, reboot(RB_KEXEC)");
        Reboot(plan.Method);
        return result;
    }

    /// <summary>Resolves the image, initrd and command line and checks the flavour; loads nothing.</summary>
    public KexecPlan Resolve(KexecRequest request)
    {
        var running = RunningKernel.Read(_paths);
        var flavour = KernelRelease.Flavour(running.Release);
        var diagnostics = new List<Diagnostic>();
        var image = ResolveImage(request.Kernel, flavour);
        var imageFlavour = KernelRelease.Flavour(image.Release);
        if (imageFlavour != flavour)
            throw new LivegraftException(ExitCode.InvalidInput, KexecErrors.FlavourMismatch,
                $"image is kernel {image.Release} (flavour '{imageFlavour}') but the running kernel {running.Release} is flavour '{flavour}'; " +
                "a kexec reboot keeps the flavour", image.Path);
        if (image.Release == running.Release)
            diagnostics.Add(new Diagnostic(KexecErrors.SameRelease, Severity.Note, $"{image.Release} is the running release: a fast reboot into the same kernel", image.Path));

        string? initrd;
        if (request.Initrd is not null)
        {
            initrd = Path.GetFullPath(request.Initrd);
            if (!File.Exists(initrd))
                throw new LivegraftException(ExitCode.InvalidInput, KexecErrors.InitrdMissing, "initrd not found", initrd);
        }
        else
        {
            initrd = Path.Combine(_paths.Boot, "initrd.img-" + image.Release);
            if (!File.Exists(initrd))
            {
                diagnostics.Add(new Diagnostic(KexecErrors.NoInitrd, Severity.Warning,
                    $"no initrd for {image.Release} ({initrd} does not exist); booting without one (give --initrd if the root file system needs it)", image.Path));
                initrd = null;
            }
        }

        var (commandLine, source) = (request.Append, request.ReuseCommandLine) switch
        {
            (null, _) => (ReusedCommandLine(running, image.Release), CommandLineSource.Running),
            ({ } text, false) => (text.Trim(), CommandLineSource.Given),
            ({ } text, true) => ((ReusedCommandLine(running, image.Release) + " " + text.Trim()).Trim(), CommandLineSource.RunningAppended),
        };
        if (commandLine.Contains('\n', StringComparison.Ordinal) || commandLine.Contains('\0', StringComparison.Ordinal))
            throw new LivegraftException(ExitCode.InvalidInput, KexecErrors.BadCommandLine, "the kernel command line must be one line without NUL bytes");
        if (System.Text.Encoding.UTF8.GetByteCount(commandLine) + 1 > CommandLineSize)
            throw new LivegraftException(ExitCode.InvalidInput, KexecErrors.BadCommandLine,
                $"the kernel command line is {commandLine.Length} bytes; x86 takes at most {CommandLineSize - 1}");
        var method = LivepatchSysfs.ReadText(_paths.InitComm) == "systemd" ? RebootMethod.SystemctlKexec : RebootMethod.RebootSyscall;
        return new KexecPlan(running, LivepatchSysfs.ReadText(_paths.BootId), image, initrd, commandLine, source, method, diagnostics);
    }

    /// <summary>The host's kexec facilities and the last recorded kexec reboot.</summary>
    public KexecState State()
    {
        var lockdown = LivepatchSysfs.ReadText(_paths.Lockdown) is { } text && text.IndexOf('[', StringComparison.Ordinal) is var open and >= 0
            && text.IndexOf(']', open) is var close and > 0 ? text[(open + 1)..close] : null;
        return new KexecState(File.Exists(_paths.KexecLoaded), LivepatchSysfs.ReadFlag(_paths.KexecLoaded) == true,
            LivepatchSysfs.ReadFlag(_paths.KexecLoadDisabled), lockdown, ReadRecord());
    }

    private BootImage ResolveImage(string? kernel, string flavour)
    {
        if (kernel is null)
            return Newest(flavour);
        if (kernel.Contains('/', StringComparison.Ordinal) || File.Exists(kernel))
        {
            var path = Path.GetFullPath(kernel);
            var image = BootImage.Read(path);
            var named = Path.GetFileName(path) is var name && name.StartsWith("vmlinuz-", StringComparison.Ordinal) ? name["vmlinuz-".Length..] : null;
            if (named is not null && named != image.Release)
                throw new LivegraftException(ExitCode.InvalidInput, KexecErrors.ReleaseMismatch,
                    $"the image's setup header says it is kernel {image.Release}, but its file name says {named}", path);
            return image;
        }
        var file = Path.Combine(_paths.Boot, "vmlinuz-" + kernel);
        if (!File.Exists(file))
            throw new LivegraftException(ExitCode.InvalidInput, KexecErrors.ImageMissing,
                $"no image for kernel {kernel}: {file} does not exist (install linux-image-{kernel}, or give an image path)", file);
        var found = BootImage.Read(file);
        if (found.Release != kernel)
            throw new LivegraftException(ExitCode.InvalidInput, KexecErrors.ReleaseMismatch,
                $"asked for kernel {kernel}, but the image's setup header says it is {found.Release}", file);
        return found;
    }

    /// <summary>The newest image under <c>/boot</c> whose release (read from its header) has the flavour.</summary>
    private BootImage Newest(string flavour)
    {
        var seen = new List<string>();
        BootImage? best = null;
        var files = Directory.Exists(_paths.Boot) ? Directory.GetFiles(_paths.Boot, "vmlinuz-*") : [];
        foreach (var file in files.Order(StringComparer.Ordinal))
        {
            BootImage image;
            try
            {
                image = BootImage.Read(file);
            }
            catch (LivegraftException)
            {
                continue; // Not an image we could boot anyway (an .old link, a 32-bit kernel).
            }
            seen.Add(image.Release);
            if (KernelRelease.Flavour(image.Release) == flavour && (best is null || KernelRelease.Compare(image.Release, best.Release) > 0))
                best = image;
        }
        return best ?? throw new LivegraftException(ExitCode.InvalidInput, KexecErrors.NoImageOfFlavour,
            $"no installed kernel image of flavour '{flavour}' in {_paths.Boot}" + (seen.Count == 0 ? "" : $" (found: {string.Join(", ", seen)})"));
    }

    /// <summary>The running command line, with a bootloader's <c>BOOT_IMAGE=</c> pointed at the new release.</summary>
    private static string ReusedCommandLine(RunningKernel running, string release) =>
        string.Join(' ', running.CommandLine.Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(w => w.StartsWith("BOOT_IMAGE=", StringComparison.Ordinal) ? w.Replace(running.Release, release, StringComparison.Ordinal) : w));

    private void Load(KexecPlan plan)
    {
        int errno;
        try
        {
            using var kernel = File.OpenHandle(plan.Image.Path, FileMode.Open, FileAccess.Read);
            using var initrd = plan.Initrd is null ? null : File.OpenHandle(plan.Initrd, FileMode.Open, FileAccess.Read);
            errno = Libc.KexecFileLoad((int)kernel.DangerousGetHandle(), initrd is null ? -1 : (int)initrd.DangerousGetHandle(),
                plan.CommandLine, initrd is null ? Libc.KEXEC_FILE_NO_INITRAMFS : 0);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LivegraftException(ExitCode.InvalidInput, KexecErrors.ImageMissing, "cannot open: " + e.Message, plan.Image.Path);
        }
        if (errno == 0)
            return;
        var said = LivepatchManager.KernelSaid("kexec");
        var text = Libc.Describe(errno);
        throw errno switch
        {
            Libc.ENOSYS => new LivegraftException(ExitCode.HostFailure, KexecErrors.NoKexecSupport,
                $"kexec_file_load is not available in {plan.Running.Release} (built without CONFIG_KEXEC_FILE): {text}"),
            Libc.EPERM when LivepatchSysfs.ReadFlag(_paths.KexecLoadDisabled) == true => Disabled(text + said),
            Libc.EPERM when State().Lockdown is { } mode && mode != "none" => new LivegraftException(ExitCode.HostFailure, KexecErrors.SignatureRefused,
                $"kexec_file_load refused by kernel lockdown ({mode}): only an image signed with a key the kernel trusts may be loaded: {text}{said}", plan.Image.Path),
            Libc.EKEYREJECTED or Libc.ENOKEY or Libc.EBADMSG or Libc.ENOMSG => new LivegraftException(ExitCode.HostFailure, KexecErrors.SignatureRefused,
                $"kexec_file_load rejected the image's signature (signature enforcement: CONFIG_KEXEC_SIG_FORCE, lockdown or IMA policy): {text}{said}", plan.Image.Path),
            _ => new LivegraftException(ExitCode.HostFailure, KexecErrors.LoadFailed, "kexec_file_load failed: " + (errno switch
            {
                Libc.EPERM => "not permitted (kexec disabled, lockdown, or missing CAP_SYS_BOOT)",
                Libc.ENOEXEC => "the kernel found no loader for the image (not a 64-bit bzImage it can boot)",
                Libc.EBUSY => "another kexec load is in progress",
                Libc.ENOMEM => "not enough memory for the image and initrd",
                Libc.EINVAL => "invalid arguments (command line or flags)",
                _ => "load failed",
            }) + ": " + text + said, plan.Image.Path),
        };
    }

    private LivegraftException Disabled(string? why = null) => new(ExitCode.HostFailure, KexecErrors.KexecDisabled,
        $"kexec is disabled on this boot: {_paths.KexecLoadDisabled} is 1 (set by sysctl or at boot with sysctl.kernel.kexec_load_disabled=1; " +
        "it cannot be cleared until the next boot); reboot through the firmware instead" + (why is null ? "" : ": " + why));

    private static void Reboot(RebootMethod method)
    {
        string failure;
        if (method == RebootMethod.SystemctlKexec)
        {
            // systemd uses the image already loaded (/sys/kernel/kexec_loaded is 1) and stops every unit first.
            var r = ProcessRunner.Run(new ProcessSpec(ProcessRunner.Find("systemctl"), ["kexec"]));
            if (r.ExitCode == 0)
                return;
            failure = $"systemctl kexec failed ({r.ExitCode}): {r.Tail(5)}";
        }
        else
        {
            Libc.Sync();
            failure = "reboot(RB_KEXEC) failed: " + Libc.Describe(Libc.RebootKexec());
        }
        var unload = Libc.KexecFileLoad(-1, -1, null, Libc.KEXEC_FILE_UNLOAD);
        throw new LivegraftException(ExitCode.HostFailure, KexecErrors.RebootFailed,
            failure + (unload == 0 ? "; the image was unloaded again" : "; unloading the image failed too: " + Libc.Describe(unload)));
    }

    private string RecordPath => Path.Combine(_paths.State, RecordFile);

    private void WriteRecord(KexecPlan plan, Action<string>? progress)
    {
        var text = string.Create(CultureInfo.InvariantCulture,
            $"from_release={plan.Running.Release}\nfrom_boot_id={plan.BootId}\nto_release={plan.Image.Release}\nimage={plan.Image.Path}\nrequested_at={DateTimeOffset.UtcNow:yyyy-MM-ddTHH:mm:ssZ}\n");
        try
        {
            Directory.CreateDirectory(_paths.State);
            PatchStore.WriteAtomic(RecordPath, System.Text.Encoding.UTF8.GetBytes(text));
        }
        catch (Exception e) when (e is LivegraftException or IOException or UnauthorizedAccessException)
        {
            progress?.Invoke(new Diagnostic(KexecErrors.RecordNotWritten, Severity.Warning,
                $"cannot record the reboot for 'livegraft status' ({e.Message}); rebooting anyway", RecordPath).ToString());
        }
    }

    private KexecRecord? ReadRecord()
    {
        var values = KeyValues.Read(RecordPath);
        if (values is null || !values.TryGetValue("to_release", out var to))
            return null;
        string Get(string key) => values.TryGetValue(key, out var v) ? v : "";
        var bootId = LivepatchSysfs.ReadText(_paths.BootId) ?? "";
        var release = LivepatchSysfs.ReadText(_paths.OsRelease) ?? "";
        var rebooted = bootId.Length > 0 && bootId != Get("from_boot_id");
        return new KexecRecord(Get("from_release"), Get("from_boot_id"), to, Get("image"), Get("requested_at"), rebooted, rebooted && release == to);
    }
}

/// <summary><c>key=value</c> lines, the format of Livegraft's small state files.</summary>
internal static class KeyValues
{
    /// <summary>The pairs of a file, or null when it does not exist or cannot be read.</summary>
    public static Dictionary<string, string>? Read(string path)
    {
        var text = LivepatchSysfs.ReadText(path);
        if (text is null)
            return null;
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            var eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
                values[line[..eq]] = line[(eq + 1)..];
        }
        return values;
    }
}
