namespace Livegraft;

/// <summary>Diagnostic ids of Livegraft.Core (LG0900–LG0949): running host programs and files.</summary>
public static class CoreErrors
{
    /// <summary>A host program cannot be started (not installed, not executable).</summary>
    public const string CannotRun = "LG0900";
}
