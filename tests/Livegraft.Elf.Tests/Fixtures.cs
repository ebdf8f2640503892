using Livegraft.Kernel;

namespace Livegraft.Elf.Tests;

/// <summary>Paths to real inputs: the reference kernel's image package, fetched once into the cache.</summary>
internal static class Fixtures
{
    private static readonly Lazy<KernelTarget> Target = new(() =>
    {
        KernelTarget.Reference.EnsureImage();
        return KernelTarget.Reference;
    });

    public static string ModulesDirectory() => Target.Value.ModulesDirectory;
}
