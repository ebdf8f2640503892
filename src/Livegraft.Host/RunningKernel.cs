namespace Livegraft.Host;

/// <summary>One bit of the kernel taint mask, as <c>kernel/panic.c</c>'s <c>taint_flags</c> prints it.</summary>
/// <param name="Bit">Bit number in <c>/proc/sys/kernel/tainted</c>.</param>
/// <param name="Letter">The letter <c>print_tainted()</c> shows.</param>
/// <param name="Name">The kernel's constant, e.g. <c>TAINT_LIVEPATCH</c>.</param>
/// <param name="Description">What it means (admin-guide/tainted-kernels.rst).</param>
public sealed record TaintFlag(int Bit, char Letter, string Name, string Description)
{
    /// <summary>Every flag the 6.1 kernel knows, in bit order.</summary>
    public static IReadOnlyList<TaintFlag> All { get; } =
    [
        new(0, 'P', "TAINT_PROPRIETARY_MODULE", "proprietary module loaded"),
        new(1, 'F', "TAINT_FORCED_MODULE", "module force loaded"),
        new(2, 'S', "TAINT_CPU_OUT_OF_SPEC", "kernel running on an out of specification system"),
        new(3, 'R', "TAINT_FORCED_RMMOD", "module force unloaded"),
        new(4, 'M', "TAINT_MACHINE_CHECK", "processor reported a machine check exception"),
        new(5, 'B', "TAINT_BAD_PAGE", "bad page referenced or unexpected page flags"),
        new(6, 'U', "TAINT_USER", "taint requested by userspace"),
        new(7, 'D', "TAINT_DIE", "kernel died recently (oops or BUG)"),
        new(8, 'A', "TAINT_OVERRIDDEN_ACPI_TABLE", "ACPI table overridden by user"),
        new(9, 'W', "TAINT_WARN", "kernel issued warning"),
        new(10, 'C', "TAINT_CRAP", "staging driver loaded"),
        new(11, 'I', "TAINT_FIRMWARE_WORKAROUND", "workaround for bug in platform firmware applied"),
        new(12, 'O', "TAINT_OOT_MODULE", "externally-built (out-of-tree) module loaded"),
        new(13, 'E', "TAINT_UNSIGNED_MODULE", "unsigned module loaded"),
        new(14, 'L', "TAINT_SOFTLOCKUP", "soft lockup occurred"),
        new(15, 'K', "TAINT_LIVEPATCH", "kernel has been live patched"),
        new(16, 'X', "TAINT_AUX", "auxiliary taint, defined for and used by distros"),
        new(17, 'T', "TAINT_RANDSTRUCT", "kernel was built with the struct randomization plugin"),
        new(18, 'N', "TAINT_TEST", "an in-kernel test has been run"),
    ];

    /// <summary>The flags set in a taint mask (unknown bits are reported as <c>?</c>).</summary>
    public static IReadOnlyList<TaintFlag> Decode(ulong mask)
    {
        var flags = new List<TaintFlag>();
        for (var bit = 0; bit < 64; bit++)
        {
            if ((mask & (1UL << bit)) == 0)
                continue;
            flags.Add(bit < All.Count ? All[bit] : new TaintFlag(bit, '?', "TAINT_" + bit, "unknown taint bit"));
        }
        return flags;
    }

    /// <summary>The letters of a mask, e.g. <c>OEK</c>.</summary>
    public static string Letters(ulong mask) => new(Decode(mask).Select(f => f.Letter).ToArray());
}

/// <summary>Facts about the running kernel, read from procfs and sysfs.</summary>
/// <param name="Release">What <c>uname -r</c> prints.</param>
/// <param name="BuildId">GNU build id of the running kernel (hex), from <c>/sys/kernel/notes</c>, if readable.</param>
/// <param name="Tainted">The taint mask.</param>
/// <param name="CommandLine">The kernel command line.</param>
public sealed record RunningKernel(string Release, string? BuildId, ulong Tainted, string CommandLine)
{
    /// <summary>Reads the running kernel's facts (LG0520 when procfs is unreadable).</summary>
    public static RunningKernel Read(HostPaths paths)
    {
        string release;
        try
        {
            release = File.ReadAllText(paths.OsRelease).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LivegraftException(ExitCode.HostFailure, "LG0520", "cannot read the running kernel's release: " + e.Message, paths.OsRelease);
        }
        string? buildId = null;
        try
        {
            buildId = ParseBuildId(File.ReadAllBytes(paths.KernelNotes));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        var tainted = 0UL;
        if (File.Exists(paths.Tainted) && ulong.TryParse(File.ReadAllText(paths.Tainted).Trim(), out var t))
            tainted = t;
        var cmdline = File.Exists(paths.CommandLine) ? File.ReadAllText(paths.CommandLine).Trim() : "";
        return new RunningKernel(release, buildId, tainted, cmdline);
    }

    /// <summary>The GNU build id (hex) in a run of ELF notes, as <c>/sys/kernel/notes</c> holds them, or null.</summary>
    public static string? ParseBuildId(ReadOnlySpan<byte> notes) => Livegraft.Elf.ElfNotes.GnuBuildId(notes);

    /// <summary>True when the command line has <c>name=value</c> as one word.</summary>
    public bool HasParameter(string nameAndValue) =>
        CommandLine.Split(' ', StringSplitOptions.RemoveEmptyEntries).Contains(nameAndValue, StringComparer.Ordinal);

    /// <summary>Taint letters, e.g. <c>OEK</c>.</summary>
    public string TaintLetters => TaintFlag.Letters(Tainted);
}
