using Livegraft.Diff;
using System.Globalization;
using Livegraft.Symbols;
using Livegraft.Verify;
using System.Text.RegularExpressions;

namespace Livegraft.Kernel;

/// <summary>One function to replace (a <c>struct klp_func</c>).</summary>
/// <param name="OldName">The function in the running kernel, as kallsyms names it.</param>
/// <param name="NewSymbol">GLOBAL symbol in one of the diff objects implementing the replacement.</param>
/// <param name="Sympos">kallsyms position among same-named symbols of the object; 0 when unique
/// (Documentation/livepatch/livepatch.rst, "old_sympos").</param>
public sealed record KlpFunctionSpec(string OldName, string NewSymbol, int Sympos);

/// <summary>One patched object (a <c>struct klp_object</c>): vmlinux or a module.</summary>
/// <param name="Name"><c>vmlinux</c> or the module name (dashes are turned into underscores).</param>
/// <param name="Functions">Functions to replace in it.</param>
/// <param name="PrePatch">GLOBAL callback symbols (<c>int fn(struct klp_object *)</c>) run in order
/// before patching; the first failure stops the others and the patch.</param>
/// <param name="PostPatch">Callbacks (<c>void fn(struct klp_object *)</c>) run after patching.</param>
/// <param name="PreUnpatch">Callbacks run before unpatching.</param>
/// <param name="PostUnpatch">Callbacks run after unpatching.</param>
public sealed record KlpObjectSpec(
    string Name,
    IReadOnlyList<KlpFunctionSpec> Functions,
    IReadOnlyList<string> PrePatch,
    IReadOnlyList<string> PostPatch,
    IReadOnlyList<string> PreUnpatch,
    IReadOnlyList<string> PostUnpatch)
{
    /// <summary>An object with functions and no callbacks.</summary>
    public KlpObjectSpec(string name, IReadOnlyList<KlpFunctionSpec> functions)
        : this(name, functions, [], [], [], [])
    {
    }

    /// <summary>Diff output objects (<c>.o</c> files) that implement this object's functions and
    /// callbacks; linked into the module.</summary>
    public IReadOnlyList<string> DiffObjects { get; init; } = [];

    /// <summary>True for the kernel image itself.</summary>
    public bool IsVmlinux => Name == "vmlinux";
}

/// <summary>What to build: the name, the objects, and the metadata recorded in <c>.modinfo</c>.</summary>
/// <param name="Name">Patch name; the module is <c>livepatch-NAME.ko</c>, known to the kernel as
/// <c>livepatch_NAME</c>.</param>
/// <param name="Target">The kernel to build for (its headers package is used).</param>
/// <param name="Objects">The patched objects.</param>
public sealed record LivepatchModuleRequest(string Name, KernelTarget Target, IReadOnlyList<KlpObjectSpec> Objects)
{
    /// <summary><c>klp_patch.replace</c>: an atomic replace patch supersedes all earlier ones
    /// (Documentation/livepatch/cumulative-patches.rst). Default true.</summary>
    public bool Replace { get; init; } = true;

    /// <summary>SHA-256 of the source patch, recorded as <see cref="LivegraftInfo.PatchSha256"/>.</summary>
    public string? PatchSha256 { get; init; }

    /// <summary>Symbol namespaces the module imports (<c>MODULE_IMPORT_NS</c>: <c>import_ns=</c> in
    /// <c>.modinfo</c>), for the namespaced exports the patched code uses.</summary>
    public IReadOnlyList<string> ImportNamespaces { get; init; } = [];

    /// <summary>The source patch itself (the fixes it carries, in order), kept in the module's
    /// <c>.livegraft.source</c> section so that a later build can be cumulative over it.</summary>
    public string? Source { get; init; }

    /// <summary>GNU build id of the kernel image the patch was verified against, recorded as
    /// <see cref="LivegraftInfo.KernelBuildId"/> (the host refuses another build of the release).</summary>
    public string? KernelBuildId { get; init; }

    /// <summary>Module names of the patches this one is cumulative over (<see cref="LivegraftInfo.Supersedes"/>).</summary>
    public IReadOnlyList<string> Supersedes { get; init; } = [];

    /// <summary>What the patch fixes, in the builder's words (<see cref="LivegraftInfo.Fixes"/>).</summary>
    public string? Fixes { get; init; }

    /// <summary>More <c>livegraft.*</c> metadata; keys are C identifiers (the prefix is added).</summary>
    public IReadOnlyDictionary<string, string> ExtraInfo { get; init; } = new Dictionary<string, string>();

