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

// Per run: total (command sent -> shell on the new kernel), the new kernel's own boot (its uptime at
// the shell), the rest before the new kernel started; for kexec also the kexec_file_load call itself.
var kexec = new List<(double Total, double Kernel, double Load)>();
var firmware = new List<(double Total, double Kernel, double Load)>();
for (var i = 1; i <= runs; i++)
{
    kexec.Add(Measure($"livegraft reboot --kexec --kernel {KernelTarget.ReferenceRelease} --json 2>/dev/null"));
    firmware.Add(Measure("sync; reboot -f"));
    Console.WriteLine($"run {i}: kexec {Show(kexec[^1], true)}; firmware reset {Show(firmware[^1], false)}");
}
var (k, f) = (Median(kexec.Select(x => x.Total)), Median(firmware.Select(x => x.Total)));
Console.WriteLine($"median over {runs} runs: kexec {k:0.00} s (kexec_file_load {Median(kexec.Select(x => x.Load)):0.00} s, " +
    $"before the new kernel {Median(kexec.Select(x => x.Total - x.Kernel)):0.00} s), firmware reset {f:0.00} s " +
    $"(before the kernel {Median(firmware.Select(x => x.Total - x.Kernel)):0.00} s); new kernel to shell {Median(kexec.Select(x => x.Kernel)):0.00} s vs {Median(firmware.Select(x => x.Kernel)):0.00} s");
Console.WriteLine($"firmware reset / kexec = {f / k:0.00}");
return 0;

(double Total, double Kernel, double Load) Measure(string command)
{
    var r = vm.RunRebooting(command);
    if (!r.Rebooted)
        throw new InvalidOperationException($"'{command}' did not reboot (exit {r.ExitCode}): {r.Output}");
    var up = vm.RunChecked("uname -r; cut -d' ' -f1 /proc/uptime").Split('\n', StringSplitOptions.RemoveEmptyEntries);
    if (up[0].Trim() != KernelTarget.ReferenceRelease)
        throw new InvalidOperationException("came back on another kernel");
    var load = System.Text.RegularExpressions.Regex.Match(r.Output, "\"loadSeconds\": ([0-9.]+)");
    return (r.Elapsed.TotalSeconds, double.Parse(up[1], CultureInfo.InvariantCulture),
        load.Success ? double.Parse(load.Groups[1].Value, CultureInfo.InvariantCulture) : 0);
}

static string Show((double Total, double Kernel, double Load) m, bool kexec) =>
    $"{m.Total:0.00} s (" + (kexec ? $"load {m.Load:0.00} s, " : "") + $"before the kernel {m.Total - m.Kernel:0.00} s, kernel to shell {m.Kernel:0.00} s)";

static double Median(IEnumerable<double> values)
{
    var s = values.Order().ToList();
    return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
}
