namespace Livegraft.Kernel;

/// <summary>Diagnostic ids of the build pipeline (LG0300–LG0309 and LG0330–LG0399, inside
/// Livegraft.Kernel's range; LG0310–LG0329 belong to the symbols code).</summary>
public static class KernelErrors
{
    /// <summary><c>apt-get download</c> produced nothing.</summary>
    public const string DownloadFailed = "LG0301";
    /// <summary>The kernel source package (tarball) is not installed.</summary>
    public const string SourcePackageMissing = "LG0302";
    /// <summary>The kernel headers package is not installed.</summary>
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
    /// <summary>A <c>--on-top-of</c> module is for another release or carries no source patch.</summary>
    public const string OnTopOfInvalid = "LG0400";
    /// <summary>The built module cannot be written to the output path (a full disk, permissions).</summary>
    public const string OutputWriteFailed = "LG0401";

    /// <summary>An update's source (<c>--update</c>) is missing or not a readable kernel source.</summary>
    public const string UpdateSourceInvalid = "LG0410";
    /// <summary>A change of an update cannot be live patched (the host needs the new kernel: kexec).</summary>
    public const string UpdateNeedsReboot = "LG0411";
    /// <summary>Warning: <c>--partial</c> built a patch that leaves changes of the update out.</summary>
    public const string UpdatePartial = "LG0412";
    /// <summary>A change adds, removes or changes a member of a struct or union definition.</summary>
    public const string StructLayoutChanged = "LG0414";
}
