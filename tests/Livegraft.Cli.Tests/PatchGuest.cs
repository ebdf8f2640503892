using System.IO.Compression;
using Livegraft.Kernel;
using Livegraft.Vm;

namespace Livegraft.Cli.Tests;

/// <summary>
/// One QEMU guest of one kernel, shared by every case of a test class and booted when the first
/// case needs it: the modules the cases name (<c>module=</c>, <c>needs=</c>) are in its initramfs, each case copies
/// its livepatch module in over the serial line, and <see cref="Reset"/> puts the guest back into a
/// clean state between cases (no live patch, no case module, an empty kernel log), rebooting it when
/// that fails.
/// </summary>
public abstract class PatchGuest : IDisposable
{
    private readonly object _gate = new();
    private VmSession? _vm;

    protected PatchGuest(string release) => Target = new KernelTarget(release);

    /// <summary>The kernel the guest runs and the cases are built for.</summary>
    public KernelTarget Target { get; }

    /// <summary>The running guest: booted on first use, and booted anew when it is gone (a guest
    /// that panicked or was powered off does not take the remaining cases with it).</summary>
    public VmSession Vm
    {
        get
        {
            lock (_gate)
            {
                if (_vm is { IsRunning: true })
                    return _vm;
                _vm?.Dispose();
                _vm = null;
                try
                {
                    _vm = Boot();
                }
                catch (LivegraftException e)
                {
                    // TCG on a loaded machine very rarely panics a guest during boot; one more try.
                    Console.Error.WriteLine($"guest boot failed, booting once more: {e.Message}");
                    _vm = Boot();
                }
                return _vm;
            }
        }
    }

    private VmSession Boot()
    {
        Target.EnsureImage(Console.Error.WriteLine);
        var options = new VmOptions(Target) { CommandTimeout = TimeSpan.FromSeconds(120), LivegraftBinary = NativeBinary.Path };
        foreach (var module in PatchCase.All().SelectMany(c => c.Needs.Prepend(c.Module)).OfType<string>().Distinct(StringComparer.Ordinal))
            options.Modules.Add(module);
        var vm = VmSession.Start(options, Console.Error.WriteLine);
        vm.RunChecked(PatchTrial.GuestHelpers.Replace("\r", "", StringComparison.Ordinal) + "\ntype lp_load >/dev/null");
        return vm;
    }

    /// <summary>Copies a module into the guest (gzipped: the serial line is slow, debug info compresses well).</summary>
    public string Put(string modulePath, string name)
    {
        using var packed = new MemoryStream();
        using (var gz = new GZipStream(packed, CompressionLevel.Optimal, leaveOpen: true))
        using (var ko = File.OpenRead(modulePath))
            ko.CopyTo(gz);
        var guestPath = $"/root/{name}.ko";
        Vm.PutFile(guestPath + ".gz", packed.ToArray());
        Vm.RunChecked($"gunzip -f {guestPath}.gz");
        return guestPath;
    }

    /// <summary>Disables and unloads every live patch, unmounts the filesystems of <paramref name="module"/>, unloads it and clears
    /// the kernel log; reboots the guest if any of that fails.</summary>
    public void Reset(string? module)
    {
        var script = PatchTrial.GuestHelpers.Replace("\r", "", StringComparison.Ordinal) + """

            for p in /sys/kernel/livepatch/*; do [ -d "$p" ] && lp_unload "$(basename "$p")"; done
            [ -z "$(ls /sys/kernel/livepatch)" ] || exit 1
            grep -q '^livepatch_' /proc/modules && exit 1
            """ + (module is null ? "" : $"\numount /proc/sys/fs/binfmt_misc 2>/dev/null; grep ' {module} ' /proc/mounts | cut -d' ' -f2 | while read -r m; do umount \"$m\"; done; ! grep -q '^{module} ' /proc/modules || rmmod {module}")
            + "\ndmesg -c >/dev/null";
        var r = Vm.Run(script);
        if (r.ExitCode != 0 || r.TimedOut)
        {
            Console.Error.WriteLine($"guest state could not be reset ({r.Output.Trim()}); booting a fresh guest");
            lock (_gate)
            {
                _vm?.Dispose();
                _vm = null;
            }
            Vm.RunChecked("dmesg -c >/dev/null");
        }
    }

    public void Dispose()
    {
        lock (_gate)
            _vm?.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>The reference kernel's guest.</summary>
public sealed class Guest61 : PatchGuest
{
    public Guest61() : base(KernelTarget.ReferenceRelease) { }
}

/// <summary>The 6.12 series' guest (Debian's 6.12.117+deb12-amd64).</summary>
public sealed class Guest612 : PatchGuest
{
    public const string Release = "6.12.117+deb12-amd64";

    public Guest612() : base(Release) { }
}
