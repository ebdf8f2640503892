using Livegraft.Symbols;

namespace Livegraft.Vm;

/// <summary>
/// The modules of one kernel release (<c>lib/modules/&lt;release&gt;</c>): finds a module by name
/// and resolves what it needs, from <c>modules.dep</c> when depmod has written one, otherwise from
/// each module's own <c>.modinfo</c> (<c>depends=</c>, <c>softdep=pre:</c>).
/// </summary>
/// <remarks>
/// A <c>linux-image</c> package extracted with <c>dpkg-deb -x</c> has no <c>modules.dep</c>: the
/// package's postinst runs depmod, and extraction runs no scripts. Reading <c>.modinfo</c> gives
/// the same dependency graph without running depmod on (and writing into) the shared cache.
/// Module names compare with <c>-</c> and <c>_</c> equal, as the kernel and kmod do.
/// </remarks>
public sealed class KernelModules
{
    private readonly Dictionary<string, string> _pathByName = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string[]>? _depFile;
    private readonly HashSet<string> _builtin = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IReadOnlyList<KeyValuePair<string, string>>> _modinfo = new(StringComparer.Ordinal);
    private Dictionary<string, List<string>>? _aliases;

    /// <summary>Indexes the modules under <paramref name="modulesDirectory"/> (<c>lib/modules/&lt;release&gt;</c>).</summary>
    public KernelModules(string modulesDirectory)
    {
        if (!System.IO.Directory.Exists(modulesDirectory))
            throw new LivegraftException(ExitCode.HostFailure, VmErrors.KernelFilesMissing, "kernel modules directory not found", modulesDirectory);
        Directory = Path.GetFullPath(modulesDirectory);
        foreach (var path in System.IO.Directory.EnumerateFiles(Directory, "*.ko", SearchOption.AllDirectories))
            _pathByName.TryAdd(NameOf(path), Path.GetRelativePath(Directory, path));
        var dep = Path.Combine(Directory, "modules.dep");
        if (File.Exists(dep))
        {
            _depFile = new(StringComparer.Ordinal);
            foreach (var line in File.ReadLines(dep))
            {
                var colon = line.IndexOf(':');
                if (colon <= 0)
                    continue;
                var deps = line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                _depFile[NameOf(line[..colon])] = deps.Select(NameOf).ToArray();
            }
        }
        var builtin = Path.Combine(Directory, "modules.builtin");
        if (File.Exists(builtin))
            foreach (var line in File.ReadLines(builtin))
                if (line.Length > 0)
                    _builtin.Add(NameOf(line));
    }

    /// <summary>The absolute <c>lib/modules/&lt;release&gt;</c> directory.</summary>
    public string Directory { get; }

    /// <summary>Every loadable module name, normalised (<c>_</c> for <c>-</c>).</summary>
    public IEnumerable<string> Names => _pathByName.Keys;

    /// <summary>Normalises a module name or path: <c>kernel/crypto/crc32c-intel.ko</c> → <c>crc32c_intel</c>.</summary>
    public static string NameOf(string nameOrPath)
    {
        var name = Path.GetFileName(nameOrPath);
        foreach (var ext in new[] { ".ko.xz", ".ko.zst", ".ko.gz", ".ko" })
            if (name.EndsWith(ext, StringComparison.Ordinal))
                name = name[..^ext.Length];
        return name.Replace('-', '_');
    }

    /// <summary>True when <paramref name="name"/> is compiled into the kernel (<c>modules.builtin</c>).</summary>
    public bool IsBuiltin(string name) => _builtin.Contains(NameOf(name));

    /// <summary>The module's path relative to <see cref="Directory"/>, or null when there is no such module.</summary>
    public string? FindPath(string name) => _pathByName.GetValueOrDefault(NameOf(name));

    /// <summary>Direct hard dependencies of a module (<c>depends=</c>).</summary>
    public IReadOnlyList<string> DirectDependencies(string name)
    {
        name = Require(name);
        var value = Info(name).FirstOrDefault(kv => kv.Key == "depends").Value;
        return string.IsNullOrEmpty(value) ? [] : value.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(NameOf).ToArray();
    }

