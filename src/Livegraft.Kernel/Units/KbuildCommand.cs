using System.Text.RegularExpressions;

namespace Livegraft.Kernel.Units;

/// <summary>What kbuild's compile command line says about an object: whether it is built for a
/// module, and which one.</summary>
/// <remarks>
/// Linux 6.1 (scripts/Makefile.lib) passes <c>-DKBUILD_BASENAME</c> and <c>-DKBUILD_MODNAME</c>
/// to every C object, built-in or not (a built-in object's modname is its would-be module name,
/// e.g. <c>proc</c> for <c>fs/proc/cmdline.o</c>); <c>-DKBUILD_MODFILE</c> only to built-in
/// objects; and <c>-DMODULE</c> (<c>KBUILD_CFLAGS_MODULE</c>/<c>KBUILD_AFLAGS_MODULE</c>) only to
/// objects that are part of a module (<c>part-of-module</c>). So: <c>-DMODULE</c> present ⇒ parent
/// is the module <c>KBUILD_MODNAME</c>; absent ⇒ vmlinux. Assembler objects get no modname, so a
/// module's <c>.S</c> objects have no known parent and are left out of the catalog.
/// </remarks>
public sealed record KbuildCommand(bool IsModule, string? ModName, string? ModFile)
{
    private static readonly Regex ModuleFlag = new(@"(?:^|\s)-DMODULE(?=\s|$)", RegexOptions.CultureInvariant);
    private static readonly Regex ModNameFlag = new(@"-DKBUILD_MODNAME=\S*?""([A-Za-z0-9_]+)""", RegexOptions.CultureInvariant);
    private static readonly Regex ModFileFlag = new(@"-DKBUILD_MODFILE=\S*?""([^""']+)""", RegexOptions.CultureInvariant);

    /// <summary>The parent the object is linked into: <c>vmlinux</c> or the module name
    /// (underscores, as the kernel knows it).</summary>
    public string Parent => IsModule
        ? ModName ?? throw new LivegraftException(ExitCode.HostFailure, KernelErrors.ParentUnknown, "a module object was compiled without -DKBUILD_MODNAME")
        : "vmlinux";

    /// <summary>Interprets one compiler command line.</summary>
    public static KbuildCommand FromCommandLine(string command)
    {
        var name = ModNameFlag.Match(command);
        var file = ModFileFlag.Match(command);
        return new KbuildCommand(ModuleFlag.IsMatch(command), name.Success ? name.Groups[1].Value : null, file.Success ? file.Groups[1].Value : null);
    }

    /// <summary>Reads <c>dir/.name.o.cmd</c>, the file kbuild writes beside <paramref name="objectPath"/>;
    /// the command is the variable named <paramref name="prefix"/> (<c>cmd_</c> in 6.1,
    /// <c>savedcmd_</c> from 6.2: the target's <c>TargetFeatures.CmdFilePrefix</c>).</summary>
    /// <returns>The command and the dependency list (<c>deps_…</c>, tree-relative paths).</returns>
    public static (KbuildCommand Command, IReadOnlyList<string> Dependencies) ReadCmdFile(string objectPath, string prefix)
    {
        var cmdFile = CmdFileOf(objectPath);
        if (!File.Exists(cmdFile))
            throw new LivegraftException(ExitCode.HostFailure, KernelErrors.ParentUnknown, "kbuild wrote no command file", cmdFile);
        string? command = null;
        var deps = new List<string>();
        var inDeps = false;
        foreach (var raw in File.ReadLines(cmdFile))
        {
            if (command is null && raw.StartsWith(prefix, StringComparison.Ordinal))
            {
                var i = raw.IndexOf(":=", StringComparison.Ordinal);
                command = i < 0 ? raw : raw[(i + 2)..];
                continue;
            }
            if (raw.StartsWith("source_", StringComparison.Ordinal))
            {
                var i = raw.IndexOf(":=", StringComparison.Ordinal);
                if (i > 0)
                    deps.Add(raw[(i + 2)..].Trim());
                continue;
            }
            if (raw.StartsWith("deps_", StringComparison.Ordinal))
            {
                inDeps = true;
                continue;
            }
            if (inDeps)
            {
                var line = raw.Trim();
                if (line.Length == 0)
                {
                    inDeps = false;
                    continue;
                }
                line = line.TrimEnd('\\').Trim();
                // fixdep writes $(wildcard include/config/...) for config symbols: not files.
                if (line.Length > 0 && !line.StartsWith("$(", StringComparison.Ordinal))
                    deps.Add(line.StartsWith("./", StringComparison.Ordinal) ? line[2..] : line);
            }
        }
        if (command is null)
            throw new LivegraftException(ExitCode.HostFailure, KernelErrors.CmdFileUnreadable, $"no {prefix} line in kbuild's command file (the format the target's scripts/Kbuild.include writes)", cmdFile);
        return (FromCommandLine(command), deps);
    }

    /// <summary>kbuild's command file for an object: <c>dir/.name.o.cmd</c>.</summary>
    public static string CmdFileOf(string objectPath) =>
        Path.Combine(Path.GetDirectoryName(objectPath) ?? "", "." + Path.GetFileName(objectPath) + ".cmd");
}
