namespace Livegraft.Symbols;

/// <summary>Diagnostic ids of the symbols code (LG0310–LG0329, inside Livegraft.Kernel's range).</summary>
public static class SymbolErrors
{
    /// <summary>The file is neither an x86 bzImage nor an ELF64 little-endian file.</summary>
    public const string NotAKernelImage = "LG0310";
    /// <summary>The bzImage boot header is truncated or inconsistent.</summary>
    public const string BadBootHeader = "LG0311";
    /// <summary>The bzImage payload uses a compression Livegraft does not recognise.</summary>
    public const string UnknownCompression = "LG0312";
    /// <summary>The host tool needed to decompress the payload is missing.</summary>
    public const string DecompressorMissing = "LG0313";
    /// <summary>Decompressing the payload failed or produced the wrong size.</summary>
    public const string DecompressionFailed = "LG0314";
    /// <summary>No kallsyms tables were found in the image.</summary>
    public const string KallsymsNotFound = "LG0316";
    /// <summary>The kallsyms tables were found but do not decode.</summary>
    public const string KallsymsMalformed = "LG0317";
    /// <summary>A line of a <c>/proc/kallsyms</c> dump does not parse.</summary>
    public const string BadKallsymsLine = "LG0318";
    /// <summary>A line of <c>Module.symvers</c> does not parse.</summary>
    public const string BadSymversLine = "LG0319";
    /// <summary>A <c>.ko</c> has no <c>.symtab</c>.</summary>
    public const string NoSymbolTable = "LG0320";
    /// <summary>A running kernel's kallsyms differ from the image's (wrong kernel).</summary>
    public const string KallsymsDiffer = "LG0321";
    /// <summary>No symbol of the name asked for.</summary>
    public const string SymbolNotFound = "LG0322";

    internal static LivegraftException Invalid(string id, string message, string? file, long? offset = null) =>
        new(ExitCode.InvalidInput, id, message, file, offset is null ? null : $"0x{offset:x}");

    internal static LivegraftException Invalid(string id, string message, string? file, string location) =>
        new(ExitCode.InvalidInput, id, message, file, location);
}
