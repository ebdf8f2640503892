#:project ../../src/Livegraft.Kernel
// Prints how long each step of reading the reference kernel's symbols takes.
// Run: dotnet run bench/symbols/bench.cs [IMAGE]
using System.Diagnostics;
using Livegraft.Kernel;
using Livegraft.Symbols;

var image = args.Length > 0 ? args[0] : KernelTarget.Reference.KernelImage;
if (args.Length == 0)
    KernelTarget.Reference.EnsureImage();
var watch = Stopwatch.StartNew();
var vmlinux = KernelImage.ReadVmlinux(image);
Console.WriteLine($"decompress     {watch.Elapsed.TotalMilliseconds,8:F1} ms  {vmlinux.Length / 1048576.0:F1} MiB vmlinux");
for (var round = 1; round <= 3; round++)
{
    watch.Restart();
    var layout = KallsymsTables.Locate(vmlinux, image);
    var located = watch.Elapsed;
    var symbols = KallsymsTables.Decode(vmlinux, layout, image);
    var decoded = watch.Elapsed;
    var table = new SymbolTable(SymbolTable.VmlinuxObject, symbols);
    var indexed = watch.Elapsed;
    Console.WriteLine($"round {round}: locate {located.TotalMilliseconds,7:F1} ms  decode {(decoded - located).TotalMilliseconds,7:F1} ms  " +
        $"index {(indexed - decoded).TotalMilliseconds,7:F1} ms  ({table.Count} symbols)");
}
