#:project ../../src/Livegraft.Vm
// bench/corpus (issue #14): the real fixes between two Debian source revisions, one fix per
// directory, each built for the older release and loaded in ONE shared guest of it.
// Run: bench/corpus/run FROM=PKG=VER TO=PKG=VER KERNEL=RELEASE [SAMPLE=N SEED=S] [OUT=file.tsv]
using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Text.RegularExpressions;
using Livegraft;
using Livegraft.Kernel;
using Livegraft.Kernel.Build;
using Livegraft.Kernel.Patches;
using Livegraft.Kernel.Updates;
using Livegraft.Vm;

var opts = new Dictionary<string, string>(StringComparer.Ordinal);
foreach (var key in new[] { "FROM", "TO", "KERNEL", "SAMPLE", "SEED", "OUT", "KEEP" })
    if (Environment.GetEnvironmentVariable(key) is { Length: > 0 } v)
        opts[key] = v;
foreach (var a in args)
{
    var eq = a.IndexOf('=', StringComparison.Ordinal);
    if (eq <= 0)
        return Usage($"not KEY=VALUE: {a}");
    opts[a[..eq]] = a[(eq + 1)..];
}
if (!opts.TryGetValue("FROM", out var from) || !opts.TryGetValue("TO", out var to) || !opts.TryGetValue("KERNEL", out var release))
    return Usage("FROM, TO and KERNEL are required");
var sample = opts.TryGetValue("SAMPLE", out var s) ? int.Parse(s, CultureInfo.InvariantCulture) : 0;
var seed = opts.TryGetValue("SEED", out var sd) ? int.Parse(sd, CultureInfo.InvariantCulture) : 1;
var outPath = Path.GetFullPath(opts.GetValueOrDefault("OUT") ?? $"corpus-{release}.tsv");
void Progress(string line) => Console.Error.WriteLine($"corpus [{DateTime.UtcNow:HH:mm:ss}]: {line}");

// 1. The target and both sources. The older source (FROM) must be the one KERNEL was built from:
// its prepared tree is the base every fix is built on.
var target = new KernelTarget(release);
target.EnsureImage(Progress);
var tree = KernelTree.Ensure(target, Progress);
var own = $"{target.SourcePackage}={target.SourceVersion}";
if (from != own)
    return Fail("LG0430", $"FROM={from} is not the source {release} was built from ({own}): fixes are built for the older release, so FROM must be its source");
var toPath = SourceSpec.Resolve(to, Progress);
SourceTreeDiff diff;
using (tree.Lock(Progress))
{
    tree.RecoverJournal(Progress);
    diff = SourceTreeDiff.Compute(tree.Root, toPath, File.Exists(target.SourceTarball) ? target.SourceTarball : null, Progress);
}

// 2. Fixes: the changed code under the directories in scope, one fix per directory.
var code = diff.Code.Where(f => f.Diff is not null).ToList();
var inScope = code.Where(f => InScope(f.Path)).ToList();
var fixes = inScope.GroupBy(f => Path.GetDirectoryName(f.Path)!.Replace('\\', '/'), StringComparer.Ordinal)
    .OrderBy(g => g.Key, StringComparer.Ordinal)
    .Select(g => new Fix(g.Key, [.. g.OrderBy(f => f.Path, StringComparer.Ordinal)]))
    .ToList();
Progress($"{diff.Files.Count} files differ, {code.Count} of them code, {inScope.Count} in scope: {fixes.Count} fixes (directories)");
var outOfScope = code.Where(f => !InScope(f.Path)).Select(f => Path.GetDirectoryName(f.Path)!).Distinct().Order(StringComparer.Ordinal).ToList();
Progress($"code changed outside the scope (not fixes of their own; a fix that needs them is SPANS-DIRS): {string.Join(", ", outOfScope)}");
if (sample > 0 && sample < fixes.Count)
{
    var rng = new Random(seed);
    fixes = [.. fixes.OrderBy(_ => rng.Next()).Take(sample).OrderBy(f => f.Dir, StringComparer.Ordinal)];
    Progress($"sample of {sample} fixes, seed {seed}: {string.Join(" ", fixes.Select(f => f.Dir))}");
}

