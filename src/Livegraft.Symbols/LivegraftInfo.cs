namespace Livegraft.Symbols;

/// <summary>
/// The <c>.modinfo</c> keys of a Livegraft patch module: what the build records and what the host
/// reads back (the build writes them in <c>livegraft_desc.o</c>; <c>livegraft info</c> shows them).
/// One place for both sides.
/// </summary>
public static class LivegraftInfo
{
    /// <summary>Prefix of every Livegraft key.</summary>
    public const string Prefix = "livegraft.";
    /// <summary>The Livegraft version that built the patch.</summary>
    public const string Version = "livegraft.version";
    /// <summary>The kernel release the patch is for (the host compares it with the running one).</summary>
    public const string KernelRelease = "livegraft.kernel_release";
    /// <summary>The GNU build id of the kernel image the patch was built and verified against.</summary>
    public const string KernelBuildId = "livegraft.kernel_build_id";
    /// <summary>SHA-256 of the source patch.</summary>
    public const string PatchSha256 = "livegraft.patch_sha256";
    /// <summary>The patched objects, comma-separated.</summary>
    public const string Objects = "livegraft.objects";
    /// <summary><c>Y</c> for an atomic replace patch, <c>N</c> for a stacking one.</summary>
    public const string Replace = "livegraft.replace";
    /// <summary>Every function the patch replaces, space-separated <c>object:name,sympos</c>.</summary>
    public const string Functions = "livegraft.functions";
    /// <summary>The patches this one is cumulative over (module names, comma-separated).</summary>
    public const string Supersedes = "livegraft.supersedes";
    /// <summary>What the patch fixes, as the builder said (CVE ids, notes).</summary>
    public const string Fixes = "livegraft.fixes";
}
