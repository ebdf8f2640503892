using System.Globalization;
using Livegraft.Diff;

namespace Livegraft.Kernel.Features;

/// <summary>
/// Everything that differs between kernels and that Livegraft needs to know, read from one
/// prepared tree (docs/targets.md): the special-section layouts (a probe compiled against the
/// tree), kbuild's command-file format, the compiler, and the livepatch core's abilities. Recorded
/// in the tree as <see cref="FileName"/> and recomputed when the tree or the probe changes.
/// </summary>
public sealed record TargetFeatures
{
    /// <summary>The record's file name at the root of a prepared tree.</summary>
    public const string FileName = ".livegraft-features";

    /// <summary>Special-section entry sizes and field offsets (the probe's values).</summary>
    public required SpecialSectionSizes Sizes { get; init; }

    /// <summary>The variable kbuild's <c>.NAME.o.cmd</c> files store the command in:
    /// <c>cmd_</c> (6.1) or <c>savedcmd_</c> (6.2 and later), as the tree's <c>scripts/Kbuild.include</c> writes it.</summary>
    public required string CmdFilePrefix { get; init; }

    /// <summary>The livepatch core clears the places its klp relocations wrote into a module when
    /// that module goes away (<c>klp_clear_object_relocs</c> in <c>kernel/livepatch/core.c</c>, 6.12),
    /// so a patched module can be unloaded and loaded again while the patch stays. 6.1 lacks it.</summary>
    public required bool ClearsKlpRelocations { get; init; }

    /// <summary>Functions carry <c>__pfx_</c> padding symbols before their entry (<c>CONFIG_PREFIX_SYMBOLS</c>),
    /// and how many bytes of padding (<c>CONFIG_FUNCTION_PADDING_BYTES</c>, 0 when none).</summary>
    public required int FunctionPaddingBytes { get; init; }

    /// <summary>Indirect branch tracking: functions start with ENDBR64 and the fentry call follows it (<c>CONFIG_X86_KERNEL_IBT</c>).</summary>
    public required bool Ibt { get; init; }

    /// <summary>The compiler the kernel was built with (<c>CONFIG_CC_VERSION_TEXT</c>).</summary>
    public required string CompilerVersionText { get; init; }

    /// <summary>Hash of the probe source the sizes came from: a changed probe recomputes them.</summary>
    public required string ProbeSha256 { get; init; }

    /// <summary>The record as <c>key=value</c> lines.</summary>
    public string ToText()
    {
        var s = Sizes;
        var lines = new List<(string, string)>
        {
            ("probe-sha256", ProbeSha256),
            ("alt-instr", I(s.AltInstr)), ("alt-instr-instrlen", I(s.AltInstrLenOffset)),
            ("bug-entry", I(s.BugEntry)),
            ("jump-entry", I(s.JumpEntry)), ("jump-entry-key", I(s.JumpKeyOffset)),
            ("exception-table-entry", I(s.ExceptionEntry)),
            ("static-call-site", I(s.StaticCallSite)), ("static-call-site-key", I(s.StaticCallKeyOffset)),
            ("orc-entry", I(s.OrcEntry)),
            ("paravirt-patch-site", I(s.ParavirtPatchSite)), ("paravirt-patch-site-len", I(s.ParavirtLenOffset)),
            ("pi-entry", I(s.PrintkIndexEntry)),
            ("cmd-file-prefix", CmdFilePrefix),
            ("klp-clears-relocations", ClearsKlpRelocations ? "yes" : "no"),
            ("function-padding-bytes", I(FunctionPaddingBytes)),
            ("ibt", Ibt ? "yes" : "no"),
            ("compiler", CompilerVersionText),
        };
        return string.Concat(lines.Select(l => $"{l.Item1}={l.Item2}\n"));
    }

    private static string I(int v) => v.ToString(CultureInfo.InvariantCulture);