// 3. Build each fix for KERNEL, as `livegraft build FIX.patch --kernel KERNEL` does.
var work = Directory.CreateTempSubdirectory("livegraft-corpus-").FullName;
try
{
    for (var i = 0; i < fixes.Count; i++)
    {
        var fix = fixes[i];
        var patch = Path.Combine(work, $"fix{i:D3}.patch");
        File.WriteAllText(patch, diff.PatchOf(fix.Files), System.Text.Encoding.Latin1);
        Progress($"[{i + 1}/{fixes.Count}] building {fix.Dir} ({fix.Files.Count} files)");
        var sw = Stopwatch.StartNew();
        try
        {
            fix.Build = PatchBuilder.Build(new BuildRequest(patch, target)
            {
                Name = $"corpus{i:D3}",
                OutputPath = Path.Combine(work, $"corpus{i:D3}.ko"),
                Fixes = $"{fix.Dir} of {from} -> {to}",
            }, line => Progress("  " + line));
        }
        catch (BuildRefusedException e) when (e.Diagnostics.All(d => d.Id == Livegraft.Diff.DiffErrors.NothingChanged))
        {
            fix.Set("NOT-BUILT", e.Diagnostics[0], "no function this configuration runs changed");
        }
        catch (LivegraftException e)
        {
            Classify(fix, e, code);
        }
        fix.Seconds = sw.Elapsed.TotalSeconds;
        Progress($"  {fix.Dir}: {fix.Status ?? "built"} {fix.Id} {fix.Reason} ({fix.Seconds:0} s)");
    }

    // 4. Load every built fix in one shared guest of KERNEL holding every module the fixes patch.
    var built = fixes.Where(f => f.Build is not null).ToList();
    if (built.Count > 0)
        LoadAll(target, built, Progress);

    // 5. Figures.
    var statuses = new[] { "LOADED", "REFUSED", "NOT-BUILT", "BUILD-ERROR", "SPANS-DIRS", "LOAD-FAIL", "CRASH" };
    var counts = statuses.ToDictionary(x => x, x => fixes.Count(f => f.Status == x));
    var considered = fixes.Count - counts["NOT-BUILT"];
    Console.WriteLine($"corpus {from} -> {to} on {release}: {fixes.Count} fixes" + (sample > 0 ? $" (SAMPLE={sample} SEED={seed})" : ""));
    foreach (var x in statuses)
        Console.WriteLine($"  {x,-12} {counts[x],4}");
    Console.WriteLine(considered == 0 ? "rate: no fix changes configured code"
        : $"rate LOADED / (all - NOT-BUILT) = {counts["LOADED"]}/{considered} = {100.0 * counts["LOADED"] / considered:0.0}%");
    var refusals = fixes.Where(f => f.Status == "REFUSED").GroupBy(f => f.Id ?? "?").OrderByDescending(g => g.Count()).ToList();
    if (refusals.Count > 0)
    {
        Console.WriteLine("refusals by id:");
        foreach (var g in refusals)
            Console.WriteLine($"  {g.Key} {g.Count(),3}  {string.Join("; ", g.Select(f => f.Dir + ": " + Short(f.Reason)))}");
    }
    foreach (var f in fixes.Where(f => f.Status is "BUILD-ERROR" or "SPANS-DIRS" or "LOAD-FAIL" or "CRASH"))
        Console.WriteLine($"  {f.Status} {f.Dir}: {f.Id} {Short(f.Reason)}");
    using (var w = new StreamWriter(outPath))
    {
        w.WriteLine("dir\tfiles\tstatus\tid\treason\tseconds");
        foreach (var f in fixes)
            w.WriteLine(string.Join('\t', f.Dir, string.Join(',', f.Files.Select(x => x.Path)), f.Status, f.Id ?? "", Tsv(f.Reason), f.Seconds.ToString("0", CultureInfo.InvariantCulture)));
    }
    Console.WriteLine($"per-fix table: {outPath}");
    if (opts.ContainsKey("KEEP"))
    {
        foreach (var (f, i) in fixes.Select((f, i) => (f, i)))
            File.Copy(Path.Combine(work, $"fix{i:D3}.patch"), Path.ChangeExtension(outPath, null) + $".{f.Dir.Replace('/', '_')}.patch", overwrite: true);
    }
    return counts["CRASH"] == 0 ? 0 : 1;
}
finally
{
    Directory.Delete(work, recursive: true);
}

