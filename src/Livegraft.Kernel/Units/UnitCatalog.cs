using System.Text.RegularExpressions;

namespace Livegraft.Kernel.Units;

/// <summary>One object kbuild compiles from a source file for the configured kernel.</summary>
/// <param name="Object">Tree-relative object, e.g. <c>fs/proc/cmdline.o</c>.</param>
/// <param name="Source">Tree-relative source, e.g. <c>fs/proc/cmdline.c</c>.</param>
/// <param name="Parent"><c>vmlinux</c> or the module name (underscores).</param>
/// <param name="ModFile">kbuild's <c>KBUILD_MODFILE</c> (module path without <c>.ko</c>), when known.</param>
public sealed record CatalogEntry(string Object, string Source, string Parent, string? ModFile);

/// <summary>
/// Every object kbuild would compile for the tree's config, with its parent, taken from kbuild
/// itself: a dry run <c>make -n -k vmlinux modules</c> with a marker in KCFLAGS (so that objects
/// already compiled in the tree are listed too) prints one compile command per object.
/// </summary>
/// <remarks>
/// The dry run takes about 20 s on two cores and is cached per prepared tree in
/// <see cref="KernelTarget.UnitCatalogFile"/>. Objects that are not part of vmlinux or a module
/// (host tools, the boot stub, the vDSO and real-mode images, purgatory) are left out: Livegraft
/// cannot patch them.
/// </remarks>
public sealed class UnitCatalog
{
    /// <summary>The catalog's format, in its header and file name. 2: the dry run is serial (-j1);
    /// version 1's parallel dry run could interleave two sub-makes' long command lines in one pipe
    /// and lose objects (kernel/sys.o on 6.12).</summary>
    public const int FormatVersion = 2;
    private static readonly string Header = $"# livegraft unit catalog {FormatVersion}";
    private static readonly Regex Compile = new(@"\s-c -o (\S+\.o) (\S+\.[cS])(?=\s|;|$)", RegexOptions.CultureInvariant);
    private static readonly string[] Unpatchable =
    [
        "scripts/", "tools/", "usr/", "arch/x86/boot/", "arch/x86/realmode/", "arch/x86/entry/vdso/",
        "arch/x86/purgatory/", "certs/", "samples/",
    ];

    private readonly Dictionary<string, CatalogEntry> _bySource;
    private readonly Dictionary<string, CatalogEntry> _byObject;

    private UnitCatalog(IEnumerable<CatalogEntry> entries)
    {
        _byObject = new(StringComparer.Ordinal);
        _bySource = new(StringComparer.Ordinal);
        foreach (var e in entries)
        {
            _byObject.TryAdd(e.Object, e);
            _bySource.TryAdd(e.Source, e);
        }
    }

    /// <summary>Every entry, by object path.</summary>
    public IReadOnlyCollection<CatalogEntry> Entries => _byObject.Values;

    /// <summary>The entry compiled from <paramref name="source"/>, if the config builds it.</summary>
    public CatalogEntry? BySource(string source) => _bySource.GetValueOrDefault(source);

    /// <summary>The entry for <paramref name="obj"/>, if the config builds it.</summary>
    public CatalogEntry? ByObject(string obj) => _byObject.GetValueOrDefault(obj);

    /// <summary>Loads the cached catalog of <paramref name="tree"/>, producing it with a kbuild dry
    /// run when missing or older than the tree's stamp.</summary>
    public static UnitCatalog Load(KernelTree tree, Action<string>? progress = null, CancellationToken cancellationToken = default)
    {
        var file = tree.Target.UnitCatalogFile;
        var key = $"{Header} {tree.Stamp.GetValueOrDefault("config-sha256")} {tree.Stamp.GetValueOrDefault("prepared")}";
        if (File.Exists(file))
        {
            using var reader = new StreamReader(file);
            if (reader.ReadLine() == key)
            {
                var entries = new List<CatalogEntry>();
                while (reader.ReadLine() is { } line)
                {
                    var p = line.Split('\t');
                    if (p.Length == 4)
                        entries.Add(new CatalogEntry(p[0], p[1], p[2], p[3].Length == 0 ? null : p[3]));
                }
                return new UnitCatalog(entries);
            }
        }
        progress?.Invoke("listing the objects this config builds (kbuild dry run)");
        var dry = file + ".dry-run";
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        // -k: the Debian config names a signing key that only exists on the distro's build
        // machines (certs/); that target fails and everything else is still listed.
        // -j1: with parallel jobs, sub-makes print their (5 KB) command lines into one pipe, and a
        // write above PIPE_BUF is not atomic: interleaved lines would lose objects.
        var result = tree.Make(["vmlinux", "modules"], kcflags: "-D__LIVEGRAFT_CATALOG_DRY_RUN", extraArgs: ["-n", "-k", "-j1"],
            check: false, stdoutFile: dry, cancellationToken: cancellationToken);
        try
        {
            var catalog = new UnitCatalog(ParseDryRun(File.ReadLines(dry)));
            if (catalog._byObject.Count < 100)
                throw new LivegraftException(ExitCode.HostFailure, KernelErrors.CatalogFailed,
                    $"kbuild's dry run listed only {catalog._byObject.Count} objects (exit {result.ExitCode}):\n{result.Tail()}");
            var tmp = file + ".tmp";
            using (var w = new StreamWriter(tmp))
            {
                w.Write(key + "\n");
                foreach (var e in catalog._byObject.Values.OrderBy(e => e.Object, StringComparer.Ordinal))
                    w.Write($"{e.Object}\t{e.Source}\t{e.Parent}\t{e.ModFile}\n");
            }
            File.Move(tmp, file, overwrite: true);
            return catalog;
        }
        finally
        {
            File.Delete(dry);
        }
    }

    /// <summary>Builds a catalog from lines of <c>make -n</c> output (exposed for tests).</summary>
    public static UnitCatalog FromDryRun(IEnumerable<string> lines) => new(ParseDryRun(lines));

    private static IEnumerable<CatalogEntry> ParseDryRun(IEnumerable<string> lines)
    {
        foreach (var line in lines)
        {
            // The first "-c -o X.o X.c" of a line is the compile; later ones are quoted copies
            // (fixdep, genksyms) of the same command.
            var m = Compile.Match(line);
            if (!m.Success)
                continue;
            var obj = Normalize(m.Groups[1].Value);
            var src = Normalize(m.Groups[2].Value);
            if (Unpatchable.Any(p => obj.StartsWith(p, StringComparison.Ordinal)))
                continue;
            var cmd = KbuildCommand.FromCommandLine(line[..m.Index]);
            if (cmd.IsModule && cmd.ModName is null)
                continue;
            yield return new CatalogEntry(obj, src, cmd.Parent, cmd.ModFile);
        }
    }

    private static string Normalize(string p) => p.StartsWith("./", StringComparison.Ordinal) ? p[2..] : p;
}