    /// <summary>What the module checks before klp enables each object (run-pre verification,
    /// docs/verify.md): the functions it replaces or reaches, with their expected code.</summary>
    public IReadOnlyList<FunctionExpectation> Verification { get; init; } = [];

    /// <summary>The target's livepatch core leaves klp relocation targets in place when a patched
    /// module goes away (<see cref="Features.TargetFeatures.ClearsKlpRelocations"/> false): the module
    /// clears them itself in the object's post_unpatch callback, so the module loads again.</summary>
    public bool ClearRelocationsOnModuleRemoval { get; init; }
}

/// <summary>The result of <see cref="LivepatchModule.Build"/>.</summary>
/// <param name="KoPath">The module file.</param>
/// <param name="ModuleName">The name the kernel knows it by (<c>livepatch_NAME</c>).</param>
/// <param name="Info"><c>.modinfo</c> as modinfo printed it (key → values).</param>
/// <param name="KlpRelocations">Livepatch relocations the module carries.</param>
public sealed record BuiltModule(string KoPath, string ModuleName, IReadOnlyDictionary<string, IReadOnlyList<string>> Info, int KlpRelocations);

/// <summary>
/// Builds a livepatch module through kbuild against the target's headers: the fixed C glue of
/// <c>Module/glue</c> (<c>livepatch.c</c>, <c>livegraft_verify.c</c>, <c>livegraft_module.h</c>),
/// the data object <see cref="ModuleDescriptor"/> writes, and the diff objects.
/// </summary>
/// <remarks>
/// Prebuilt objects: kbuild has no rule for <c>diffN.o</c> (there is no <c>diffN.c</c>), so make
/// takes the file as it is; modpost, however, reads each member's <c>.diffN.o.cmd</c> for symbol
/// CRCs (6.1, extract_crcs_for_object), so an empty-command <c>.cmd</c> is written beside each.
/// The diff objects are linked as they are: objtool does not run on them at link time (no IBT or
/// LTO in the reference config).
/// </remarks>
public static class LivepatchModule
{
    /// <summary>The section of the module holding its source patch (<see cref="LivepatchModuleRequest.Source"/>).</summary>
    public const string SourceSection = ".livegraft.source";

    // MODULE_NAME_LEN is 64 - sizeof(unsigned long) = 56, including the NUL.
    private const int ModuleNameMax = 55;
    private static readonly Regex Identifier = new("^[A-Za-z_][A-Za-z0-9_]*$", RegexOptions.CultureInvariant);
    private static readonly Regex PatchName = new("^[A-Za-z0-9_][A-Za-z0-9_-]*$", RegexOptions.CultureInvariant);

    /// <summary>The module's file name without <c>.ko</c>: <c>livepatch-NAME</c>.</summary>
    public static string FileStem(string name) => "livepatch-" + name;

    /// <summary>The name the kernel gives the module: <c>livepatch_NAME</c> with dashes turned
    /// into underscores, as kbuild's name-fix does.</summary>
    public static string ModuleName(string name) => FileStem(name).Replace('-', '_');

    /// <summary>Builds the module in <paramref name="workDir"/> (emptied first) and returns it.</summary>
    /// <exception cref="LivegraftException">LG0339 for an invalid request, LG0340 when kbuild fails,
    /// LG0341 when the result does not carry the target's vermagic or <c>livepatch: Y</c>.</exception>
    public static BuiltModule Build(
        LivepatchModuleRequest request, string workDir, Action<string>? progress = null, CancellationToken cancellationToken = default)
    {
        Validate(request);
        var headers = request.Target.EnsureHeaders(progress);
        if (!File.Exists(Path.Combine(headers, "Makefile")) || !File.Exists(Path.Combine(headers, "Module.symvers")))
            throw new LivegraftException(ExitCode.HostFailure, KernelErrors.HeadersPackageMissing,
                $"{headers} is not a complete headers tree (of {request.Target.Packages.Headers.Spec})");
        var cmdPrefix = Features.TargetFeatures.KbuildCmdPrefix(headers);

        workDir = Path.GetFullPath(workDir);
        if (Directory.Exists(workDir))
            Directory.Delete(workDir, recursive: true);
        Directory.CreateDirectory(workDir);

        var members = new List<string>();
        foreach (var (file, content) in ModuleGlue.Files)
        {
            File.WriteAllBytes(Path.Combine(workDir, file), content);
            if (file.EndsWith(".c", StringComparison.Ordinal))
                members.Add(Path.ChangeExtension(file, ".o"));
        }
        void Prebuilt(string member, string from)
        {
            File.WriteAllText(Path.Combine(workDir, "." + member + ".cmd"), $"{cmdPrefix}{Path.Combine(workDir, member)} := prebuilt by livegraft from {from}\n");
            members.Add(member);
        }
        ModuleDescriptor.Build(request, Info(request)).Write(Path.Combine(workDir, ModuleDescriptor.FileName));
        Prebuilt(ModuleDescriptor.FileName, "the patch description");
        var n = 0;
        foreach (var obj in AllDiffObjects(request))
        {
            var member = "diff" + n.ToString(CultureInfo.InvariantCulture) + ".o";
            File.Copy(obj, Path.Combine(workDir, member));
            Prebuilt(member, obj);
            n++;
        }
        File.WriteAllText(Path.Combine(workDir, "Kbuild"), GenerateKbuild(request.Name, members));

        progress?.Invoke($"building {FileStem(request.Name)}.ko");
        var env = new Dictionary<string, string?>(KernelTree.KbuildEnvironment);
        ProcessRunner.RunChecked(new ProcessSpec("make", ["-C", headers, "M=" + workDir, "-j" + Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture),
                "CC=" + request.Target.Compiler, "modules"])
        {
            WorkingDirectory = workDir,
            OnStdoutLine = progress is null ? null : l => progress(l.Trim()),
            Environment = env,
        }, KernelErrors.ModuleBuildFailed, $"building {FileStem(request.Name)}.ko", cancellationToken: cancellationToken);