    /// <summary>Reads a record written by <see cref="ToText"/>; null when a field is missing.</summary>
    public static TargetFeatures? Parse(string text)
    {
        var f = KeyValueLines.Parse(text);
        int? N(string k) => f.TryGetValue(k, out var v) && int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : null;
        if (N("alt-instr") is not { } alt || N("alt-instr-instrlen") is not { } altLen || N("bug-entry") is not { } bug
            || N("jump-entry") is not { } jump || N("jump-entry-key") is not { } jumpKey || N("exception-table-entry") is not { } ex
            || N("static-call-site") is not { } sc || N("static-call-site-key") is not { } scKey || N("orc-entry") is not { } orc
            || N("paravirt-patch-site") is not { } pv || N("paravirt-patch-site-len") is not { } pvLen || N("pi-entry") is not { } pi
            || N("function-padding-bytes") is not { } padding
            || !f.TryGetValue("cmd-file-prefix", out var prefix) || !f.TryGetValue("klp-clears-relocations", out var clears)
            || !f.TryGetValue("ibt", out var ibt) || !f.TryGetValue("compiler", out var compiler) || !f.TryGetValue("probe-sha256", out var probe))
            return null;
        return new TargetFeatures
        {
            Sizes = new SpecialSectionSizes
            {
                AltInstr = alt, AltInstrLenOffset = altLen, BugEntry = bug, JumpEntry = jump, JumpKeyOffset = jumpKey,
                ExceptionEntry = ex, StaticCallSite = sc, StaticCallKeyOffset = scKey, OrcEntry = orc,
                ParavirtPatchSite = pv, ParavirtLenOffset = pvLen, PrintkIndexEntry = pi,
            },
            CmdFilePrefix = prefix,
            ClearsKlpRelocations = clears == "yes",
            FunctionPaddingBytes = padding,
            Ibt = ibt == "yes",
            CompilerVersionText = compiler,
            ProbeSha256 = probe,
        };
    }

    /// <summary>The features of a prepared tree: its record when current, else read anew (the
    /// probe compiles in a scratch directory against the tree) and recorded. The caller holds the
    /// tree lock.</summary>
    /// <exception cref="LivegraftException">LG0376 when the probe does not compile or its object
    /// lacks a value.</exception>
    internal static TargetFeatures Read(KernelTree tree, Action<string>? progress, CancellationToken cancellationToken)
    {
        var path = Path.Combine(tree.Root, FileName);
        if (File.Exists(path) && Parse(File.ReadAllText(path)) is { } recorded && recorded.ProbeSha256 == TargetProbe.SourceSha256)
            return recorded;
        progress?.Invoke($"reading the target's features from {tree.Root}");
        var config = KernelTarget.ReadConfig(Path.Combine(tree.Root, ".config"));
        var features = new TargetFeatures
        {
            Sizes = TargetProbe.Run(tree, progress, cancellationToken),
            CmdFilePrefix = KbuildCmdPrefix(tree.Root),
            ClearsKlpRelocations = FileMentions(Path.Combine(tree.Root, "kernel", "livepatch", "core.c"), "klp_clear_object_relocs"),
            FunctionPaddingBytes = config.GetValueOrDefault("CONFIG_PREFIX_SYMBOLS") == "y"
                && int.TryParse(config.GetValueOrDefault("CONFIG_FUNCTION_PADDING_BYTES"), NumberStyles.None, CultureInfo.InvariantCulture, out var pad) ? pad : 0,
            Ibt = config.GetValueOrDefault("CONFIG_X86_KERNEL_IBT") == "y",
            CompilerVersionText = config.GetValueOrDefault("CONFIG_CC_VERSION_TEXT")?.Trim('"') ?? "",
            ProbeSha256 = TargetProbe.SourceSha256,
        };
        Patches.PatchApplier.AtomicWrite(path, System.Text.Encoding.UTF8.GetBytes(features.ToText()));
        return features;
    }

    /// <summary>Which variable kbuild's command files use in the kbuild tree at <paramref name="root"/>
    /// (a prepared source tree or a headers package): <c>savedcmd_</c> when its
    /// <c>scripts/Kbuild.include</c> writes that, else <c>cmd_</c>.</summary>
    public static string KbuildCmdPrefix(string root) =>
        FileMentions(Path.Combine(root, "scripts", "Kbuild.include"), "savedcmd_") ? "savedcmd_" : "cmd_";

    private static bool FileMentions(string path, string word) =>
        File.Exists(path) && File.ReadAllText(path).Contains(word, StringComparison.Ordinal);
}
