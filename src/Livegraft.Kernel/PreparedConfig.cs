namespace Livegraft.Kernel;

/// <summary>
/// Checks that preparing a tree kept the distro's config. <c>make olddefconfig</c> recomputes the
/// options Kconfig derives from the build machine's tools (<c>CONFIG_PAHOLE_VERSION</c> and the BTF
/// options that depend on it, the compiler's abilities, ...): a missing or different tool silently
/// turns options off, and objects compiled in such a tree differ from the shipped kernel's (struct
/// module loses its BTF fields without pahole). Every option of the shipped config must come out
/// the same, except the ones that only describe the Rust toolchain, which C units never see.
/// </summary>
public static class PreparedConfig
{
    /// <summary>Options describing tools whose values do not reach C code.</summary>
    private static bool Ignored(string option) =>
        option.StartsWith("CONFIG_RUSTC_", StringComparison.Ordinal)
        || option.StartsWith("CONFIG_BINDGEN_", StringComparison.Ordinal)
        // Compared by TargetCompiler, which tolerates another name of the same compiler.
        || option == "CONFIG_CC_VERSION_TEXT";

    /// <summary>The options whose value differs between <paramref name="shippedConfig"/> and
    /// <paramref name="preparedConfig"/>, as <c>CONFIG_X: shipped → prepared</c> (<c>unset</c> when absent).</summary>
    public static IReadOnlyList<string> Drift(string shippedConfig, string preparedConfig)
    {
        if (!File.Exists(preparedConfig))
            return ["no prepared .config"];
        var shipped = KernelTarget.ReadConfig(shippedConfig);
        var prepared = KernelTarget.ReadConfig(preparedConfig);
        return [.. shipped.Keys.Union(prepared.Keys, StringComparer.Ordinal)
            .Where(k => !Ignored(k) && shipped.GetValueOrDefault(k) != prepared.GetValueOrDefault(k))
            .Order(StringComparer.Ordinal)
            .Select(k => $"{k}: {shipped.GetValueOrDefault(k) ?? "unset"} → {prepared.GetValueOrDefault(k) ?? "unset"}")];
    }

    /// <summary>The drift that matters for <paramref name="target"/>'s tree at <paramref name="treeRoot"/>:
    /// none when the source or config is overridden (another source's Kconfig knows other options, so
    /// drift is expected there, and run-pre verification proves the objects against the target).</summary>
    public static IReadOnlyList<string> DriftOf(KernelTarget target, string treeRoot) =>
        target.SourceOverride is null && target.ConfigOverride is null ? Drift(target.BuildConfigFile, Path.Combine(treeRoot, ".config")) : [];

    /// <summary>Throws LG0379 when the prepared tree's config drifted from the one it was prepared
    /// with; with an overridden source or config, says what drifted (progress) and goes on.</summary>
    public static void ThrowIfDrifted(KernelTarget target, string treeRoot, Action<string>? progress = null)
    {
        var drift = Drift(target.BuildConfigFile, Path.Combine(treeRoot, ".config"));
        if (drift.Count == 0)
            return;
        if (target.SourceOverride is not null || target.ConfigOverride is not null)
        {
            progress?.Invoke($"note: with the source or config given, {drift.Count} option(s) of the shipped config come out otherwise (e.g. {drift[0]}); run-pre verification decides");
            return;
        }
        var hint = drift.Any(d => d.StartsWith("CONFIG_PAHOLE_VERSION", StringComparison.Ordinal))
            ? " (the BTF options follow pahole's version: install dwarves, scripts/install-deps)" : "";
        throw new LivegraftException(ExitCode.HostFailure, KernelErrors.ConfigDrift,
            $"preparing the tree changed {drift.Count} option(s) of {target.Release}'s config, so its objects would not be the shipped kernel's{hint}: "
            + string.Join("; ", drift.Take(12)) + (drift.Count > 12 ? "; ..." : ""), target.BuildConfigFile);
    }
}
