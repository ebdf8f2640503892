using System.Globalization;
using System.Text;
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

    /// <summary>SHA-256 of the source patch, recorded as <c>livegraft_patch_sha256</c>.</summary>
    public string? PatchSha256 { get; init; }

    /// <summary>More <c>livegraft_*</c> metadata; keys must be C identifiers.</summary>
    public IReadOnlyDictionary<string, string> ExtraInfo { get; init; } = new Dictionary<string, string>();

    /// <summary>Diff objects linked in addition to the per-object ones.</summary>
    public IReadOnlyList<string> DiffObjects { get; init; } = [];

    /// <summary>Extra generated C sources compiled into the module (file name → content), e.g. the
    /// run-pre verification table; file names must be <c>[a-z0-9_]+.c</c>.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> ExtraSources { get; init; } = [];
}

/// <summary>Converts the differ's <c>.livegraft.klp_relocs</c> section into real
/// <c>.klp.rela.*</c> sections in a linked module (implemented by Livegraft.Diff).</summary>
public interface IModulePostLink
{
    /// <summary>Rewrites <paramref name="koPath"/> in place.</summary>
    void Process(string koPath);
}

/// <summary>The result of <see cref="LivepatchModule.Build"/>.</summary>
/// <param name="KoPath">The module file.</param>
/// <param name="ModuleName">The name the kernel knows it by (<c>livepatch_NAME</c>).</param>
/// <param name="Info"><c>.modinfo</c> as modinfo printed it (key → values).</param>
public sealed record BuiltModule(string KoPath, string ModuleName, IReadOnlyDictionary<string, IReadOnlyList<string>> Info);

