using System.IO.Compression;
using System.Text;

namespace Livegraft.Vm;

/// <summary>
/// Builds a gzip-compressed newc initramfs: busybox, an <c>/init</c>, kernel modules with their
/// dependencies, host files and host executables with the shared libraries they need.
/// </summary>
/// <remarks>
/// Entries are kept by guest path and written in ordinal order, which puts every directory
/// before its contents (the kernel's unpacker does not create missing parents). Missing parent
/// directories are added as 0755. Adding a path twice replaces the earlier entry.
/// </remarks>
public sealed class InitramfsBuilder
{
    private readonly SortedDictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly List<string> _modules = [];
    private readonly List<KernelModules> _otherReleases = [];

    /// <summary>Creates an empty image whose modules come from <paramref name="modules"/> (may be null when no module is added).</summary>
    public InitramfsBuilder(KernelModules? modules = null, string? release = null)
    {
        KernelModules = modules;
        Release = release ?? (modules is null ? null : Path.GetFileName(modules.Directory));
    }

    /// <summary>Where <see cref="AddModule"/> looks modules up.</summary>
    public KernelModules? KernelModules { get; }

    /// <summary>The kernel release, naming <c>/lib/modules/&lt;release&gt;</c> in the guest.</summary>
    public string? Release { get; }

    /// <summary>Modules added so far, in load order.</summary>
    public IReadOnlyList<string> Modules => _modules;

    /// <summary>Guest paths in the image so far (without the implied parent directories).</summary>
    public IEnumerable<string> Paths => _entries.Keys.Select(k => "/" + k);