        var ko = Path.Combine(workDir, FileStem(request.Name) + ".ko");
        if (!File.Exists(ko))
            throw new LivegraftException(ExitCode.HostFailure, KernelErrors.ModuleBuildFailed, "kbuild succeeded but wrote no module", ko);
        progress?.Invoke("converting livepatch relocations");
        var klp = KlpPostLink.Process(ko);
        var info = ReadInfo(ko);
        Check(request, ko, info);
        return new BuiltModule(ko, ModuleName(request.Name), info, klp);
    }

    /// <summary>Reads a module's <c>.modinfo</c> (key → values in order).</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> ReadInfo(string koPath) =>
        ModuleInfo.Read(koPath).Entries.GroupBy(kv => kv.Key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => (IReadOnlyList<string>)g.Select(kv => kv.Value).ToList(), StringComparer.Ordinal);

    private static void Check(LivepatchModuleRequest request, string ko, IReadOnlyDictionary<string, IReadOnlyList<string>> info)
    {
        string? One(string key) => info.TryGetValue(key, out var v) && v.Count > 0 ? v[0] : null;
        var expected = request.Target.ExpectedVermagic();
        var vermagic = One("vermagic");
        if (vermagic?.Trim() != expected.Trim())
            throw new LivegraftException(ExitCode.VerificationFailed, KernelErrors.ModuleCheckFailed,
                $"vermagic is '{vermagic}', the target needs '{expected.Trim()}'", ko);
        if (One("livepatch") != "Y")
            throw new LivegraftException(ExitCode.VerificationFailed, KernelErrors.ModuleCheckFailed, "the module lacks modinfo livepatch=Y", ko);
        if (One("name") is { } name && name != ModuleName(request.Name))
            throw new LivegraftException(ExitCode.VerificationFailed, KernelErrors.ModuleCheckFailed,
                $"the module is named {name}, expected {ModuleName(request.Name)}", ko);
    }

    private static IEnumerable<string> AllDiffObjects(LivepatchModuleRequest request) =>
        request.Objects.SelectMany(o => o.DiffObjects)
            .Select(Path.GetFullPath).Distinct(StringComparer.Ordinal);

    /// <summary>Checks names, symbols and files; throws LG0339 on the first problem.</summary>
    public static void Validate(LivepatchModuleRequest request)
    {
        LivegraftException Bad(string message) => new(ExitCode.InvalidInput, KernelErrors.ModuleSpecInvalid, message);
        if (!PatchName.IsMatch(request.Name))
            throw Bad($"patch name '{request.Name}' may only contain letters, digits, '_' and '-'");
        if (ModuleName(request.Name).Length > ModuleNameMax)
            throw Bad($"module name {ModuleName(request.Name)} is longer than the kernel's limit of {ModuleNameMax} characters");
        if (request.Objects.Count == 0)
            throw Bad("a livepatch needs at least one object");
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var o in request.Objects)
        {
            var objName = KlpObjectName(o.Name);
            if (!PatchName.IsMatch(o.Name))
                throw Bad($"object name '{o.Name}' is not a module name");
            if (!names.Add(objName))
                throw Bad($"object {objName} is listed twice");
            if (o.Functions.Count == 0 && o.PrePatch.Count + o.PostPatch.Count + o.PreUnpatch.Count + o.PostUnpatch.Count == 0)
                throw Bad($"object {objName} has neither functions nor callbacks");
            var olds = new HashSet<(string, int)>();
            foreach (var f in o.Functions)
            {
                if (!Identifier.IsMatch(f.NewSymbol))
                    throw Bad($"{objName}: new symbol '{f.NewSymbol}' is not a C identifier");
                if (f.OldName.Length == 0 || f.OldName.Any(c => c is '"' or '\\' or '\n' || char.IsControl(c)))
                    throw Bad($"{objName}: bad old function name '{f.OldName}'");
                if (f.Sympos < 0)
                    throw Bad($"{objName}: {f.OldName}: sympos must not be negative");
                if (!olds.Add((f.OldName, f.Sympos)))
                    throw Bad($"{objName}: {f.OldName} (sympos {f.Sympos}) is replaced twice");
            }
            foreach (var cb in o.PrePatch.Concat(o.PostPatch).Concat(o.PreUnpatch).Concat(o.PostUnpatch))
                if (!Identifier.IsMatch(cb))
                    throw Bad($"{objName}: callback '{cb}' is not a C identifier");
        }
        foreach (var ns in request.ImportNamespaces)
            if (!Identifier.IsMatch(ns))
                throw Bad($"symbol namespace '{ns}' is not a C identifier");
        foreach (var (key, value) in request.ExtraInfo)
            if (!Identifier.IsMatch(key) || value.Contains('\0', StringComparison.Ordinal))
                throw Bad($"modinfo entry '{key}' is not a C identifier with a NUL-free value");
        foreach (var obj in AllDiffObjects(request))
            if (!File.Exists(obj))
                throw Bad($"diff object {obj} does not exist");
    }

    /// <summary>The <c>klp_object.name</c> for a parent: null for vmlinux, else the module name with
    /// underscores (the kernel compares it with <c>mod->name</c>).</summary>
    public static string KlpObjectName(string name) => name == "vmlinux" ? "vmlinux" : name.Replace('-', '_');

    /// <summary>The kbuild file: <c>obj-m := livepatch-NAME.o</c>, <c>livepatch-NAME-y := …</c>.</summary>
    public static string GenerateKbuild(string name, IEnumerable<string> members)
    {
        var stem = FileStem(name);
        return $"# Generated by Livegraft.\nobj-m := {stem}.o\n{stem}-y := {string.Join(' ', members)}\n";
    }

    /// <summary>The <c>.modinfo</c> entries the descriptor carries (the glue adds
    /// <c>license</c> and <c>livepatch</c>; modpost adds <c>vermagic</c> and <c>name</c>).</summary>
    private static List<KeyValuePair<string, string>> Info(LivepatchModuleRequest request)
    {
        var info = new List<KeyValuePair<string, string>>
        {
            new("description", "Livegraft live patch " + request.Name),
            new(LivegraftInfo.Version, AuthorHeaders.LivegraftVersion),
            new(LivegraftInfo.KernelRelease, request.Target.Release),
        };
        if (request.KernelBuildId is not null)
            info.Add(new(LivegraftInfo.KernelBuildId, request.KernelBuildId));
        if (request.PatchSha256 is not null)
            info.Add(new(LivegraftInfo.PatchSha256, request.PatchSha256));
        info.Add(new(LivegraftInfo.Objects, string.Join(',', request.Objects.Select(o => KlpObjectName(o.Name)))));
        info.Add(new(LivegraftInfo.Replace, request.Replace ? "Y" : "N"));
        info.Add(new(LivegraftInfo.Functions, string.Join(' ', request.Objects.SelectMany(o =>
            o.Functions.Select(f => $"{KlpObjectName(o.Name)}:{f.OldName},{f.Sympos.ToString(CultureInfo.InvariantCulture)}")))));
        if (request.Supersedes.Count > 0)
            info.Add(new(LivegraftInfo.Supersedes, string.Join(',', request.Supersedes)));
        if (!string.IsNullOrWhiteSpace(request.Fixes))
            info.Add(new(LivegraftInfo.Fixes, request.Fixes.ReplaceLineEndings(" ").Trim()));
        foreach (var ns in request.ImportNamespaces.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
            info.Add(new("import_ns", ns));
        foreach (var (k, v) in request.ExtraInfo.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            info.Add(new(LivegraftInfo.Prefix + k, v));
        return info;
    }
}