/// <summary>
/// Generates the livepatch module's C glue (<c>livepatch.c</c>: klp_func, klp_object, klp_patch,
/// init) and links it with the diff objects through kbuild against the target's headers package.
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
    /// <summary><c>.modinfo</c> key of the Livegraft version.</summary>
    public const string InfoVersion = "livegraft_version";
    /// <summary><c>.modinfo</c> key of the source patch's SHA-256.</summary>
    public const string InfoPatchSha256 = "livegraft_patch_sha256";
    /// <summary><c>.modinfo</c> key of the kernel release the module is for.</summary>
    public const string InfoKernel = "livegraft_kernel";
    /// <summary><c>.modinfo</c> key listing the patched objects.</summary>
    public const string InfoObjects = "livegraft_objects";
    /// <summary><c>.modinfo</c> key recording <c>klp_patch.replace</c> (<c>Y</c>/<c>N</c>), which a repository
    /// publishes as "cumulative" (docs/fleet.md).</summary>
    public const string InfoReplace = "livegraft_replace";

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
        LivepatchModuleRequest request, string workDir, IModulePostLink? postLink = null,
        Action<string>? progress = null, CancellationToken cancellationToken = default)
    {
        Validate(request);
        var headers = request.Target.HeadersDirectory;
        if (!File.Exists(Path.Combine(headers, "Makefile")) || !File.Exists(Path.Combine(headers, "Module.symvers")))
            throw new LivegraftException(ExitCode.HostFailure, KernelErrors.HeadersPackageMissing,
                $"{headers} is not a complete headers tree: install linux-headers-{request.Target.Release} (scripts/install-deps)");

        workDir = Path.GetFullPath(workDir);
        if (Directory.Exists(workDir))
            Directory.Delete(workDir, recursive: true);
        Directory.CreateDirectory(workDir);

        var members = new List<string> { "livepatch.o" };
        var n = 0;
        foreach (var obj in AllDiffObjects(request))
        {
            var member = "diff" + n.ToString(CultureInfo.InvariantCulture) + ".o";
            File.Copy(obj, Path.Combine(workDir, member));
            File.WriteAllText(Path.Combine(workDir, "." + member + ".cmd"), $"cmd_{Path.Combine(workDir, member)} := prebuilt by livegraft from {obj}\n");
            members.Add(member);
            n++;
        }
        foreach (var (file, content) in request.ExtraSources)
        {
            File.WriteAllText(Path.Combine(workDir, file), content);
            members.Add(Path.ChangeExtension(file, ".o"));
        }
        File.WriteAllText(Path.Combine(workDir, "livepatch.c"), GenerateSource(request));
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
        if (postLink is not null)
        {
            progress?.Invoke("converting livepatch relocations");
            postLink.Process(ko);
        }
        var info = ReadInfo(ko);
        Check(request, ko, info);
        return new BuiltModule(ko, ModuleName(request.Name), info);
    }

    /// <summary>Reads a module's <c>.modinfo</c> with <c>modinfo</c> (key → values in order).</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> ReadInfo(string koPath)
    {
        var result = ProcessRunner.RunChecked(new ProcessSpec("modinfo", ["-0", koPath]), KernelErrors.ModuleCheckFailed, $"modinfo {koPath}");
        var info = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var field in result.Stdout.Split('\0'))
        {
            // modinfo -0 prints NUL-separated records: "key=value" for .modinfo entries and
            // "filename:<spaces>path" for the file itself.
            var end = 0;
            while (end < field.Length && (char.IsAsciiLetterOrDigit(field[end]) || field[end] is '_' or '.' or '-'))
                end++;
            if (end == 0 || end >= field.Length || field[end] is not ('=' or ':'))
                continue;
            var key = field[..end];
            var value = field[end] == ':' ? field[(end + 1)..].TrimStart() : field[(end + 1)..];
            if (!info.TryGetValue(key, out var list))
                info[key] = list = [];
            list.Add(value);
        }
        return info.ToDictionary(kv => kv.Key, kv => (IReadOnlyList<string>)kv.Value, StringComparer.Ordinal);
    }

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
        request.Objects.SelectMany(o => o.DiffObjects).Concat(request.DiffObjects)
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
        foreach (var (file, _) in request.ExtraSources)
            if (!Regex.IsMatch(file, "^[a-z0-9_]+\\.c$", RegexOptions.CultureInvariant) || file is "livepatch.c" || file.StartsWith("diff", StringComparison.Ordinal))
                throw Bad($"extra source name '{file}' is not a plain C file name or clashes with generated ones");
        foreach (var key in request.ExtraInfo.Keys)
            if (!Identifier.IsMatch(key))
                throw Bad($"modinfo key '{key}' is not a C identifier");
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

    /// <summary>Generates <c>livepatch.c</c> (Documentation/livepatch/livepatch.rst, section 5).</summary>
    public static string GenerateSource(LivepatchModuleRequest request)
    {
        var sb = new StringBuilder();
        sb.Append("// SPDX-License-Identifier: GPL-2.0\n");
        sb.Append("/* Generated by Livegraft: the livepatch glue for the diff objects linked beside it. */\n");
        sb.Append("#include <linux/module.h>\n#include <linux/kernel.h>\n#include <linux/livepatch.h>\n\n");

        // Declarations: the differ made every replacement and callback GLOBAL in a diff object.
        // The exact prototype does not matter to klp, which only takes the address.
        var declared = new HashSet<string>(StringComparer.Ordinal);
        foreach (var o in request.Objects)
        {
            foreach (var f in o.Functions)
                if (declared.Add(f.NewSymbol))
                    sb.Append($"extern void {f.NewSymbol}(void);\n");
            foreach (var cb in o.PrePatch)
                if (declared.Add(cb))
                    sb.Append($"extern int {cb}(struct klp_object *obj);\n");
            foreach (var cb in o.PostPatch.Concat(o.PreUnpatch).Concat(o.PostUnpatch))
                if (declared.Add(cb))
                    sb.Append($"extern void {cb}(struct klp_object *obj);\n");
        }
        sb.Append('\n');

        for (var i = 0; i < request.Objects.Count; i++)
        {
            var o = request.Objects[i];
            var funcs = $"livegraft_funcs_{i}";
            sb.Append($"/* {KlpObjectName(o.Name)} */\n");
            sb.Append($"static struct klp_func {funcs}[] = {{\n");
            foreach (var f in o.Functions)
                sb.Append($"\t{{\n\t\t.old_name = {CString(f.OldName)},\n\t\t.new_func = {f.NewSymbol},\n\t\t.old_sympos = {f.Sympos.ToString(CultureInfo.InvariantCulture)},\n\t}},\n");
            sb.Append("\t{ }\n};\n");
            EmitCallback(sb, i, "pre_patch", "int", o.PrePatch);
            EmitCallback(sb, i, "post_patch", "void", o.PostPatch);
            EmitCallback(sb, i, "pre_unpatch", "void", o.PreUnpatch);
            EmitCallback(sb, i, "post_unpatch", "void", o.PostUnpatch);
            sb.Append('\n');
        }

        sb.Append("static struct klp_object livegraft_objs[] = {\n");
        for (var i = 0; i < request.Objects.Count; i++)
        {
            var o = request.Objects[i];
            sb.Append("\t{\n");
            // klp_object.name NULL means vmlinux (livepatch.rst, "struct klp_object").
            sb.Append(o.IsVmlinux ? "\t\t.name = NULL,\n" : $"\t\t.name = {CString(KlpObjectName(o.Name))},\n");
            sb.Append($"\t\t.funcs = livegraft_funcs_{i},\n");
            var cbs = new List<string>();
            if (o.PrePatch.Count > 0)
                cbs.Add($".pre_patch = {CallbackName(i, "pre_patch", o.PrePatch)}");
            if (o.PostPatch.Count > 0)
                cbs.Add($".post_patch = {CallbackName(i, "post_patch", o.PostPatch)}");
            if (o.PreUnpatch.Count > 0)
                cbs.Add($".pre_unpatch = {CallbackName(i, "pre_unpatch", o.PreUnpatch)}");
            if (o.PostUnpatch.Count > 0)
                cbs.Add($".post_unpatch = {CallbackName(i, "post_unpatch", o.PostUnpatch)}");
            if (cbs.Count > 0)
            {
                sb.Append("\t\t.callbacks = {\n");
                foreach (var c in cbs)
                    sb.Append($"\t\t\t{c},\n");
                sb.Append("\t\t},\n");
            }
            sb.Append("\t},\n");
        }
        sb.Append("\t{ }\n};\n\n");

        sb.Append("static struct klp_patch livegraft_patch = {\n\t.mod = THIS_MODULE,\n\t.objs = livegraft_objs,\n");
        sb.Append($"\t.replace = {(request.Replace ? "true" : "false")},\n}};\n\n");
        sb.Append("static int __init livegraft_init(void)\n{\n\treturn klp_enable_patch(&livegraft_patch);\n}\n\n");
        // A livepatch module cannot be removed while enabled; exit only runs after disabling.
        sb.Append("static void __exit livegraft_exit(void)\n{\n}\n\n");
        sb.Append("module_init(livegraft_init);\nmodule_exit(livegraft_exit);\n");
        sb.Append("MODULE_LICENSE(\"GPL\");\nMODULE_INFO(livepatch, \"Y\");\n");
        sb.Append($"MODULE_DESCRIPTION({CString("Livegraft live patch " + request.Name)});\n");
        var info = new List<(string, string)>
        {
            (InfoVersion, AuthorHeaders.LivegraftVersion),
            (InfoKernel, request.Target.Release),
        };
        if (request.PatchSha256 is not null)
            info.Add((InfoPatchSha256, request.PatchSha256));
        info.Add((InfoObjects, string.Join(',', request.Objects.Select(o => KlpObjectName(o.Name)))));
        info.Add((InfoReplace, request.Replace ? "Y" : "N"));
        foreach (var (k, v) in request.ExtraInfo.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            info.Add((k, v));
        foreach (var (k, v) in info)
            sb.Append($"MODULE_INFO({k}, {CString(v)});\n");
        return sb.ToString();
    }

    private static string CallbackName(int obj, string kind, IReadOnlyList<string> callbacks) =>
        callbacks.Count == 1 ? callbacks[0] : $"livegraft_{kind}_{obj}";

    private static void EmitCallback(StringBuilder sb, int obj, string kind, string ret, IReadOnlyList<string> callbacks)
    {
        if (callbacks.Count <= 1)
            return;
        // Several callbacks of one kind: one wrapper calls them in order
        // (Documentation/livepatch/callbacks.rst allows one per kind and object).
        sb.Append($"static {ret} livegraft_{kind}_{obj}(struct klp_object *obj)\n{{\n");
        if (ret == "int")
        {
            sb.Append("\tint ret;\n\n");
            foreach (var cb in callbacks)
                sb.Append($"\tret = {cb}(obj);\n\tif (ret)\n\t\treturn ret;\n");
            sb.Append("\treturn 0;\n");
        }
        else
        {
            foreach (var cb in callbacks)
                sb.Append($"\t{cb}(obj);\n");
        }
        sb.Append("}\n");
    }

    /// <summary>A C string literal; non-printable and non-ASCII bytes become octal escapes.</summary>
    internal static string CString(string s)
    {
        var sb = new StringBuilder("\"");
        foreach (var b in Encoding.UTF8.GetBytes(s))
        {
            if (b == '"' || b == '\\')
                sb.Append('\\').Append((char)b);
            else if (b is >= 0x20 and < 0x7f && b != '?')
                sb.Append((char)b);
            else
                sb.Append('\\').Append(Convert.ToString(b, 8).PadLeft(3, '0'));
        }
        return sb.Append('"').ToString();
    }
}