    /// <summary>
    /// The standard Livegraft guest: directory skeleton, <c>/dev/console</c>, busybox with every
    /// applet linked, <c>/etc/passwd</c>, and the <c>/init</c> plus serial command loop that
    /// <see cref="VmSession"/> talks to.
    /// </summary>
    public static InitramfsBuilder CreateDefault(KernelModules? modules, string? release = null, string busybox = "/bin/busybox")
    {
        var b = new InitramfsBuilder(modules, release);
        foreach (var dir in new[] { "/proc", "/sys", "/dev", "/run", "/root", "/var/lib", "/var/log", "/etc", "/mnt", "/lib", "/lib64", "/usr/lib", "/usr/local/bin", "/bin", "/sbin", "/usr/bin", "/usr/sbin" })
            b.AddDirectory(dir);
        b.AddDirectory("/tmp", 0x3FF | 0x200); // 1777: sticky, world-writable
        // Without a console node the kernel starts init with no stdin/stdout ("unable to open an
        // initial console"); devtmpfs is only mounted later, by /init.
        b.AddCharDevice("/dev/console", 5, 1);
        b.AddBusybox(busybox);
        b.AddText("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
        b.AddText("/etc/group", "root:x:0:\n");
        b.AddText("/etc/hostname", "livegraft\n");
        b.AddText("/init", GuestScripts.Init, 0x1ED);
        b.AddText(GuestScripts.LoopPath, GuestScripts.Loop, 0x1ED);
        return b;
    }

    /// <summary>Adds a directory.</summary>
    public InitramfsBuilder AddDirectory(string guestPath, uint mode = 0x1ED)
    {
        _entries[Key(guestPath)] = new Entry(EntryKind.Directory, mode, null, null, null, 0, 0);
        return this;
    }

    /// <summary>Adds a file with the given bytes.</summary>
    public InitramfsBuilder AddBytes(string guestPath, byte[] content, uint mode = 0x1A4)
    {
        _entries[Key(guestPath)] = new Entry(EntryKind.File, mode, content, null, null, 0, 0);
        return this;
    }

    /// <summary>Adds a UTF-8 text file; line ends are normalised to <c>\n</c> so scripts run.</summary>
    public InitramfsBuilder AddText(string guestPath, string text, uint mode = 0x1A4) =>
        AddBytes(guestPath, Encoding.UTF8.GetBytes(text.ReplaceLineEndings("\n")), mode);

    /// <summary>Adds a host file at <paramref name="guestPath"/> (following symlinks); the mode defaults to the host file's permission bits.</summary>
    public InitramfsBuilder AddFile(string hostPath, string guestPath, uint? mode = null)
    {
        if (!File.Exists(hostPath))
            throw new LivegraftException(ExitCode.InvalidInput, VmErrors.InitramfsFileMissing, "file not found", hostPath);
        mode ??= UnixMode(hostPath);
        _entries[Key(guestPath)] = new Entry(EntryKind.File, mode.Value, null, Path.GetFullPath(hostPath), null, 0, 0);
        return this;
    }

    /// <summary>Adds a symbolic link.</summary>
    public InitramfsBuilder AddSymlink(string guestPath, string target)
    {
        _entries[Key(guestPath)] = new Entry(EntryKind.Symlink, 0x1FF, null, null, target, 0, 0);
        return this;
    }

    /// <summary>Adds a character device node.</summary>
    public InitramfsBuilder AddCharDevice(string guestPath, uint major, uint minor, uint mode = 0x180)
    {
        _entries[Key(guestPath)] = new Entry(EntryKind.CharDevice, mode, null, null, null, major, minor);
        return this;
    }

    /// <summary>
    /// Adds an account to <c>/etc/passwd</c> (and its primary group to <c>/etc/group</c> unless that gid is
    /// there), so a guest command can run unprivileged with busybox <c>su -s /bin/sh -c CMD NAME</c>
    /// (busybox <c>setpriv</c> cannot change uids). No password: only root can switch to it.
    /// </summary>
    public InitramfsBuilder AddUser(string name, int uid, int gid, string home = "/tmp", string shell = "/bin/sh")
    {
        if (name.Length == 0 || name.Any(c => c is ':' or '\n' or '/' || char.IsWhiteSpace(c)) || uid < 0 || gid < 0 ||
            home.Contains(':', StringComparison.Ordinal) || shell.Contains(':', StringComparison.Ordinal))
            throw new LivegraftException(ExitCode.InvalidInput, VmErrors.BadUser, $"bad user entry '{name}' ({uid}:{gid})");
        var passwd = TextOf("/etc/passwd");
        if (passwd.Split('\n').Any(l => l.StartsWith(name + ":", StringComparison.Ordinal)))
            throw new LivegraftException(ExitCode.InvalidInput, VmErrors.BadUser, $"user '{name}' is already in /etc/passwd");
        AddText("/etc/passwd", passwd + $"{name}:x:{uid}:{gid}:{name}:{home}:{shell}\n");
        var group = TextOf("/etc/group");
        if (!group.Split('\n').Any(l => l.Split(':') is [_, _, var g, ..] && g == gid.ToString(System.Globalization.CultureInfo.InvariantCulture)))
            AddText("/etc/group", group + $"{name}:x:{gid}:\n");
        return this;
    }

    /// <summary>The text of an in-memory entry, or "" when there is none.</summary>
    private string TextOf(string guestPath) =>
        _entries.TryGetValue(Key(guestPath), out var e) && e.Content is not null ? Encoding.UTF8.GetString(e.Content) : "";

    /// <summary>Adds a shell script that <c>/init</c> sources, in name order, before serving commands.</summary>
    public InitramfsBuilder AddInitHook(string name, string script) =>
        AddText($"{GuestScripts.InitHooksDirectory}/{name}.sh", script, 0x1ED);

    /// <summary>Adds a static busybox at <c>/bin/busybox</c> and a symlink for each applet at the
    /// path busybox itself names (<c>busybox --list-full</c>); existing entries win.</summary>
    public InitramfsBuilder AddBusybox(string hostBusybox = "/bin/busybox")
    {
        var listing = ProcessRunner.Run(new ProcessSpec(hostBusybox, ["--list-full"]));
        if (listing.ExitCode != 0)
            throw new LivegraftException(ExitCode.HostFailure, VmErrors.BusyboxUnusable, $"{hostBusybox} --list-full failed: {listing.Stderr.Trim()} (install busybox-static)");
        var list = listing.Stdout;
        if (ProcessRunner.Run(new ProcessSpec(ProcessRunner.Find("ldd"), [hostBusybox])).Stdout.Contains("=>", StringComparison.Ordinal))
            throw new LivegraftException(ExitCode.HostFailure, VmErrors.BusyboxUnusable, $"{hostBusybox} is dynamically linked; install busybox-static");
        AddFile(hostBusybox, "/bin/busybox", 0x1ED);
        foreach (var applet in list.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var key = Key(applet);
            if (key != "bin/busybox" && !_entries.ContainsKey(key))
                _entries[key] = new Entry(EntryKind.Symlink, 0x1FF, null, null, "/bin/busybox", 0, 0);
        }
        return this;
    }

    /// <summary>Adds a kernel module and everything it needs (hard and soft pre-dependencies) under
    /// <c>/lib/modules/&lt;release&gt;</c>; the build writes a matching <c>modules.dep</c> and
    /// <c>modules.alias</c> so the guest's <c>modprobe</c> resolves them.</summary>
    public InitramfsBuilder AddModule(string name)
    {
        var modules = KernelModules ?? throw new LivegraftException(ExitCode.InvalidInput, VmErrors.ModuleUnresolved, $"cannot add module {name}: no kernel modules directory given");
        if (modules.FindPath(name) is null && modules.IsBuiltin(name))
            return this; // built in: modprobe succeeds without a file
        foreach (var m in modules.Resolve(name))
        {
            if (_modules.Contains(m))
                continue;
            _modules.Add(m);
            var rel = modules.FindPath(m)!;
            AddFile(Path.Combine(modules.Directory, rel), $"/lib/modules/{Release}/{rel}", 0x1A4);
        }
        return this;
    }

    /// <summary>
    /// Also includes, for another kernel release, every module <see cref="AddModule"/> adds (those that
    /// release has, with their own dependencies) and its module indexes, so that the same initramfs boots
    /// that release too (e.g. kexec'd into from the guest).
    /// </summary>
    public InitramfsBuilder AddModulesFor(KernelModules modules)
    {
        if (Path.GetFileName(modules.Directory) != Release)
            _otherReleases.Add(modules);
        return this;
    }

    /// <summary>
    /// Adds a host executable at <paramref name="guestPath"/> together with the shared libraries
    /// and the dynamic loader <c>ldd</c> reports for it, each at the path <c>ldd</c> printed, so the
    /// guest's loader finds them in its default directories without an <c>ld.so.cache</c>.
    /// </summary>
    public InitramfsBuilder AddExecutable(string hostPath, string guestPath)
    {
        if (!File.Exists(hostPath))
            throw new LivegraftException(ExitCode.InvalidInput, VmErrors.ExecutableUnusable, "executable not found", hostPath);
        AddFile(hostPath, guestPath, 0x1ED);
        foreach (var lib in SharedLibraries(hostPath))
            if (!_entries.ContainsKey(Key(lib)))
                AddFile(lib, lib, 0x1ED);
        return this;
    }

    /// <summary>The shared libraries and loader <c>ldd</c> lists for <paramref name="hostPath"/>; empty for static executables.</summary>
    public static IReadOnlyList<string> SharedLibraries(string hostPath)
    {
        var ldd = ProcessRunner.Run(new ProcessSpec(ProcessRunner.Find("ldd"), [hostPath]));
        var (code, stdout) = (ldd.ExitCode, ldd.Stdout);
        var text = stdout + ldd.Stderr;
        if (text.Contains("not a dynamic executable", StringComparison.Ordinal) || text.Contains("statically linked", StringComparison.Ordinal))
            return [];
        if (code != 0)
            throw new LivegraftException(ExitCode.HostFailure, VmErrors.ExecutableUnusable, $"ldd failed: {text.Trim()}", hostPath);
        var libs = new List<string>();
        foreach (var raw in stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)", "/lib64/ld-linux-x86-64.so.2 (0x...)",
            // "linux-vdso.so.1 (0x...)" (provided by the kernel), "libfoo.so => not found".
            var line = raw;
            var arrow = line.IndexOf("=>", StringComparison.Ordinal);
            if (arrow >= 0)
                line = line[(arrow + 2)..].Trim();
            if (line.StartsWith("not found", StringComparison.Ordinal))
                throw new LivegraftException(ExitCode.HostFailure, VmErrors.ExecutableUnusable, $"shared library missing on the host: {raw}", hostPath);
            var paren = line.IndexOf(" (", StringComparison.Ordinal);
            var path = paren >= 0 ? line[..paren] : line;
            if (path.StartsWith('/'))
                libs.Add(path);
        }
        return libs;
    }

