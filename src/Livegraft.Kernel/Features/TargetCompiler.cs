using System.Text.RegularExpressions;

namespace Livegraft.Kernel.Features;

/// <summary>
/// The compiler a release was built with, as its config records it (<c>CONFIG_CC_VERSION_TEXT</c>,
/// the first line of <c>$(CC) --version</c> on the distro's build machine), compared with the one
/// this machine has. Run-pre verification compares compiled code byte for byte, so another GCC
/// release would make every function differ: that is refused up front with the reason, instead of
/// after a whole build.
/// </summary>
public static partial class TargetCompiler
{
    // "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0"
    [GeneratedRegex(@"^(?<program>\S+)\s+\((?<distro>[^)]*)\)\s+(?<version>[0-9][0-9.]*)")]
    private static partial Regex VersionLine();

    /// <summary><c>CONFIG_CC_VERSION_TEXT</c> of <paramref name="configFile"/>, unquoted.</summary>
    /// <exception cref="LivegraftException">LG0303 when the config is missing; LG0374 when it names no compiler.</exception>
    public static string VersionText(string configFile)
    {
        if (!File.Exists(configFile))
            throw new LivegraftException(ExitCode.HostFailure, KernelErrors.HeadersPackageMissing,
                $"{configFile} not found: the target's headers are not fetched (KernelTarget.EnsureHeaders)");
        var config = KernelTarget.ReadConfig(configFile);
        return config.TryGetValue("CONFIG_CC_VERSION_TEXT", out var text) && text.Trim('"').Length > 0 ? text.Trim('"')
            : throw new LivegraftException(ExitCode.HostFailure, KernelErrors.CompilerMismatch, "the config records no CONFIG_CC_VERSION_TEXT", configFile);
    }

    /// <summary>The program of a version line: <c>gcc-12</c>, <c>x86_64-linux-gnu-gcc-12</c>.</summary>
    public static string ProgramOf(string versionText) => versionText.Split(' ', 2)[0];

    /// <summary>What the comparison found.</summary>
    /// <param name="Target">The target's version line.</param>
    /// <param name="Machine">This machine's <c>--version</c> first line for the same program.</param>
    /// <param name="Warning">Set when only the distro's package revision differs (same GCC release).</param>
    public sealed record Comparison(string Target, string Machine, Diagnostic? Warning);

    /// <summary>Compares the target's compiler with this machine's.</summary>
    /// <exception cref="LivegraftException">LG0374 (exit 3) when the program is missing, is not
    /// GCC, or is another GCC release than the one the kernel was built with.</exception>
    public static Comparison Check(KernelTarget target) => Check(target.Release, target.CompilerVersionText);

    /// <summary>Compares the compiler line <paramref name="wanted"/> that <paramref name="release"/>
    /// was built with with what the same program on this machine says.</summary>
    public static Comparison Check(string release, string wanted)
    {
        var program = ProgramOf(wanted);
        if (!ProcessRunner.Exists(program))
            throw new LivegraftException(ExitCode.HostFailure, KernelErrors.CompilerMismatch,
                $"{release} was built with '{wanted}', but this machine has no {program} (install it: scripts/install-deps)");
        var r = ProcessRunner.Run(new ProcessSpec(program, ["--version"]));
        var have = r.Stdout.Split('\n')[0].Trim();
        if (have == wanted)
            return new Comparison(wanted, have, null);
        var w = VersionLine().Match(wanted);
        var h = VersionLine().Match(have);
        if (!w.Success || !h.Success)
            throw new LivegraftException(ExitCode.HostFailure, KernelErrors.CompilerMismatch,
                $"{release} was built with '{wanted}'; this machine's {program} says '{have}': cannot tell whether they generate the same code");
        if (w.Groups["version"].Value != h.Groups["version"].Value)
            throw new LivegraftException(ExitCode.HostFailure, KernelErrors.CompilerMismatch,
                $"{release} was built with GCC {w.Groups["version"].Value} ('{wanted}'), this machine's {program} is GCC {h.Groups["version"].Value} ('{have}'): "
                + "another compiler release generates other code, so no function would match the running kernel (run-pre verification); install the GCC the kernel was built with");
        return new Comparison(wanted, have, new Diagnostic(KernelErrors.CompilerRevision, Severity.Warning,
            $"{release} was built with '{wanted}', this machine has '{have}': the same GCC release in another distro revision; run-pre verification decides whether the code matches"));
    }
}
