using Livegraft.Symbols;

namespace Livegraft.Symbols.Tests;

/// <summary>Shared inputs: the reference kernel (decoded once per test run) and checked-in fixtures.</summary>
internal static class SymbolFixtures
{
    private static readonly Lazy<byte[]> s_vmlinux = new(() =>
    {
        KernelTarget.Reference.EnsureImage();
        return KernelImage.ReadVmlinux(KernelTarget.Reference.KernelImage);
    });

    private static readonly Lazy<KallsymsTables> s_tables = new(() => KallsymsTables.Read(s_vmlinux.Value, KernelTarget.Reference.KernelImage));

    /// <summary>The reference kernel's vmlinux, decompressed from its bzImage.</summary>
    public static byte[] Vmlinux => s_vmlinux.Value;

    /// <summary>The reference kernel's kallsyms.</summary>
    public static KallsymsTables Tables => s_tables.Value;

    /// <summary>The checked-in fixtures directory (found from the repository root, so it needs no copy step).</summary>
    public static string FixtureDirectory
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Livegraft.slnx")))
                    return Path.Combine(dir.FullName, "tests", "Livegraft.Symbols.Tests", "Fixtures");
            }
            throw new InvalidOperationException("repository root not found above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>/proc/kallsyms of the reference kernel booted in QEMU with nokaslr, no modules loaded.</summary>
    public static string ReferenceDump => Path.Combine(FixtureDirectory, "kallsyms-6.1.0-56-amd64-nokaslr.txt.gz");

    /// <summary>The [module] lines of /proc/kallsyms after insmod of crc16, mbcache, jbd2, ext4, fat, vfat, loop.</summary>
    public static string ModulesDump => Path.Combine(FixtureDirectory, "kallsyms-6.1.0-56-amd64-modules.txt.gz");
}
