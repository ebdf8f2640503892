namespace Livegraft.Host.Repository;

/// <summary>Diagnostic ids of the patch repository, its signatures, updates and health checks
/// (LG0600–LG0639; docs/fleet.md, docs/diagnostics.md).</summary>
public static class FleetErrors
{
    /// <summary>A repository file cannot be fetched (missing, unreadable, HTTP error, unreachable).</summary>
    public const string FetchFailed = "LG0600";
    /// <summary>The index is malformed (JSON, format, fields, a path outside the repository).</summary>
    public const string BadIndex = "LG0601";
    /// <summary>Unsigned: the signature file is missing or malformed.</summary>
    public const string Unsigned = "LG0602";
    /// <summary>Signed by a key that is not trusted here.</summary>
    public const string UntrustedKey = "LG0603";
    /// <summary>The signature does not verify: the file changed after it was signed.</summary>
    public const string BadSignature = "LG0604";
    /// <summary>A downloaded patch's SHA-256 or size differs from the index.</summary>
    public const string HashMismatch = "LG0605";
    /// <summary>No trusted key is configured, so an update cannot check anything.</summary>
    public const string NoTrustedKeys = "LG0606";
    /// <summary>A key file is unreadable or not an ECDSA P-256 key in PEM.</summary>
    public const string BadKey = "LG0607";
    /// <summary>The index is older (lower serial) than one this host already accepted from the same repository.</summary>
    public const string StaleIndex = "LG0608";
    /// <summary>Note: the repository has no patch for the running kernel (release and build id).</summary>
    public const string NoPatchForKernel = "LG0609";
    /// <summary>The requested patch name or version is not in the index for the running kernel.</summary>
    public const string NoSuchVersion = "LG0610";
    /// <summary>The update failed while changing the kernel; the previous patches were put back.</summary>
    public const string UpdateFailed = "LG0611";
    /// <summary>Note: nothing to roll back (no update recorded, or already rolled back).</summary>
    public const string NothingToRollBack = "LG0612";
    /// <summary>A patch to restore is not kept on this host any more.</summary>
    public const string MissingPrevious = "LG0613";
    /// <summary>Host state (the update record, the download cache) cannot be written.</summary>
    public const string StateWriteFailed = "LG0614";
    /// <summary>Warning: the update record is unreadable and was ignored.</summary>
    public const string BadState = "LG0615";
    /// <summary><c>repo init</c>: the directory already holds a repository or other files.</summary>
    public const string RepositoryExists = "LG0620";
    /// <summary>Not a repository (no <c>index.json</c>), or signed by another key than the one given.</summary>
    public const string NotARepository = "LG0621";
    /// <summary><c>repo add</c> refused the module (not a livepatch, name or version clash, unknown kernel build id).</summary>
    public const string AddRefused = "LG0622";
    /// <summary>Bad publish input: a CVE id, version or note that the index cannot carry.</summary>
    public const string BadPublishInput = "LG0623";
    /// <summary><c>repo keygen</c>: the key file already exists.</summary>
    public const string KeyExists = "LG0624";
    /// <summary>Health: a patch is in transition, stalled, or an expected patch is not in force.</summary>
    public const string NotInForce = "LG0630";
    /// <summary>Health: the kernel logged an Oops, BUG or WARNING since the baseline.</summary>
    public const string KernelLogError = "LG0631";
    /// <summary>Health: a taint flag other than K appeared since the baseline.</summary>
    public const string NewTaint = "LG0632";
    /// <summary>Health: the baseline mark given with <c>--since</c> is malformed.</summary>
    public const string BadMark = "LG0633";
}
