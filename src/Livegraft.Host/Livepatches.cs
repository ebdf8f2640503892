using System.Globalization;

namespace Livegraft.Host;

/// <summary>A patched function as sysfs shows it: <c>&lt;patch&gt;/&lt;object&gt;/&lt;function,sympos&gt;</c>.</summary>
/// <param name="Name">Name of the original function.</param>
/// <param name="Sympos">Position among same-named symbols in the object; 0 when unique.</param>
public sealed record KlpFunctionState(string Name, int Sympos);

/// <summary>A patched object (<c>vmlinux</c> or a module) under a patch's sysfs directory.</summary>
/// <param name="Name">Object name.</param>
/// <param name="Patched">The object's <c>patched</c> attribute: its functions are redirected now
/// (false for a module that is not loaded yet).</param>
/// <param name="Functions">Its functions.</param>
public sealed record KlpObjectState(string Name, bool Patched, IReadOnlyList<KlpFunctionState> Functions)
{
    /// <summary><c>patched</c>; <c>waiting</c> (the module is not loaded: it is patched when it
    /// arrives); <c>failed</c> (the patch refused the module, or the module is loaded unpatched):
    /// see <see cref="Reason"/>.</summary>
    public string State { get; init; } = Patched ? "patched" : "waiting";

    /// <summary>Why the object is not patched, or null when it is.</summary>
    public string? Reason { get; init; }
}

/// <summary>A livepatch module the kernel knows about.</summary>
/// <param name="Name">Module (and patch) name.</param>
/// <param name="Enabled">The <c>enabled</c> attribute; false for a module whose patch was disabled or replaced
/// but which is still loaded (its sysfs directory is gone).</param>
/// <param name="Transition">The <c>transition</c> attribute: this patch is the one in transition.</param>
/// <param name="Replace">The <c>replace</c> attribute, when the kernel has it (6.4 and later), else null.</param>
/// <param name="Registered">True when <c>/sys/kernel/livepatch/&lt;name&gt;</c> exists.</param>
/// <param name="Objects">Patched objects.</param>
/// <param name="Taint">The module's taint letters from <c>/sys/module/&lt;name&gt;/taint</c>.</param>
public sealed record LoadedPatch(string Name, bool Enabled, bool Transition, bool? Replace, bool Registered,
    IReadOnlyList<KlpObjectState> Objects, string Taint)
{
    /// <summary>Every function name the patch redirects, across objects.</summary>
    public IEnumerable<string> FunctionNames => Objects.SelectMany(o => o.Functions).Select(f => f.Name);
}

/// <summary>One line of <c>/proc/modules</c>.</summary>
/// <param name="Name">Module name.</param>
/// <param name="Size">Core size in bytes.</param>
/// <param name="References">Reference count.</param>
/// <param name="State"><c>Live</c>, <c>Loading</c> or <c>Unloading</c>.</param>
/// <param name="Taint">Module taint letters, e.g. <c>OEK</c> (K marks a livepatch module).</param>
public sealed record ProcModule(string Name, long Size, int References, string State, string Taint)
{
    /// <summary>Parses <c>/proc/modules</c> (most recently loaded first, see <c>add_unformed_module</c>).</summary>
    public static IReadOnlyList<ProcModule> Parse(string text)
    {
        var modules = new List<ProcModule>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            // name size refcount deps state address [(taint)]  — kernel/module/procfs.c m_show.
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length < 5)
                continue;
            var taint = f.Length > 6 && f[6].StartsWith('(') ? f[6].Trim('(', ')') : "";
            modules.Add(new ProcModule(f[0], long.TryParse(f[1], out var size) ? size : 0,
                int.TryParse(f[2], out var refs) ? refs : 0, f[4], taint));
        }
        return modules;
    }
}

/// <summary>Reads <c>/sys/kernel/livepatch</c> and <c>/proc/modules</c> into <see cref="LoadedPatch"/> values.</summary>
public sealed class LivepatchSysfs
{
    private readonly HostPaths _paths;

    /// <summary>Reader over the given roots.</summary>
    public LivepatchSysfs(HostPaths paths) => _paths = paths;

    /// <summary>True when the kernel has CONFIG_LIVEPATCH (the sysfs root exists).</summary>
    public bool Supported => Directory.Exists(_paths.LivepatchRoot);

