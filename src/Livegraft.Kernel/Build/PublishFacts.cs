using Livegraft.Elf;
using Livegraft.Symbols;
using Livegraft.Verify;

namespace Livegraft.Kernel.Build;

/// <summary>
/// What <c>livegraft repo add</c> reads on the build side to publish a patch: the GNU build id of the
/// kernel it is for (from that release's image, the same bytes a host shows in <c>/sys/kernel/notes</c>)
/// and the functions it replaces (from the verification table the build embeds).
/// </summary>
public static class PublishFacts
{
    /// <summary>The GNU build id (hex) of <paramref name="release"/>'s vmlinux, fetching the image when missing; null when it has none.</summary>
    public static string? KernelBuildId(string release)
    {
        var target = new KernelTarget(release);
        target.EnsureImage();
        return ElfNotes.GnuBuildIdOfImage(KernelImage.ReadVmlinux(target.KernelImage));
    }

    /// <summary>The functions the module replaces, as <c>object:function</c> for modules and plain names for vmlinux.</summary>
    public static IReadOnlyList<string> PatchedFunctions(string modulePath) =>
        VerifyTable.Read(modulePath).Where(e => e.Role == ExpectationRole.Replaced)
            .Select(e => e.Object == "vmlinux" ? e.Display : $"{e.Object}:{e.Display}").Distinct(StringComparer.Ordinal).ToList();
}