    /// <summary>Writes the gzip-compressed archive to <paramref name="output"/>.</summary>
    public void WriteTo(Stream output, CompressionLevel level = CompressionLevel.Fastest)
    {
        using var gzip = new GZipStream(output, level, leaveOpen: true);
        using var buffered = new BufferedStream(gzip, 1 << 16);
        WriteCpio(buffered);
    }

    /// <summary>Writes the gzip-compressed archive to a file.</summary>
    public void Build(string path, CompressionLevel level = CompressionLevel.Fastest)
    {
        using var file = File.Create(path);
        WriteTo(file, level);
    }

    /// <summary>Writes the uncompressed newc archive (the kernel accepts both).</summary>
    public void WriteCpio(Stream output)
    {
        var all = new SortedDictionary<string, Entry>(_entries, StringComparer.Ordinal);
        if (_modules.Count > 0)
            AddModuleIndexes(all, KernelModules!, Release!, _modules);
        foreach (var other in _otherReleases)
        {
            var release = Path.GetFileName(other.Directory);
            var names = new List<string>();
            foreach (var m in _modules.Where(m => other.FindPath(m) is not null).SelectMany(m => other.Resolve(m)))
            {
                if (names.Contains(m))
                    continue;
                names.Add(m);
                var rel = other.FindPath(m)!;
                all[Key($"/lib/modules/{release}/{rel}")] = new Entry(EntryKind.File, 0x1A4, null, Path.Combine(other.Directory, rel), null, 0, 0);
            }
            AddModuleIndexes(all, other, release, names);
        }
        foreach (var key in all.Keys.ToArray())
            for (var slash = key.LastIndexOf('/'); slash > 0; slash = key.LastIndexOf('/', slash - 1))
                all.TryAdd(key[..slash], new Entry(EntryKind.Directory, 0x1ED, null, null, null, 0, 0));
        var cpio = new CpioWriter(output);
        foreach (var (key, e) in all)
        {
            switch (e.Kind)
            {
                case EntryKind.Directory: cpio.WriteDirectory(key, e.Mode); break;
                case EntryKind.Symlink: cpio.WriteSymlink(key, e.Target!); break;
                case EntryKind.CharDevice: cpio.WriteCharDevice(key, e.Major, e.Minor, e.Mode); break;
                case EntryKind.File when e.Content is not null: cpio.WriteFile(key, e.Content, e.Mode); break;
                default:
                    using (var f = File.OpenRead(e.HostPath!))
                        cpio.WriteFile(key, f, f.Length, e.Mode);
                    break;
            }
        }
        cpio.WriteTrailer();
    }