    /// <summary>Modules named by <c>softdep=pre:</c> aliases (e.g. ext4's <c>crypto-crc32c</c>), resolved to module names.</summary>
    public IReadOnlyList<string> SoftPreDependencies(string name)
    {
        name = Require(name);
        var result = new List<string>();
        foreach (var kv in Info(name).Where(kv => kv.Key == "softdep"))
        {
            // Format (modprobe.d(5)): "pre: a b post: c".
            var pre = false;
            foreach (var word in kv.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                if (word.EndsWith(':'))
                    pre = word == "pre:";
                else if (pre)
                    result.AddRange(ResolveAlias(word));
            }
        }
        return result.Distinct().ToArray();
    }

    /// <summary>
    /// The module and everything it needs, in load order (dependencies first, the module last).
    /// Soft pre-dependencies are included when <paramref name="includeSoft"/>, because without
    /// them some modules load but then fail at use (ext4 cannot mount a metadata_csum file
    /// system without a crc32c driver).
    /// </summary>
    public IReadOnlyList<string> Resolve(string name, bool includeSoft = true)
    {
        var order = new List<string>();
        var state = new Dictionary<string, bool>(StringComparer.Ordinal); // false = visiting, true = done
        void Visit(string n, bool optional)
        {
            if (state.TryGetValue(n, out var done))
            {
                if (!done)
                    throw new LivegraftException(ExitCode.InvalidInput, VmErrors.ModuleUnresolved, $"dependency cycle through module {n}");
                return;
            }
            if (FindPath(n) is null)
            {
                if (optional || IsBuiltin(n))
                    return;
                throw new LivegraftException(ExitCode.InvalidInput, VmErrors.ModuleUnresolved, $"module {n} not found", Directory);
            }
            state[n] = false;
            foreach (var d in Dependencies(n))
                Visit(d, optional: false);
            if (includeSoft)
                foreach (var d in SoftPreDependencies(n))
                    Visit(d, optional: true);
            state[n] = true;
            order.Add(n);
        }
        Visit(NameOf(name), optional: false);
        return order;
    }

    /// <summary>The module's aliases (<c>alias=</c>), e.g. <c>crypto-crc32c</c> for <c>crc32c_generic</c>.</summary>
    public IReadOnlyList<string> Aliases(string name) =>
        Info(Require(name)).Where(kv => kv.Key == "alias").Select(kv => kv.Value).ToArray();

    /// <summary>Modules whose aliases include <paramref name="alias"/> exactly (no wildcards), or the module so named.</summary>
    public IReadOnlyList<string> ResolveAlias(string alias)
    {
        if (FindPath(alias) is not null)
            return [NameOf(alias)];
        if (_aliases is null)
        {
            // One pass over every module's .modinfo (~4000 small reads); only done when a softdep
            // or an unknown name asks for it.
            var map = new Dictionary<string, List<string>>(StringComparer.Ordinal);
            foreach (var n in _pathByName.Keys.Order(StringComparer.Ordinal))
                foreach (var a in Aliases(n))
                {
                    if (!map.TryGetValue(a, out var list))
                        map[a] = list = [];
                    list.Add(n);
                }
            _aliases = map;
        }
        return _aliases.TryGetValue(alias, out var found) ? found : [];
    }

    /// <summary>Hard dependencies: from <c>modules.dep</c> when present, else from <c>.modinfo</c>.</summary>
    private IReadOnlyList<string> Dependencies(string name) =>
        _depFile is not null && _depFile.TryGetValue(name, out var deps) ? deps : DirectDependencies(name);

    private IReadOnlyList<KeyValuePair<string, string>> Info(string name)
    {
        if (!_modinfo.TryGetValue(name, out var info))
            _modinfo[name] = info = ModuleInfo.Read(Path.Combine(Directory, _pathByName[name])).Entries;
        return info;
    }

    private string Require(string name)
    {
        var n = NameOf(name);
        return _pathByName.ContainsKey(n) ? n : throw new LivegraftException(ExitCode.InvalidInput, VmErrors.ModuleUnresolved, $"module {n} not found", Directory);
    }
}