    /// <summary>Loaded modules, most recent first; empty when <c>/proc/modules</c> is unreadable.</summary>
    public IReadOnlyList<ProcModule> Modules()
    {
        try
        {
            return ProcModule.Parse(File.ReadAllText(_paths.Modules));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    /// <summary>
    /// Every livepatch module in stack order (first loaded first): registered patches, plus loaded
    /// modules tainted K whose patch is gone (disabled or replaced but not removed). Order comes from
    /// <c>/proc/modules</c>, which lists the newest module first, and the kernel appends patches to
    /// <c>klp_patches</c> as their modules load.
    /// </summary>
    public IReadOnlyList<LoadedPatch> Patches()
    {
        var registered = Directory.Exists(_paths.LivepatchRoot)
            ? Directory.GetDirectories(_paths.LivepatchRoot).Select(Path.GetFileName).OfType<string>().ToHashSet(StringComparer.Ordinal)
            : [];
        var modules = Modules();
        var order = new List<string>();
        foreach (var m in modules.Reverse())
        {
            if (registered.Contains(m.Name) || m.Taint.Contains('K', StringComparison.Ordinal))
                order.Add(m.Name);
        }
        // Patches sysfs knows but /proc/modules did not list (unreadable, or a test tree without it).
        order.AddRange(registered.Where(r => !order.Contains(r)).Order(StringComparer.Ordinal));
        return order.Select(name => Read(name, modules.FirstOrDefault(m => m.Name == name))).ToList();
    }

    /// <summary>One patch, or null when neither sysfs nor <c>/proc/modules</c> knows it.</summary>
    public LoadedPatch? Find(string name)
    {
        var module = Modules().FirstOrDefault(m => m.Name == name);
        if (module is null && !Directory.Exists(_paths.PatchDirectory(name)))
            return null;
        return Read(name, module);
    }

    private LoadedPatch Read(string name, ProcModule? module)
    {
        var dir = _paths.PatchDirectory(name);
        var taint = module?.Taint ?? ReadText(Path.Combine(_paths.ModuleDirectory(name), "taint")) ?? "";
        if (!Directory.Exists(dir))
            return new LoadedPatch(name, false, false, null, false, [], taint);
        var objects = new List<KlpObjectState>();
        foreach (var objDir in Directory.GetDirectories(dir).Order(StringComparer.Ordinal))
        {
            var functions = new List<KlpFunctionState>();
            foreach (var funcDir in Directory.GetDirectories(objDir).Order(StringComparer.Ordinal))
            {
                // "<function,sympos>" (core.c klp_init_func: "%s,%lu").
                var entry = Path.GetFileName(funcDir);
                var comma = entry.LastIndexOf(',');
                if (comma > 0 && int.TryParse(entry.AsSpan(comma + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var sympos))
                    functions.Add(new KlpFunctionState(entry[..comma], sympos));
                else
                    functions.Add(new KlpFunctionState(entry, 0));
            }
            objects.Add(ObjectState(Path.GetFileName(objDir), ReadFlag(Path.Combine(objDir, "patched")) == true, functions, name));
        }
        return new LoadedPatch(name, ReadFlag(Path.Combine(dir, "enabled")) == true, ReadFlag(Path.Combine(dir, "transition")) == true,
            ReadFlag(Path.Combine(dir, "replace")), true, objects, taint);
    }

    /// <summary>The state of one object: patched; waiting for its module; or failed, with the reason
    /// the patch module recorded when it refused the module (its <c>refused</c> parameter,
    /// <c>/sys/module/&lt;patch&gt;/parameters/refused</c>: "&lt;object&gt;: &lt;why&gt;", docs/host.md).</summary>
    private KlpObjectState ObjectState(string obj, bool patched, List<KlpFunctionState> functions, string patch)
    {
        var state = new KlpObjectState(obj, patched, functions);
        if (patched)
            return state;
        var refused = ReadText(Path.Combine(_paths.ModuleDirectory(patch), "parameters", "refused")) ?? "";
        if (refused.StartsWith(obj + ": ", StringComparison.Ordinal))
            return state with { State = "failed", Reason = $"the patch refused module {obj}: {refused[(obj.Length + 2)..]}" };
        if (obj == "vmlinux" || Directory.Exists(_paths.ModuleDirectory(obj)))
            return state with { State = "failed", Reason = $"{obj} is loaded but not patched (a transition under way, or see the kernel log)" };
        return state with { Reason = $"module {obj} is not loaded; it is patched when it is" };
    }

    /// <summary>Reads a sysfs boolean attribute ("0"/"1"); null when absent or unreadable.</summary>
    internal static bool? ReadFlag(string path) => ReadText(path) switch { "1" => true, "0" => false, _ => null };

    /// <summary>Reads and trims a small text file; null when absent or unreadable.</summary>
    internal static string? ReadText(string path)
    {
        try
        {
            return File.ReadAllText(path).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
