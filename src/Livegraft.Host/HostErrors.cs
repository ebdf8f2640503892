namespace Livegraft.Host;

/// <summary>Diagnostic ids of host safety (LG0540–LG0569): one operation at a time, replace that
/// cannot drop fixes silently, a store that repairs itself. docs/diagnostics.md lists them all.</summary>
public static class HostErrors
{
    /// <summary>Another operation held the host lock (or a transition from outside ran) for longer than the timeout.</summary>
    public const string HostBusy = "LG0540";
    /// <summary>Note: the operation waited for another one, or for a transition started outside Livegraft.</summary>
    public const string WaitedForLock = "LG0541";
    /// <summary>An atomic replace patch would put functions patched now back to their unpatched code.</summary>
    public const string ReplaceWouldDrop = "LG0542";
    /// <summary>Warning: <c>--drop</c> let an atomic replace drop fixes in force.</summary>
    public const string DroppedFixes = "LG0543";
    /// <summary>Note: a store left inconsistent by an interrupted operation was repaired.</summary>
    public const string StoreRepaired = "LG0544";
}