    /// <summary>Writes <c>modules.dep</c> (depmod's format: each module then its whole dependency
    /// closure, the module to load first last) and <c>modules.alias</c> for the included modules,
    /// plus the release's <c>modules.order</c> and <c>modules.builtin</c> so <c>modprobe</c> of a
    /// built-in succeeds.</summary>
    private static void AddModuleIndexes(SortedDictionary<string, Entry> all, KernelModules modules, string release, IReadOnlyList<string> names)
    {
        var dir = $"lib/modules/{release}";
        var dep = new StringBuilder();
        var alias = new StringBuilder();
        foreach (var m in names)
        {
            var closure = modules.Resolve(m, includeSoft: false);
            dep.Append(modules.FindPath(m)).Append(':');
            for (var i = closure.Count - 2; i >= 0; i--)
                dep.Append(' ').Append(modules.FindPath(closure[i]));
            dep.Append('\n');
            foreach (var a in modules.Aliases(m))
                alias.Append("alias ").Append(a).Append(' ').Append(m).Append('\n');
        }
        all[$"{dir}/modules.dep"] = new Entry(EntryKind.File, 0x1A4, Encoding.UTF8.GetBytes(dep.ToString()), null, null, 0, 0);
        all[$"{dir}/modules.alias"] = new Entry(EntryKind.File, 0x1A4, Encoding.UTF8.GetBytes(alias.ToString()), null, null, 0, 0);
        foreach (var name in new[] { "modules.order", "modules.builtin" })
        {
            var host = Path.Combine(modules.Directory, name);
            if (File.Exists(host))
                all[$"{dir}/{name}"] = new Entry(EntryKind.File, 0x1A4, null, host, null, 0, 0);
        }
    }

    /// <summary>A host file's permission bits (0644 where the host has none).</summary>
    internal static uint UnixMode(string hostPath) =>
        OperatingSystem.IsWindows() ? 0x1A4u : (uint)File.GetUnixFileMode(hostPath) & 0xFFF;

    private static string Key(string guestPath)
    {
        var key = guestPath.Replace('\\', '/').Trim('/');
        if (key.Length == 0 || key.Split('/').Any(p => p is "" or "." or ".."))
            throw new LivegraftException(ExitCode.InvalidInput, VmErrors.BadGuestPath, $"bad guest path '{guestPath}'");
        return key;
    }

    private enum EntryKind { Directory, File, Symlink, CharDevice }

    private sealed record Entry(EntryKind Kind, uint Mode, byte[]? Content, string? HostPath, string? Target, uint Major, uint Minor);
}
