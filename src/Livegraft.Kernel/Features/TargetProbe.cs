using System.Buffers.Binary;
using Livegraft.Diff;
using Livegraft.Elf;

namespace Livegraft.Kernel.Features;

/// <summary>
/// Compiles <c>Module/probe/livegraft_probe.c</c> against a prepared tree, as an external module
/// object with the tree's own kbuild flags, and reads the struct sizes and field offsets back from
/// the object's <c>.livegraft.probe</c> values.
/// </summary>
public static class TargetProbe
{
    private const string ResourceName = "Livegraft.Kernel.probe.livegraft_probe.c";
    private const string SymbolPrefix = "livegraft_probe_";

    /// <summary>The probe's C source.</summary>
    public static byte[] Source { get; } = LoadSource();

    /// <summary>SHA-256 of <see cref="Source"/>.</summary>
    public static string SourceSha256 { get; } = Sha256Hash.HashHex(Source);

    private static byte[] LoadSource()
    {
        using var s = typeof(TargetProbe).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"embedded resource {ResourceName} missing");
        using var m = new MemoryStream();
        s.CopyTo(m);
        return m.ToArray();
    }

    /// <summary>Compiles the probe in a scratch directory against <paramref name="tree"/> (whose lock
    /// the caller holds) and returns the sizes it measured.</summary>
    /// <exception cref="LivegraftException">LG0376 when it does not compile or a value is missing.</exception>
    public static SpecialSectionSizes Run(KernelTree tree, Action<string>? progress, CancellationToken cancellationToken)
    {
        var dir = CacheLock.WorkDirectoryFor(Path.Combine(tree.Target.CacheDirectory, "probe"));
        Directory.CreateDirectory(dir);
        try
        {
            File.WriteAllBytes(Path.Combine(dir, "livegraft_probe.c"), Source);
            // Optional structs: defined only when the tree's header defines them.
            var flags = new List<string>();
            if (Defines(tree.Root, "arch/x86/include/asm/paravirt_types.h", "struct paravirt_patch_site {"))
                flags.Add("-DLIVEGRAFT_PROBE_PARAVIRT_PATCH_SITE");
            File.WriteAllText(Path.Combine(dir, "Kbuild"), "obj-m := livegraft_probe.o\n" + (flags.Count > 0 ? $"ccflags-y := {string.Join(' ', flags)}\n" : ""));
            progress?.Invoke("compiling the feature probe against the tree");
            tree.Make(["livegraft_probe.o"], extraArgs: ["M=" + dir], errorId: KernelErrors.ProbeFailed,
                what: "compiling the feature probe (src/Livegraft.Kernel/Module/probe/livegraft_probe.c)", cancellationToken: cancellationToken);
            var values = Read(Path.Combine(dir, "livegraft_probe.o"));
            int Get(string name) => values.TryGetValue(name, out var v) ? checked((int)v)
                : throw new LivegraftException(ExitCode.HostFailure, KernelErrors.ProbeFailed, $"the probe object has no {SymbolPrefix}{name}", Path.Combine(dir, "livegraft_probe.o"));
            int Optional(string name) => values.TryGetValue(name, out var v) ? checked((int)v) : 0;
            var paravirt = Optional("paravirt_patch_site");
            return new SpecialSectionSizes
            {
                AltInstr = Get("alt_instr"),
                AltInstrLenOffset = Get("alt_instr_instrlen") is var len && Get("alt_instr_replacementlen") == len + 1 ? len
                    : throw new LivegraftException(ExitCode.HostFailure, KernelErrors.ProbeFailed, "struct alt_instr: replacementlen does not follow instrlen"),
                BugEntry = Get("bug_entry"),
                JumpEntry = Get("jump_entry"),
                JumpKeyOffset = Get("jump_entry_key"),
                ExceptionEntry = Get("exception_table_entry"),
                StaticCallSite = Get("static_call_site"),
                StaticCallKeyOffset = Get("static_call_site_key"),
                OrcEntry = Get("orc_entry"),
                ParavirtPatchSite = paravirt,
                ParavirtLenOffset = paravirt == 0 ? 0 : Get("paravirt_patch_site_len"),
                PrintkIndexEntry = Optional("pi_entry"),
            };
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The <c>livegraft_probe_*</c> values of a compiled probe object.</summary>
    public static IReadOnlyDictionary<string, ulong> Read(string objectPath)
    {
        var file = ElfFile.Read(objectPath);
        var result = new Dictionary<string, ulong>(StringComparer.Ordinal);
        foreach (var sym in file.SymbolTable?.Symbols ?? [])
        {
            if (!sym.Name.StartsWith(SymbolPrefix, StringComparison.Ordinal) || sym.Section is not { } section || section.Data.Length < (int)sym.Value + 8)
                continue;
            result[sym.Name[SymbolPrefix.Length..]] = BinaryPrimitives.ReadUInt64LittleEndian(section.Data.Span[(int)sym.Value..]);
        }
        return result;
    }

    private static bool Defines(string root, string header, string text)
    {
        var path = Path.Combine(root, header);
        return File.Exists(path) && File.ReadAllText(path).Contains(text, StringComparison.Ordinal);
    }
}
