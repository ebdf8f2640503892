namespace Livegraft.Kernel;

/// <summary>Diagnostic ids of the build pipeline and its targets (LG0300–LG0309 and LG0330–LG0399, inside
/// Livegraft.Kernel's range; LG0310–LG0329 belong to the symbols code).</summary>
public static class KernelErrors
{
    /// <summary><c>apt-get download</c> produced nothing.</summary>
    public const string DownloadFailed = "LG0301";
    /// <summary>The target's headers are not fetched, or the headers package is incomplete.</summary>
    public const string HeadersPackageMissing = "LG0303";
    /// <summary>Extracting or preparing the source tree failed.</summary>
    public const string TreePrepareFailed = "LG0304";
    /// <summary>Another Livegraft process holds the tree lock.</summary>
    public const string TreeBusy = "LG0305";
    /// <summary>The tree's patch journal cannot be replayed.</summary>
    public const string JournalCorrupt = "LG0306";
    /// <summary>A <c>--source</c> or <c>--config</c> given to the build is missing or not a kernel source.</summary>
    public const string SourceOverrideInvalid = "LG0307";

    /// <summary>The patch file is not a well-formed unified diff.</summary>
    public const string PatchMalformed = "LG0330";
    /// <summary>A hunk does not apply.</summary>
    public const string HunkFailed = "LG0331";
    /// <summary>A file the patch modifies or deletes is missing, or a file it creates exists.</summary>
    public const string PatchFileState = "LG0332";
    /// <summary>The patch changes nothing Livegraft can compile.</summary>
    public const string NothingToBuild = "LG0333";
    /// <summary>A changed source file is not built for this kernel configuration.</summary>
    public const string NotBuilt = "LG0334";
    /// <summary>A header change reaches more units than the limit allows.</summary>
    public const string TooManyUnits = "LG0335";
    /// <summary>An unpatched unit failed to compile (the tree or toolchain is broken).</summary>
    public const string OriginalCompileFailed = "LG0336";
    /// <summary>A patched unit failed to compile (the patch is wrong).</summary>
    public const string PatchedCompileFailed = "LG0337";
    /// <summary>The parent (vmlinux or module) of a unit cannot be determined or is inconsistent.</summary>
    public const string ParentUnknown = "LG0338";
    /// <summary>A livepatch module description is invalid.</summary>
    public const string ModuleSpecInvalid = "LG0339";
    /// <summary>Building the livepatch module through kbuild failed.</summary>
    public const string ModuleBuildFailed = "LG0340";
    /// <summary>The built module does not match the target (vermagic, livepatch flag).</summary>
    public const string ModuleCheckFailed = "LG0341";
    /// <summary>A unit catalog (kbuild dry run) could not be produced.</summary>
    public const string CatalogFailed = "LG0342";
    /// <summary>A module the patch targets is not in the release's image package.</summary>
    public const string ModuleNotShipped = "LG0344";
    /// <summary>Note: a hunk applied at an offset from the line its header names.</summary>
    public const string HunkOffset = "LG0345";
    /// <summary>Warning: a hunk applied with fuzz (context lines ignored, <c>--fuzz</c>).</summary>
    public const string HunkFuzz = "LG0346";
    /// <summary>A <c>--on-top-of</c> module is for another release or carries no source patch.</summary>
    public const string OnTopOfInvalid = "LG0400";
    /// <summary>The built module cannot be written to the output path (a full disk, permissions).</summary>
    public const string OutputWriteFailed = "LG0401";

    /// <summary>Debian ships no image package for the release (or it is not a release string).</summary>
    public const string ReleaseUnknown = "LG0370";
    /// <summary>The headers package of the release's version, or its <c>-common</c> or kbuild part, is not in the archive.</summary>
    public const string TargetPackageMissing = "LG0371";
    /// <summary>The archive no longer holds the exact source version the release was built from.</summary>
    public const string SourceVersionMissing = "LG0372";
    /// <summary>apt-cache could not be asked about the release's packages.</summary>
    public const string ArchiveQueryFailed = "LG0373";
    /// <summary>This machine's compiler is not the GCC release the kernel was built with (or is missing).</summary>
    public const string CompilerMismatch = "LG0374";
    /// <summary>Warning: the compiler is the same GCC release in another distro revision.</summary>
    public const string CompilerRevision = "LG0375";
    /// <summary>The target feature probe did not compile against the tree, or lacks a value.</summary>
    public const string ProbeFailed = "LG0376";
    /// <summary>kbuild's command file for an object holds no command line in the target's format.</summary>
    public const string CmdFileUnreadable = "LG0378";
    /// <summary>Preparing the tree changed options of the kernel's config (a build tool differs or is missing).</summary>
    public const string ConfigDrift = "LG0379";

    /// <summary>An update's source (<c>--update</c>) is missing or not a readable kernel source.</summary>
    public const string UpdateSourceInvalid = "LG0410";
    /// <summary>A change of an update cannot be live patched (the host needs the new kernel: kexec).</summary>
    public const string UpdateNeedsReboot = "LG0411";
    /// <summary>Warning: <c>--partial</c> built a patch that leaves changes of the update out.</summary>
    public const string UpdatePartial = "LG0412";
    /// <summary>A change adds, removes or changes a member of a struct or union definition.</summary>
    public const string StructLayoutChanged = "LG0414";
}
