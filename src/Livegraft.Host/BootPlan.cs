namespace Livegraft.Host;

/// <summary>What <c>load-installed</c> will do with one installed patch at the next boot of its release
/// (<see cref="PatchStore.BootPlan"/>): load it, skip it because a later atomic replace patch carries its
/// fixes, or skip it because boot safety quarantined it.</summary>
/// <param name="Patch">The installed patch.</param>
/// <param name="SupersededBy">The later atomic replace patch that carries its fixes, or null.</param>
/// <param name="Quarantine">Its quarantine, or null.</param>
public sealed record BootPlanEntry(InstalledPatch Patch, string? SupersededBy, QuarantinedPatch? Quarantine)
{
    /// <summary><c>superseded</c>, <c>quarantined</c> or <c>load</c>, in the order <c>load-installed</c> decides them.</summary>
    public string AtBoot => SupersededBy is not null ? "superseded" : Quarantine is not null ? "quarantined" : "load";
}
