using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Livegraft.Vm;

/// <summary>
/// One QEMU guest booted from a Livegraft initramfs, driven over its serial console: run shell
/// commands, copy files in, power it off or reboot it. Dispose always kills QEMU and deletes the
/// session's temporary files.
/// </summary>
/// <remarks>
/// Protocol (docs/vm.md): the host sends lines <c>D &lt;base64&gt;</c> then <c>X &lt;id&gt; &lt;seconds&gt;</c>;
/// the guest answers <c>@@LGB:&lt;nonce&gt;:&lt;id&gt;@@</c>, the command's output, and
/// <c>@@LGE:&lt;nonce&gt;:&lt;id&gt;:&lt;status&gt;@@</c>. The nonce is fresh per boot and passed on the
/// kernel command line, so neither the echo of the host's lines, nor kernel messages, nor an
/// earlier boot's output can be taken for a marker. Commands run one at a time.
/// </remarks>
public sealed class VmSession : IDisposable
{
    private const int ChunkBytes = 768; // 1024 base64 chars a line: well under N_TTY's 4095-byte canonical line limit
    private static readonly ConcurrentDictionary<VmSession, byte> Live = new();
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(30);

    private readonly VmOptions _options;
    private readonly Action<string>? _progress;
    private readonly object _gate = new();
    private readonly object _runLock = new();
    private readonly StringBuilder _log = new();
    private readonly StringBuilder _qemuStderr = new();
    private readonly string _workDir;
    private RunningProcess? _qemu;
    private RunningProcess? _guard;
    private StreamWriter? _logFile;
    private string _nonce = "";
    private string? _bootDisk;
    private int _generation;
    private int _seq;
    private int _consumed;
    private bool _exited = true;
    private bool _disposed;

