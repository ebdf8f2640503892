namespace Livegraft.Kernel.Packages;

/// <summary>The questions Livegraft asks the machine's apt about Debian kernel packages: which
/// versions the archive holds (<c>apt-cache madison</c>) and what one version depends on
/// (<c>apt-cache show</c>). Nothing is installed; fetching is <see cref="PackageCache"/>'s job.</summary>
public static class Apt
{
    /// <summary>The versions of each package the configured archives hold, highest first; a
    /// package apt does not know maps to an empty list. One <c>apt-cache madison</c> call.</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> Versions(IEnumerable<string> packages)
    {
        var names = packages.Distinct(StringComparer.Ordinal).ToList();
        var result = names.ToDictionary(n => n, _ => new List<string>(), StringComparer.Ordinal);
        var r = Run(["madison", .. names]);
        foreach (var line in r.Stdout.Split('\n'))
        {
            // "linux-source-6.1 |  6.1.192-2 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages"
            var parts = line.Split('|');
            if (parts.Length < 3 || !parts[2].TrimEnd().EndsWith("Packages", StringComparison.Ordinal))
                continue; // "Sources" lines of deb-src entries
            var name = parts[0].Trim();
            var version = parts[1].Trim();
            if (result.TryGetValue(name, out var list) && !list.Contains(version, StringComparer.Ordinal))
                list.Add(version);
        }
        return result.ToDictionary(kv => kv.Key,
            kv => (IReadOnlyList<string>)[.. kv.Value.Order(Comparer<string>.Create(DebianVersion.Compare)).Reverse()], StringComparer.Ordinal);
    }

    /// <summary>The control fields (<c>Package</c>, <c>Version</c>, <c>Source</c>, <c>Depends</c>…) of
    /// one version of a package; null when the archive does not hold it.</summary>
    public static IReadOnlyDictionary<string, string>? Show(string package, string version)
    {
        var r = Run(["show", $"{package}={version}"], check: false);
        if (r.ExitCode != 0)
            return null;
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        string? last = null;
        foreach (var line in r.Stdout.Split('\n'))
        {
            if (line.Length == 0)
            {
                if (fields.Count > 0)
                    break; // the first stanza is the one asked for
                continue;
            }
            if ((line[0] == ' ' || line[0] == '\t') && last is not null)
            {
                fields[last] += "\n" + line.Trim();
                continue;
            }
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
                continue;
            last = line[..colon];
            fields[last] = line[(colon + 1)..].Trim();
        }
        return fields.Count == 0 ? null : fields;
    }

    /// <summary>A <c>Depends</c> field as (package, relation, version) alternatives groups; the
    /// relation and version are null for an unversioned dependency.</summary>
    public static IReadOnlyList<IReadOnlyList<(string Package, string? Relation, string? Version)>> ParseDepends(string depends)
    {
        var groups = new List<IReadOnlyList<(string, string?, string?)>>();
        foreach (var group in depends.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var alternatives = new List<(string, string?, string?)>();
            foreach (var alt in group.Split('|', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var paren = alt.IndexOf('(', StringComparison.Ordinal);
                var name = (paren < 0 ? alt : alt[..paren]).Trim();
                var colon = name.IndexOf(':', StringComparison.Ordinal);
                if (colon > 0)
                    name = name[..colon]; // "pkg:any"
                if (paren < 0)
                {
                    alternatives.Add((name, null, null));
                    continue;
                }
                var inner = alt[(paren + 1)..].TrimEnd(')', ' ').Trim();
                var i = 0;
                while (i < inner.Length && inner[i] is '<' or '>' or '=')
                    i++;
                alternatives.Add((name, inner[..i], inner[i..].Trim()));
            }
            groups.Add(alternatives);
        }
        return groups;
    }

    private static ProcessResult Run(IReadOnlyList<string> args, bool check = true)
    {
        var spec = new ProcessSpec("apt-cache", args);
        return check
            ? ProcessRunner.RunChecked(spec, KernelErrors.ArchiveQueryFailed, $"apt-cache {string.Join(' ', args)}")
            : ProcessRunner.Run(spec);
    }
}