// Directories in scope: the core subsystems and x86, and the drivers most machines run. Of
// drivers/gpu/drm only the DRM core (files directly in drivers/gpu/drm/), not the vendor drivers.
static bool InScope(string path)
{
    string[] trees = ["kernel/", "mm/", "fs/", "net/", "block/", "security/", "ipc/", "arch/x86/",
        "drivers/net/", "drivers/block/", "drivers/scsi/", "drivers/nvme/", "drivers/md/", "drivers/virtio/", "drivers/char/",
        "drivers/tty/", "drivers/base/", "drivers/input/", "drivers/usb/core/", "drivers/hid/"];
    if (trees.Any(t => path.StartsWith(t, StringComparison.Ordinal)))
        return true;
    return path.StartsWith("drivers/gpu/drm/", StringComparison.Ordinal) && path.Count(c => c == '/') == 3;
}

// A build that did not end in a module: why, as a status.
static void Classify(Fix fix, LivegraftException e, List<ChangedSourceFile> code)
{
    var d = e.Diagnostics.FirstOrDefault(x => x.Severity == Severity.Error) ?? e.Diagnostics[0];
    switch (d.Id)
    {
        case "LG0333": // no unit of this configuration reached
            fix.Set("NOT-BUILT", d, d.Message);
            return;
        case "LG0337": // a patched unit did not compile: does it need a change outside its directory?
            var needs = NeededElsewhere(fix, e.Message, code);
            if (needs.Count > 0)
                fix.Set("SPANS-DIRS", d, "needs " + string.Join(", ", needs) + ": " + FirstError(e.Message));
            else
                fix.Set("BUILD-ERROR", d, FirstError(e.Message));
            return;
    }
    if (e.ExitCode == ExitCode.InvalidInput)
        fix.Set("REFUSED", d, (d.File is null ? "" : d.File + ": ") + (d.Location is null ? "" : d.Location + ": ") + d.Message);
    else
        fix.Set("BUILD-ERROR", d, (d.File is null ? "" : d.File + ": ") + d.Message);
}

// The changed files outside the fix's directory that add an identifier the compiler's errors name.
static List<string> NeededElsewhere(Fix fix, string errors, List<ChangedSourceFile> code)
{
    var names = Regex.Matches(errors, "(?:error|warning): [^\n]*?[‘'](?<id>[A-Za-z_][A-Za-z0-9_]*)[’']")
        .Select(m => m.Groups["id"].Value)
        .Concat(Regex.Matches(errors, @"fatal error: (?<h>[^:\s]+\.h)").Select(m => Path.GetFileName(m.Groups["h"].Value)))
        .Distinct().ToList();
    var result = new List<string>();
    foreach (var f in code.Where(f => Path.GetDirectoryName(f.Path)!.Replace('\\', '/') != fix.Dir))
    {
        var added = string.Join('\n', f.Diff!.Split('\n').Where(l => l.StartsWith('+') && !l.StartsWith("+++", StringComparison.Ordinal)));
        if (names.Any(n => n.EndsWith(".h", StringComparison.Ordinal) ? f.Path.EndsWith("/" + n, StringComparison.Ordinal) && f.Kind == FileChangeKind.Added
                : Regex.IsMatch(added, $@"\b{Regex.Escape(n)}\b")))
            result.Add(f.Path);
    }
    return result;
}

static string FirstError(string message) =>
    message.Split('\n').FirstOrDefault(l => l.Contains("error:", StringComparison.Ordinal))?.Trim() ?? message.Split('\n')[0];