    static VmSession()
    {
        // Covers normal exits and SIGTERM; a SIGKILLed host is covered by the guard process.
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            foreach (var s in Live.Keys)
                s.Dispose();
        };
    }

    private VmSession(VmOptions options, Action<string>? progress)
    {
        _options = options;
        _progress = progress;
        _workDir = options.TempDirectory is null
            ? Directory.CreateTempSubdirectory("livegraft-vm-").FullName
            : Directory.CreateDirectory(Path.Combine(options.TempDirectory, "livegraft-vm-" + RandomNumberGenerator.GetHexString(8, lowercase: true))).FullName;
        InitramfsPath = Path.Combine(_workDir, "initramfs.img");
        Live[this] = 0;
    }

    /// <summary>The kernel release running in the guest.</summary>
    public string Release => _options.Kernel.Release;

    /// <summary>The initramfs this session boots (inside its temporary directory).</summary>
    public string InitramfsPath { get; }

    /// <summary>The current boot's nonce (on its kernel command line as <c>lg.nonce=</c>).</summary>
    public string Nonce => _nonce;

    /// <summary>A fresh nonce, for a command line the guest boots itself (kexec with a new command line).</summary>
    public static string NewNonce() => RandomNumberGenerator.GetHexString(12, lowercase: true);

    /// <summary>The kernel command line the session boots with for <paramref name="nonce"/> (docs/vm.md, "Boot").</summary>
    public string KernelCommandLine(string nonce) =>
        $"console=ttyS0 nokaslr panic=-1 quiet lg.nonce={nonce}" + (string.IsNullOrWhiteSpace(_options.KernelParameters) ? "" : " " + _options.KernelParameters.Trim());

    /// <summary>Wall time of the last boot, from starting QEMU to the ready marker.</summary>
    public TimeSpan BootTime { get; private set; }

    /// <summary>True while QEMU runs and the guest is answering.</summary>
    public bool IsRunning
    {
        get
        {
            lock (_gate)
                return !_exited && !_disposed;
        }
    }

    /// <summary>Everything the serial console printed, across boots (kept after Dispose).</summary>
    public string ConsoleLog
    {
        get
        {
            lock (_gate)
                return _log.ToString();
        }
    }

    /// <summary>Builds the initramfs and boots it; throws <see cref="LivegraftException"/> (LG07xx) when the guest does not come up.</summary>
    public static VmSession Start(VmOptions options, Action<string>? progress = null)
    {
        var session = new VmSession(options, progress);
        try
        {
            session.BuildInitramfs();
            session.Boot();
            return session;
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>Runs <paramref name="command"/> with <c>sh</c> in <c>/root</c>, stdin from /dev/null, and
    /// returns its status and output. The guest kills the command's process group at the timeout
    /// (null: <see cref="VmOptions.CommandTimeout"/>; <see cref="Timeout.InfiniteTimeSpan"/>: none).</summary>
    public VmCommandResult Run(string command, TimeSpan? timeout = null)
    {
        var limit = timeout ?? _options.CommandTimeout;
        var seconds = limit == Timeout.InfiniteTimeSpan ? 0 : Math.Max(1, (int)Math.Ceiling(limit.TotalSeconds));
        lock (_runLock)
        {
            var sw = Stopwatch.StartNew();
            var id = NextId();
            var script = Encoding.UTF8.GetBytes(command);
            var deadline = seconds == 0 ? DateTime.MaxValue : DateTime.UtcNow + TimeSpan.FromSeconds(seconds) + Grace + TransferAllowance(script.Length);
            SendBuffer(script);
            SendLine($"X {id} {seconds}");
            var begin = $"@@LGB:{_nonce}:{id}@@";
            var b = WaitFor(begin, _consumed, deadline, command);
            var outputStart = b + begin.Length;
            var (e, status, after) = WaitForEnd(id, outputStart, deadline, command);
            string output;
            lock (_gate)
                output = _log.ToString(outputStart, e - outputStart);
            _consumed = after;
            output = CleanOutput(output);
            var timedOut = status == "T";
            var code = timedOut ? 124 : int.Parse(status, CultureInfo.InvariantCulture);
            return new VmCommandResult(code, output, timedOut, sw.Elapsed);
        }
    }

    /// <summary>
    /// Runs a command that may reboot the guest without QEMU restarting (kexec, or a firmware reset with
    /// <see cref="VmOptions.FirmwareReboot"/>): returns when the command ends (no reboot) or when the
    /// next boot prints its ready marker with <paramref name="nonce"/> (null: the current nonce, which a
    /// kexec that reuses the command line keeps). <paramref name="timeout"/> covers the command and the
    /// boot (default: the command timeout plus the boot timeout). Throws LG0702 if QEMU exits instead.
    /// </summary>
    public VmRebootResult RunRebooting(string command, string? nonce = null, TimeSpan? timeout = null)
    {
        var limit = timeout ?? _options.CommandTimeout + _options.BootTimeout;
        lock (_runLock)
        {
            var sw = Stopwatch.StartNew();
            var id = NextId();
            var script = Encoding.UTF8.GetBytes(command);
            var deadline = DateTime.UtcNow + limit + TransferAllowance(script.Length);
            SendBuffer(script);
            SendLine($"X {id} {Math.Max(1, (int)Math.Ceiling(limit.TotalSeconds))}");
            var begin = $"@@LGB:{_nonce}:{id}@@";
            var outputStart = WaitFor(begin, _consumed, deadline, command) + begin.Length;
            var expected = nonce ?? _nonce;
            var ready = $"@@LG-READY:{expected}@@";
            var end = $"@@LGE:{_nonce}:{id}:";
            var (at, which) = WaitForAny([end, ready], outputStart, deadline, command);
            string output;
            lock (_gate)
                output = CleanOutput(_log.ToString(outputStart, at - outputStart));
            if (which == 0)
            {
                var (_, status, after) = WaitForEnd(id, at, deadline, command);
                _consumed = after;
                return new VmRebootResult(false, status == "T" ? 124 : int.Parse(status, CultureInfo.InvariantCulture), output, sw.Elapsed);
            }
            _nonce = expected;
            _consumed = at + ready.Length;
            BootTime = sw.Elapsed;
            Report($"rebooted in {sw.Elapsed.TotalSeconds:0.0} s");
            return new VmRebootResult(true, null, output, sw.Elapsed);
        }
    }

    /// <summary>Like <see cref="Run"/> but returns only the output, throwing LG0709 when the command fails or times out.</summary>
    public string RunChecked(string command, TimeSpan? timeout = null)
    {
        var r = Run(command, timeout);
        if (r.TimedOut || r.ExitCode != 0)
            throw new LivegraftException(ExitCode.HostFailure, VmErrors.GuestCommandFailed,
                $"guest command {(r.TimedOut ? "timed out" : $"failed with status {r.ExitCode}")}: {command}\n{r.Output}");
        return r.Output;
    }

    /// <summary>Writes <paramref name="content"/> to <paramref name="guestPath"/> over the serial line (base64;
    /// a few hundred KB/s under TCG, so prefer <see cref="VmOptions.Files"/> for large files).</summary>
    public void PutFile(string guestPath, byte[] content, uint mode = 0x1A4)
    {
        if (!guestPath.StartsWith('/') || guestPath.Any(char.IsWhiteSpace))
            throw new LivegraftException(ExitCode.InvalidInput, VmErrors.BadGuestPath, $"guest path must be absolute and without spaces: '{guestPath}'");
        lock (_runLock)
        {
            var id = NextId();
            var deadline = DateTime.UtcNow + Grace + TransferAllowance(content.Length);
            SendBuffer(content);
            SendLine($"F {id} {Convert.ToString(mode & 0xFFF, 8)} {guestPath}");
            var (_, status, after) = WaitForEnd(id, _consumed, deadline, "put " + guestPath);
            _consumed = after;
            if (status != "0")
                throw new LivegraftException(ExitCode.HostFailure, VmErrors.PutFileFailed, $"writing {guestPath} in the guest failed (status {status})");
        }
    }

    /// <summary>Copies a host file into the guest over the serial line, keeping its permission bits.</summary>
    public void PutFile(string hostPath, string guestPath) =>
        PutFile(guestPath, File.ReadAllBytes(hostPath), InitramfsBuilder.UnixMode(hostPath));

    /// <summary>Syncs and powers the guest off (kills QEMU if it has not exited within 30 s).</summary>
    public void PowerOff()
    {
        lock (_runLock)
        {
            if (IsRunning)
            {
                try
                {
                    SendBuffer(Encoding.UTF8.GetBytes("sync; poweroff -f"));
                    SendLine($"X {NextId()} 0");
                }
                catch (LivegraftException)
                {
                    // Already gone: fall through to the kill.
                }
                var qemu = _qemu;
                if (qemu is not null && !qemu.WaitForExit(TimeSpan.FromSeconds(30)))
                    Report("guest did not power off within 30 s; killing QEMU");
            }
            StopProcesses();
        }
    }

    /// <summary>Powers off and boots again from the same initramfs and disks (a fresh nonce, a fresh guest).</summary>
    public void Reboot()
    {
        PowerOff();
        Boot();
    }

    /// <summary>Kills QEMU (no clean shutdown), closes the console log and deletes the temporary directory.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
                return;
            _disposed = true;
        }
        StopProcesses();
        _logFile?.Dispose();
        _logFile = null;
        try
        {
            Directory.Delete(_workDir, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: the guard removes it if the host dies; /tmp is cleaned at boot anyway.
        }
        Live.TryRemove(this, out _);
    }

    private void BuildInitramfs()
    {
        var o = _options;
        Report("building initramfs");
        if (!File.Exists(o.Kernel.KernelImage))
            throw new LivegraftException(ExitCode.HostFailure, VmErrors.KernelFilesMissing, $"kernel image for {o.Kernel.Release} not found (KernelTarget.EnsureImage fetches it)", o.Kernel.KernelImage);
        var modules = new KernelModules(o.Kernel.ModulesDirectory);
        var b = InitramfsBuilder.CreateDefault(modules, o.Kernel.Release);
        foreach (var m in o.Modules)
            b.AddModule(m);
        var disks = o.Disks.Count + (o.BootImages.Count > 0 ? 1 : 0) + o.ReadOnlyDisks.Count;
        if (disks > 0)
        {
            // CONFIG_VIRTIO_PCI=m and CONFIG_VIRTIO_BLK=m: no /dev/vda until both are loaded.
            foreach (var m in new[] { "virtio_pci", "virtio_blk", "ext4" })
                b.AddModule(m);
            // The disks register asynchronously after the driver binds; wait (up to 10 s) for each
            // node so the first command can mount without racing the probe.
            var last = $"/dev/vd{(char)('a' + disks - 1)}";
            b.AddInitHook("10-virtio-blk",
                $"modprobe virtio_pci; modprobe virtio_blk\ni=0; while [ ! -b {last} ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done\n");
        }
        if (o.BootImages.Count > 0)
        {
            foreach (var t in o.BootImages)
                b.AddModulesFor(new KernelModules(t.ModulesDirectory));
            // The boot disk comes right after Disks (the read-only disks follow it).
            b.AddInitHook("11-boot-disk", $"mkdir -p /boot; mount -t ext4 -o ro /dev/vd{(char)('a' + o.Disks.Count)} /boot\n");
        }
        if (o.SshPort is not null)
            GuestSsh.Configure(b, o);
        foreach (var f in o.Files)
            b.AddFile(f.HostPath, f.GuestPath, f.Mode);
        foreach (var (guest, host) in o.Executables)
            b.AddExecutable(host, guest);
        if (o.LivegraftBinary is not null)
            b.AddExecutable(o.LivegraftBinary, "/usr/bin/livegraft");
        o.ConfigureInitramfs?.Invoke(b);
        b.Build(InitramfsPath);
        if (o.BootImages.Count > 0)
            BuildBootDisk();
        if (o.ConsoleLogPath is not null)
            _logFile = new StreamWriter(o.ConsoleLogPath, append: true, new UTF8Encoding(false)) { AutoFlush = true };
    }

    /// <summary>The disk /init mounts at /boot: each boot image and the session's own kernel, each with
    /// the session's initramfs as its initrd (it carries the modules of every one of these releases).</summary>
    private void BuildBootDisk()
    {
        var root = Path.Combine(_workDir, "bootfs");
        var boot = Directory.CreateDirectory(Path.Combine(root, "boot")).FullName;
        long bytes = 0;
        foreach (var t in _options.BootImages.Prepend(_options.Kernel).DistinctBy(t => t.Release))
        {
            if (!File.Exists(t.KernelImage))
                throw new LivegraftException(ExitCode.HostFailure, VmErrors.KernelFilesMissing, $"kernel image for {t.Release} not found (KernelTarget.EnsureImage fetches it)", t.KernelImage);
            File.Copy(t.KernelImage, Path.Combine(boot, "vmlinuz-" + t.Release));
            File.Copy(InitramfsPath, Path.Combine(boot, "initrd.img-" + t.Release));
            bytes += new FileInfo(t.KernelImage).Length + new FileInfo(InitramfsPath).Length;
        }
        _bootDisk = Path.Combine(_workDir, "boot.img");
        DiskImage.CreateExt4(_bootDisk, (int)(bytes * 5 / 4 >> 20) + 16, boot, "lgboot");
        Directory.Delete(root, recursive: true);
    }

    private void Boot()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var o = _options;
        _nonce = NewNonce();
        var append = KernelCommandLine(_nonce);
        // -serial stdio instead of -nographic's mon:stdio: the monitor mux would treat a 0x01 byte
        // as its escape key. -nodefaults drops the NIC (and its option ROM) and the VGA card.
        List<string> args =
        [
            "-accel", "tcg", "-m", o.MemoryMiB.ToString(CultureInfo.InvariantCulture), "-smp", o.Cpus.ToString(CultureInfo.InvariantCulture),
            "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
            "-kernel", o.Kernel.KernelImage, "-initrd", InitramfsPath, "-append", append,
        ];
        if (!o.FirmwareReboot)
            args.Add("-no-reboot");
        if (o.Cpu is not null)
            args.AddRange(["-cpu", o.Cpu]);
        var writable = _bootDisk is null ? o.Disks : o.Disks.Append(_bootDisk);
        foreach (var (disk, readOnly) in writable.Select(d => (d, false)).Concat(o.ReadOnlyDisks.Select(d => (d, true))))
            args.AddRange(["-drive", $"file={Path.GetFullPath(disk).Replace(",", ",,", StringComparison.Ordinal)},if=virtio,format=raw" + (readOnly ? ",readonly=on" : "")]);
        if (o.SshPort is { } port)
            args.AddRange(GuestSsh.QemuArguments(port));
        Report($"booting {o.Kernel.Release}");
        var sw = Stopwatch.StartNew();
        var qemu = ProcessRunner.Start(new ProcessSpec(o.Qemu, args) { CLocale = false });
        int generation;
        lock (_gate)
        {
            _qemu = qemu;
            _exited = false;
            generation = ++_generation;
            _consumed = _log.Length;
            _qemuStderr.Clear();
        }
        StartReader(qemu.Stdout, generation, toLog: true);
        StartReader(qemu.Stderr, generation, toLog: false);
        _guard = StartGuard(qemu.Id);
        var ready = $"@@LG-READY:{_nonce}@@";
        var deadline = DateTime.UtcNow + o.BootTimeout;
        int at;
        try
        {
            at = WaitFor(ready, _consumed, deadline, null);
        }
        catch (LivegraftException e) when (e.Diagnostics[0].Id == VmErrors.GuestUnresponsive)
        {
            StopProcesses();
            throw Failure(VmErrors.BootTimeout, $"the guest did not become ready within {o.BootTimeout.TotalSeconds:0} s");
        }
        _consumed = at + ready.Length;
        BootTime = sw.Elapsed;
        Report($"booted in {BootTime.TotalSeconds:0.0} s");
    }

    private void StartReader(StreamReader reader, int generation, bool toLog)
    {
        var thread = new Thread(() =>
        {
            var buffer = new char[4096];
            try
            {
                int n;
                while ((n = reader.Read(buffer, 0, buffer.Length)) > 0)
                {
                    lock (_gate)
                    {
                        (toLog ? _log : _qemuStderr).Append(buffer, 0, n);
                        if (toLog)
                            _logFile?.Write(buffer, 0, n);
                        Monitor.PulseAll(_gate);
                    }
                }
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                // The process went away; treated as EOF.
            }
            if (toLog)
            {
                lock (_gate)
                {
                    if (generation == _generation)
                        _exited = true;
                    Monitor.PulseAll(_gate);
                }
            }
        })
        { IsBackground = true, Name = toLog ? "qemu-console" : "qemu-stderr" };
        thread.Start();
    }

    /// <summary>A host shell that kills QEMU and removes the temporary directory if this process
    /// dies without disposing (SIGKILL, a crashed test host): nothing is left running.</summary>
    private RunningProcess? StartGuard(int qemuPid)
    {
        const string script = """
            while kill -0 "$2" 2>/dev/null; do
                if ! kill -0 "$1" 2>/dev/null; then kill -9 "$2"; rm -rf "$3"; exit 0; fi
                sleep 1
            done
            """;
        try
        {
            return ProcessRunner.Start(new ProcessSpec("/bin/sh",
                ["-c", script, "livegraft-vm-guard", Environment.ProcessId.ToString(CultureInfo.InvariantCulture), qemuPid.ToString(CultureInfo.InvariantCulture), _workDir]));
        }
        catch (LivegraftException)
        {
            return null; // No /bin/sh: Dispose and ProcessExit still clean up.
        }
    }

    private void StopProcesses()
    {
        RunningProcess? qemu, guard;
        lock (_gate)
        {
            qemu = _qemu;
            guard = _guard;
            _qemu = null;
            _guard = null;
            _exited = true;
            _generation++;
            Monitor.PulseAll(_gate);
        }
        qemu?.Dispose();
        guard?.Dispose();
    }

    private string NextId() => (++_seq).ToString(CultureInfo.InvariantCulture);

    private void SendBuffer(byte[] content)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < content.Length; i += ChunkBytes)
            sb.Append("D ").Append(Convert.ToBase64String(content, i, Math.Min(ChunkBytes, content.Length - i))).Append('\n');
        if (content.Length == 0)
            sb.Append("D \n");
        SendRaw(sb.ToString());
    }

    private void SendLine(string line) => SendRaw(line + "\n");

    private void SendRaw(string text)
    {
        var qemu = _qemu;
        if (qemu is null || !IsRunning)
            throw Failure(VmErrors.VmExited, "the VM is not running");
        try
        {
            qemu.Stdin.Write(text);
        }
        catch (IOException)
        {
            throw Failure(VmErrors.VmExited, "the VM exited");
        }
    }

    /// <summary>Base64 over a TCG-emulated 16550 moves roughly 100 KB/s; allow 10 KB/s.</summary>
    private static TimeSpan TransferAllowance(int bytes) => TimeSpan.FromSeconds(bytes / 10_000.0);

    /// <summary>Waits until <paramref name="marker"/> appears in the console log at or after <paramref name="from"/>; returns its index.</summary>
    private int WaitFor(string marker, int from, DateTime deadline, string? command) => WaitForAny([marker], from, deadline, command).Index;

    /// <summary>Waits until one of <paramref name="markers"/> appears at or after <paramref name="from"/>; returns
    /// where the first one found starts and which it is.</summary>
    private (int Index, int Which) WaitForAny(string[] markers, int from, DateTime deadline, string? command)
    {
        var longest = markers.Max(m => m.Length);
        lock (_gate)
        {
            var scan = from;
            while (true)
            {
                if (_log.Length - scan >= markers.Min(m => m.Length))
                {
                    var text = _log.ToString(scan, _log.Length - scan);
                    var found = markers.Select((m, k) => (At: text.IndexOf(m, StringComparison.Ordinal), k)).Where(f => f.At >= 0).ToList();
                    if (found.Count > 0)
                    {
                        var first = found.MinBy(f => f.At);
                        return (scan + first.At, first.k);
                    }
                    scan = Math.Max(scan, _log.Length - longest + 1);
                }
                if (_exited)
                    throw Failure(VmErrors.VmExited, command is null ? "QEMU exited before the guest was ready" : $"the VM exited while running: {command}");
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero)
                {
                    if (command is null)
                        throw new LivegraftException(ExitCode.HostFailure, VmErrors.GuestUnresponsive, "timeout");
                    Monitor.Exit(_gate);
                    try
                    {
                        StopProcesses();
                    }
                    finally
                    {
                        Monitor.Enter(_gate);
                    }
                    throw Failure(VmErrors.GuestUnresponsive, $"the guest stopped answering while running: {command}");
                }
                Monitor.Wait(_gate, left > TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : left);
            }
        }
    }

    /// <summary>Waits for the complete end marker of command <paramref name="id"/>: returns where it starts, the status field, and the index after it.</summary>
    private (int Start, string Status, int After) WaitForEnd(string id, int from, DateTime deadline, string command)
    {
        var prefix = $"@@LGE:{_nonce}:{id}:";
        var start = WaitFor(prefix, from, deadline, command);
        var close = WaitFor("@@", start + prefix.Length, deadline, command);
        string status;
        lock (_gate)
            status = _log.ToString(start + prefix.Length, close - start - prefix.Length);
        return (start, status, close + 2);
    }

    /// <summary>Strips the newline the guest put after the begin marker and before the end marker
    /// (so output without a final newline survives), and the <c>\r</c> of kernel messages.</summary>
    private static string CleanOutput(string raw)
    {
        if (raw.StartsWith("\r\n", StringComparison.Ordinal))
            raw = raw[2..];
        else if (raw.StartsWith('\n'))
            raw = raw[1..];
        if (raw.EndsWith('\n'))
            raw = raw[..^1];
        return raw.Replace("\r\n", "\n", StringComparison.Ordinal);
    }

    private LivegraftException Failure(string id, string message)
    {
        string recent, stderr;
        lock (_gate)
        {
            // The tail shows the last 4 KB; the panic line is looked for further back, since a long
            // stack dump can push it out of the tail.
            var start = Math.Max(0, _log.Length - 64 * 1024);
            recent = _log.ToString(start, _log.Length - start);
            stderr = _qemuStderr.ToString().Trim();
        }
        var tail = string.Join('\n', recent[Math.Max(0, recent.Length - 4000)..].Replace("\r", "", StringComparison.Ordinal).Split('\n').TakeLast(40));
        var text = PanicLine(recent) is { } panic && !tail.Contains(panic, StringComparison.Ordinal)
            ? $"{message}\n{panic}\n--- console (last lines) ---\n{tail}"
            : $"{message}\n--- console (last lines) ---\n{tail}";
        if (stderr.Length > 0)
            text += $"\n--- qemu stderr ---\n{stderr}";
        return new LivegraftException(ExitCode.HostFailure, id, text);
    }

    /// <summary>The last "Kernel panic" line of <paramref name="log"/>, or null.</summary>
    private static string? PanicLine(string log)
    {
        var i = log.LastIndexOf("Kernel panic - not syncing", StringComparison.Ordinal);
        if (i < 0)
            return null;
        var end = log.IndexOfAny(['\r', '\n'], i);
        return log[i..(end < 0 ? log.Length : end)];
    }

    private void Report(string message) => _progress?.Invoke(message);
}
