namespace Livegraft.Kernel;

/// <summary>
/// The fixed C glue of every generated livepatch module (<c>src/Livegraft.Kernel/Module/glue</c>:
/// <c>livepatch.c</c>, <c>livegraft_verify.c</c>, <c>livegraft_module.h</c>), shipped as embedded
/// resources and copied into the module's build directory unchanged.
/// </summary>
public static class ModuleGlue
{
    /// <summary>Logical-name prefix of the embedded glue (see the project file).</summary>
    public const string ResourcePrefix = "Livegraft.Kernel.glue.";

    /// <summary>File name → content of every glue file.</summary>
    public static IReadOnlyList<KeyValuePair<string, byte[]>> Files { get; } = Load();

    private static KeyValuePair<string, byte[]>[] Load()
    {
        var assembly = typeof(ModuleGlue).Assembly;
        return [.. assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .Select(n =>
            {
                using var s = assembly.GetManifestResourceStream(n)!;
                using var m = new MemoryStream();
                s.CopyTo(m);
                return new KeyValuePair<string, byte[]>(n[ResourcePrefix.Length..], m.ToArray());
            })];
    }
}
