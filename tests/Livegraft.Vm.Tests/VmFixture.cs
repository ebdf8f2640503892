using Livegraft.Kernel;

namespace Livegraft.Vm.Tests;

/// <summary>One booted reference guest shared by the tests of a class (a boot costs ~10 s under TCG).</summary>
public sealed class VmFixture : IDisposable
{
    public VmFixture()
    {
        KernelTarget.Reference.EnsureImage();
        var options = new VmOptions(KernelTarget.Reference) { CommandTimeout = TimeSpan.FromSeconds(60) };
        options.Modules.Add("dummy");
        options.Executables["/usr/local/bin/hostxz"] = "/usr/bin/xz";
        options.Files.Add(new GuestFile(HostFile, "/root/hello.txt", 0x1A4));
        // Stands in for the NativeAOT livegraft (publishing it here would cost minutes): a
        // dynamically linked glibc program goes the same LivegraftBinary → /usr/bin/livegraft route.
        options.LivegraftBinary = CompileNativeStandIn();
        Vm = VmSession.Start(options);
    }

    /// <summary>A small host file placed in the initramfs.</summary>
    public static string HostFile { get; } = WriteHostFile();

    public VmSession Vm { get; }

    public void Dispose()
    {
        Vm.Dispose();
        File.Delete(HostFile);
        File.Delete(StandInPath);
    }

    private static string StandInPath => Path.Combine(Path.GetTempPath(), $"livegraft-vm-test-{Environment.ProcessId}-native");

    private static string CompileNativeStandIn()
    {
        var source = StandInPath + ".c";
        File.WriteAllText(source, "#include <stdio.h>\nint main(int argc, char **argv) { printf(\"native stand-in %d\\n\", argc); return 0; }\n");
        var gcc = ProcessRunner.Run(new ProcessSpec("gcc", ["-O1", "-o", StandInPath, source]));
        File.Delete(source);
        Assert.True(gcc.ExitCode == 0, "gcc: " + gcc.Stderr);
        return StandInPath;
    }

    private static string WriteHostFile()
    {
        var path = Path.Combine(Path.GetTempPath(), $"livegraft-vm-test-{Environment.ProcessId}.txt");
        File.WriteAllText(path, "hello from the host\n");
        return path;
    }
}
