using System.ComponentModel;
using System.Diagnostics;

namespace Livegraft.Vm;

/// <summary>Runs short host tools (<c>ldd</c>, <c>mkfs.ext4</c>, <c>busybox --list-full</c>).</summary>
internal static class HostTool
{
    /// <summary>Runs <paramref name="file"/>; returns exit code and combined stdout/stderr.</summary>
    public static (int ExitCode, string Stdout, string Stderr) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        Process process;
        try
        {
            process = Process.Start(psi)!;
        }
        catch (Win32Exception e)
        {
            throw new LivegraftException(ExitCode.HostFailure, "LG0700", $"cannot run {file}: {e.Message} (run scripts/install-deps)");
        }
        using (process)
        {
            process.StandardInput.Close();
            var stderr = process.StandardError.ReadToEndAsync();
            var stdout = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            return (process.ExitCode, stdout, stderr.Result);
        }
    }

    /// <summary>Finds a tool in <c>PATH</c> or the sbin directories, which a non-login root shell may lack.</summary>
    public static string Find(string name)
    {
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"]);
        foreach (var dir in dirs)
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
                return candidate;
        }
        return name;
    }
}