static void LoadAll(KernelTarget target, List<Fix> built, Action<string> progress)
{
    var modules = built.SelectMany(f => f.Build!.Objects).Select(o => o.Name).Where(n => n != "vmlinux").Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
    progress($"booting one {target.Release} guest for {built.Count} built fixes, with modules: {string.Join(" ", modules)}");
    VmSession? vm = null;
    VmSession Vm()
    {
        if (vm is { IsRunning: true })
            return vm;
        vm?.Dispose();
        var options = new VmOptions(target) { CommandTimeout = TimeSpan.FromSeconds(180), Cpus = 1, MemoryMiB = 2048 };
        foreach (var m in modules)
            options.Modules.Add(m);
        vm = VmSession.Start(options, line => progress("  vm: " + line));
        vm.RunChecked("dmesg -c >/dev/null");
        return vm;
    }
    try
    {
        foreach (var fix in built)
        {
            var sw = Stopwatch.StartNew();
            var b = fix.Build!;
            progress($"loading {fix.Dir} ({b.ModuleName}: {string.Join(", ", b.Objects.Select(o => $"{o.Name} {o.Functions.Count} fn"))})");
            try
            {
                LoadOne(Vm(), fix);
            }
            catch (LivegraftException e)
            {
                fix.Set("CRASH", e.Diagnostics.Count > 0 ? e.Diagnostics[0] : null, "the guest stopped answering: " + e.Message.Split('\n')[0]);
                var tail = vm?.ConsoleLog is { } log ? log[Math.Max(0, log.Length - 3000)..] : "";
                progress($"  guest console (last lines):\n{tail}");
                vm?.Dispose();
                vm = null;
            }
            fix.Seconds += sw.Elapsed.TotalSeconds;
            progress($"  {fix.Dir}: {fix.Status} {fix.Reason}");
        }
    }
    finally
    {
        vm?.Dispose();
    }
}

// Load, transition, every target module loaded after the patch is patched (and again after a
// reload), a smoke check, unload; the kernel log must stay clean.
static void LoadOne(VmSession vm, Fix fix)
{
    var b = fix.Build!;
    var name = b.ModuleName;
    var helpers = PatchTrial.GuestHelpers.Replace("\r", "", StringComparison.Ordinal);
    using (var packed = new MemoryStream())
    {
        using (var gz = new GZipStream(packed, CompressionLevel.Optimal, leaveOpen: true))
        using (var ko = File.OpenRead(b.ModulePath))
            ko.CopyTo(gz);
        vm.PutFile($"/root/{name}.ko.gz", packed.ToArray());
    }
    vm.RunChecked($"gunzip -f /root/{name}.ko.gz; dmesg -c >/dev/null");
    var objects = b.Objects.Select(o => (o.Name, Sys: LivepatchModule.KlpObjectName(o.Name))).ToList();
    var notes = new List<string>();
    var loadable = new List<string>();
    foreach (var (m, _) in objects.Where(o => o.Name != "vmlinux"))
    {
        // Whether the module loads in this guest at all, unpatched (some need hardware).
        var probe = vm.Run($"modprobe {m} && rmmod {m}");
        if (probe.ExitCode == 0)
            loadable.Add(m);
        else
            notes.Add($"{m} does not load in the guest even unpatched ({probe.Output.Trim().Split('\n')[^1]}): its patched state is unchecked");
    }
    // What loading the modules unpatched logged (a crypto self-test warning, say) is not the patch's doing.
    var unpatched = vm.Run("dmesg -c").Output;
    foreach (var p in Log.Bad.Where(p => unpatched.Contains(p, StringComparison.Ordinal)))
        notes.Add($"loading the modules unpatched already logged '{unpatched.Split('\n').First(l => l.Contains(p, StringComparison.Ordinal)).Trim()}'");
    var load = vm.Run($"{helpers}\nlp_load /root/{name}.ko {name}", TimeSpan.FromSeconds(150));
    if (load.ExitCode != 0)
    {
        var log = vm.Run("dmesg | tail -15").Output;
        fix.Set("LOAD-FAIL", null, $"load or transition failed (status {load.ExitCode}): {Short(load.Output + " " + log)}");
        Cleanup(vm, name, objects);
        return;
    }
    var failures = new List<string>();
    if (objects.Any(o => o.Name == "vmlinux") && vm.Run($"[ \"$(cat /sys/kernel/livepatch/{name}/vmlinux/patched)\" = 1 ]").ExitCode != 0)
        failures.Add("vmlinux not patched");
    foreach (var m in loadable)
    {
        var sys = LivepatchModule.KlpObjectName(m);
        var check = $"[ \"$(cat /sys/kernel/livepatch/{name}/{sys}/patched)\" = 1 ]";
        var first = vm.Run($"modprobe {m} && {check}");
        if (first.ExitCode != 0)
        {
            failures.Add($"{m} loaded after the patch is not patched: {first.Output.Trim()} [{KlpLog(vm)}]");
            continue;
        }
        var again = vm.Run($"rmmod {m} && modprobe {m} && {check}");
        if (again.ExitCode != 0)
            failures.Add($"{m} unloaded and loaded again is not patched: {again.Output.Trim()} [{KlpLog(vm)}]");
    }
    var smoke = vm.Run("cat /proc/self/status /proc/modules >/dev/null && ls -R /sys/kernel/livepatch >/dev/null && echo smoke-ok");
    if (smoke.ExitCode != 0 || !smoke.Output.Contains("smoke-ok", StringComparison.Ordinal))
        failures.Add("smoke check failed: " + smoke.Output.Trim());
    var unload = vm.Run($"{helpers}\nlp_unload {name}", TimeSpan.FromSeconds(150));
    if (unload.ExitCode != 0)
        failures.Add($"unload failed (status {unload.ExitCode}): {unload.Output.Trim()}");
    var dmesg = vm.Run("dmesg").Output;
    var bad = Log.Bad.Where(p => dmesg.Contains(p, StringComparison.Ordinal)).ToList();
    Cleanup(vm, name, objects);
    if (bad.Count > 0)
    {
        var line = dmesg.Split('\n').First(l => bad.Any(p => l.Contains(p, StringComparison.Ordinal)));
        fix.Set("CRASH", null, $"kernel log: {line.Trim()}");
        vm.Reboot(); // a kernel that warned or oopsed is not trusted for the next fix
        vm.RunChecked("dmesg -c >/dev/null");
        return;
    }
    if (failures.Count > 0)
        fix.Set("LOAD-FAIL", null, string.Join("; ", failures));
    else
        fix.Set("LOADED", null, notes.Count > 0 ? string.Join("; ", notes) : "");
}

