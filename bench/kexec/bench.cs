#:project ../../src/Livegraft.Vm
// Measures, in one guest, reboot command → ready shell through kexec and through a firmware reset.
// Run: bench/kexec/run (RUNS=3 by default; LIVEGRAFT_BIN overrides the NativeAOT binary).
using System.Globalization;
using Livegraft.Kernel;
using Livegraft.Vm;

var runs = int.TryParse(Environment.GetEnvironmentVariable("RUNS"), out var n) && n > 0 ? n : 3;
var bin = Environment.GetEnvironmentVariable("LIVEGRAFT_BIN") is { Length: > 0 } b ? b : Path.GetFullPath("artifacts/livegraft/livegraft");
KernelTarget.Reference.EnsureImage();
var options = new VmOptions(KernelTarget.Reference) { LivegraftBinary = bin, FirmwareReboot = true };
options.BootImages.Add(KernelTarget.Reference);
using var vm = VmSession.Start(options, line => Console.Error.WriteLine("bench: " + line));
Console.WriteLine($"first boot (QEMU start to shell): {vm.BootTime.TotalSeconds:0.00} s");

var kexec = new List<double>();
var firmware = new List<double>();
for (var i = 1; i <= runs; i++)
{
    kexec.Add(Measure($"livegraft reboot --kexec --kernel {KernelTarget.ReferenceRelease} >/dev/null 2>&1"));
    firmware.Add(Measure("sync; reboot -f"));
    Console.WriteLine($"run {i}: kexec {kexec[^1]:0.00} s, firmware reset {firmware[^1]:0.00} s");
}
var (k, f) = (Median(kexec), Median(firmware));
Console.WriteLine($"median over {runs} runs: kexec {k:0.00} s, firmware reset {f:0.00} s; firmware/kexec = {f / k:0.00}x");
return 0;

double Measure(string command)
{
    var r = vm.RunRebooting(command);
    if (!r.Rebooted)
        throw new InvalidOperationException($"'{command}' did not reboot (exit {r.ExitCode}): {r.Output}");
    if (vm.RunChecked("uname -r").Trim() != KernelTarget.ReferenceRelease)
        throw new InvalidOperationException("came back on another kernel");
    return r.Elapsed.TotalSeconds;
}

static double Median(List<double> values)
{
    var s = values.Order().ToList();
    return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
}
