using System.Text.Json;
using Livegraft.Kernel.Features;
using Livegraft.Kernel.Packages;

namespace Livegraft.Kernel;

/// <summary>What <c>livegraft target RELEASE</c> reports: how the release resolved to Debian
/// packages, where they live in the cache, and (once prepared) the kernel's features.</summary>
/// <param name="Release">The release string.</param>
/// <param name="Packages">The packages at their exact versions.</param>
/// <param name="ImageRoot">Where the image package is (or will be) extracted.</param>
/// <param name="HeadersDirectory">The headers tree external modules build against.</param>
/// <param name="TreeDirectory">The prepared tree.</param>
/// <param name="Stamp">The tree's stamp, when it is prepared.</param>
/// <param name="Features">The tree's features, when it is prepared.</param>
public sealed record TargetDescription(string Release, TargetPackages Packages, string ImageRoot, string HeadersDirectory,
    string TreeDirectory, IReadOnlyDictionary<string, string>? Stamp, TargetFeatures? Features)
{
    /// <summary>Resolves <paramref name="release"/> (nothing is fetched) or, with
    /// <paramref name="prepare"/>, fetches its packages and prepares its tree too.</summary>
    /// <exception cref="LivegraftException">LG0370–LG0379 as resolving, fetching and preparing raise them.</exception>
    public static TargetDescription Describe(string release, bool prepare, Action<string>? progress = null, CancellationToken cancellationToken = default)
    {
        var target = new KernelTarget(release);
        var tree = prepare ? PrepareAll(target, progress, cancellationToken) : KernelTree.TryOpen(target);
        return new TargetDescription(release, target.Packages, target.ImageRoot, target.HeadersDirectory, target.TreeDirectory,
            tree?.Stamp, tree is null ? null : TryFeatures(tree));
    }

    private static KernelTree PrepareAll(KernelTarget target, Action<string>? progress, CancellationToken cancellationToken)
    {
        target.EnsureImage(progress);
        return KernelTree.Ensure(target, progress, cancellationToken);
    }

    private static TargetFeatures? TryFeatures(KernelTree tree)
    {
        try
        {
            return tree.Features;
        }
        catch (InvalidOperationException)
        {
            return null; // prepared by an older Livegraft: read on the next Ensure
        }
    }

    /// <summary>The <c>--json</c> document.</summary>
    public void WriteJson(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        Json.WriteOutcome(w, ExitCode.Success);
        w.WriteString("release", Release);
        w.WriteString("series", Packages.Series);
        w.WriteStartObject("packages");
        foreach (var (role, package) in Packages.All)
            w.WriteString(Json.CamelCase(role), package.Spec);
        w.WriteEndObject();
        w.WriteString("image", ImageRoot);
        w.WriteString("headers", HeadersDirectory);
        w.WriteString("tree", TreeDirectory);
        w.WriteBoolean("prepared", Stamp is not null);
        if (Stamp?.GetValueOrDefault("source-version") is { } preparedFrom)
            w.WriteString("preparedFrom", $"{Stamp.GetValueOrDefault("source-package")}={preparedFrom}");
        if (Features is { } f)
        {
            w.WriteStartObject("features");
            foreach (var line in f.ToText().Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                var eq = line.IndexOf('=', StringComparison.Ordinal);
                var (key, value) = (Json.CamelCase(line[..eq]), line[(eq + 1)..]);
                if (int.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n))
                    w.WriteNumber(key, n);
                else if (value is "yes" or "no")
                    w.WriteBoolean(key, value == "yes");
                else
                    w.WriteString(key, value);
            }
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    /// <summary>The text form: one <c>key: value</c> line each.</summary>
    public IEnumerable<string> TextLines()
    {
        yield return $"{"release",-18}{Release} (series {Packages.Series})";
        foreach (var (role, package) in Packages.All)
            yield return $"{role,-18}{package.Spec}";
        yield return $"{"image dir",-18}{ImageRoot}";
        yield return $"{"headers dir",-18}{HeadersDirectory}";
        yield return $"{"tree",-18}{TreeDirectory}{(Stamp is null ? " (not prepared)" : $" (prepared from {Stamp.GetValueOrDefault("source-package")}={Stamp.GetValueOrDefault("source-version")})")}";
        if (Features is { } f)
            foreach (var line in f.ToText().Split('\n', StringSplitOptions.RemoveEmptyEntries))
                yield return $"{"feature",-18}{line.Replace("=", " = ", StringComparison.Ordinal)}";
    }
}