// The kernel's own words on a failed module load while the patch is in place.
static string KlpLog(VmSession vm) =>
    string.Join(" | ", vm.Run("dmesg | grep -iE 'livepatch|relocation|klp|symbol' | tail -3").Output.Trim().Split('\n').Select(l => l.Trim()));

static void Cleanup(VmSession vm, string name, List<(string Name, string Sys)> objects)
{
    var helpers = PatchTrial.GuestHelpers.Replace("\r", "", StringComparison.Ordinal);
    var r = vm.Run($"{helpers}\nfor p in /sys/kernel/livepatch/*; do [ -d \"$p\" ] && lp_unload \"$(basename \"$p\")\"; done; " +
        string.Concat(objects.Where(o => o.Name != "vmlinux").Select(o => $"rmmod {o.Name} 2>/dev/null; ")) + $"rm -f /root/{name}.ko; dmesg -c >/dev/null; [ -z \"$(ls /sys/kernel/livepatch)\" ]",
        TimeSpan.FromSeconds(150));
    if (r.ExitCode != 0)
    {
        Console.Error.WriteLine($"corpus: the guest could not be reset ({r.Output.Trim()}); rebooting it");
        vm.Reboot();
    }
}

static string Short(string? s) => s is null ? "" : Regex.Replace(s, @"\s+", " ").Trim() is var t && t.Length > 300 ? t[..300] + "…" : Regex.Replace(s, @"\s+", " ").Trim();

static string Tsv(string? s) => Regex.Replace(s ?? "", @"[\t\r\n]+", " ").Trim();

static int Usage(string why)
{
    Console.Error.WriteLine($"error LG0431: {why}\nusage: bench/corpus/run FROM=PKG=VER TO=PKG=VER KERNEL=RELEASE [SAMPLE=N SEED=S] [OUT=file.tsv] [KEEP=1]");
    return 1;
}

static int Fail(string id, string message)
{
    Console.Error.WriteLine($"error {id}: {message}");
    return 2;
}

/// <summary>What in the kernel log makes a fix CRASH.</summary>
static class Log
{
    public static readonly string[] Bad = ["BUG:", "Oops:", "WARNING:", "general protection fault"];
}

/// <summary>One fix: the changed code files of one directory.</summary>
sealed class Fix(string dir, List<ChangedSourceFile> files)
{
    public string Dir { get; } = dir;
    public List<ChangedSourceFile> Files { get; } = files;
    public BuildReport? Build { get; set; }
    public string? Status { get; private set; }
    public string? Id { get; private set; }
    public string? Reason { get; private set; }
    public double Seconds { get; set; }

    public void Set(string status, Diagnostic? d, string reason)
    {
        Status = status;
        Id = d?.Id;
        Reason = reason;
    }
}
