using System.Globalization;
using Livegraft.Kernel.Patches;

namespace Livegraft.Kernel;

/// <summary>
/// Undo log for patches applied to the kernel tree: before any file changes, the original of every
/// file the patch touches is copied into <c>&lt;tree&gt;/.livegraft-journal/</c> and a manifest is
/// committed by rename. Restoring copies the originals back (deleting files the patch created) and
/// removes the journal. A process killed between the two leaves the journal behind, and the next
/// <see cref="KernelTree"/> user replays it before doing anything else.
/// </summary>
internal static class TreeJournal
{
    public const string DirectoryName = ".livegraft-journal";
    private const string ManifestName = "manifest";
    private const string Magic = "livegraft-journal 1";

    /// <summary>True when a committed journal exists, i.e. the tree may hold a patch.</summary>
    public static bool IsPending(string root) => File.Exists(Path.Combine(root, DirectoryName, ManifestName));

    /// <summary>Saves the current state of <paramref name="paths"/> and commits the manifest.</summary>
    public static void Begin(string root, IEnumerable<string> paths, string description)
    {
        if (IsPending(root))
            throw new LivegraftException(ExitCode.HostFailure, KernelErrors.JournalCorrupt,
                "the tree already carries an unrestored patch", Path.Combine(root, DirectoryName));
        var dir = Path.Combine(root, DirectoryName);
        if (Directory.Exists(dir))
            Directory.Delete(dir, recursive: true); // an uncommitted journal: the tree was never touched
        Directory.CreateDirectory(dir);
        var lines = new List<string> { Magic, "# " + description.ReplaceLineEndings(" ") };
        var n = 0;
        foreach (var rel in paths.Distinct(StringComparer.Ordinal))
        {
            var full = Path.Combine(root, rel);
            if (File.Exists(full))
            {
                var backup = n.ToString(CultureInfo.InvariantCulture);
                File.Copy(full, Path.Combine(dir, backup));
                lines.Add($"saved\t{backup}\t{rel}");
                n++;
            }
            else
            {
                lines.Add($"absent\t-\t{rel}");
            }
        }
        var tmp = Path.Combine(dir, ManifestName + ".tmp");
        using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write))
        {
            using var w = new StreamWriter(f);
            foreach (var l in lines)
                w.Write(l + "\n");
            w.Flush();
            f.Flush(flushToDisk: true);
        }
        File.Move(tmp, Path.Combine(dir, ManifestName));
    }

    /// <summary>Puts back every file the journal saved and deletes the journal. Returns the paths
    /// restored; empty when there was nothing to do.</summary>
    public static IReadOnlyList<string> Restore(string root)
    {
        var dir = Path.Combine(root, DirectoryName);
        var manifest = Path.Combine(dir, ManifestName);
        if (!File.Exists(manifest))
        {
            if (Directory.Exists(dir))
                Directory.Delete(dir, recursive: true);
            return [];
        }
        var lines = File.ReadAllLines(manifest);
        if (lines.Length == 0 || lines[0] != Magic)
            throw new LivegraftException(ExitCode.HostFailure, KernelErrors.JournalCorrupt, "unknown journal format", manifest);
        var restored = new List<string>();
        foreach (var line in lines.Skip(1))
        {
            if (line.StartsWith('#') || line.Length == 0)
                continue;
            var parts = line.Split('\t', 3);
            if (parts.Length != 3 || parts[2].Length == 0 || Path.IsPathRooted(parts[2]) || parts[2].Split('/').Contains(".."))
                throw new LivegraftException(ExitCode.HostFailure, KernelErrors.JournalCorrupt, $"bad journal line '{line}'", manifest);
            var full = Path.Combine(root, parts[2]);
            switch (parts[0])
            {
                case "saved":
                    var backup = Path.Combine(dir, parts[1]);
                    if (!File.Exists(backup))
                        throw new LivegraftException(ExitCode.HostFailure, KernelErrors.JournalCorrupt, $"backup of {parts[2]} is missing", manifest);
                    // Copy, not move, so that a crash here can simply be replayed. The restored file
                    // gets a fresh mtime, which makes kbuild rebuild anything compiled from the patch.
                    PatchApplier.AtomicWrite(full, File.ReadAllBytes(backup));
                    break;
                case "absent":
                    if (File.Exists(full))
                        File.Delete(full);
                    break;
                default:
                    throw new LivegraftException(ExitCode.HostFailure, KernelErrors.JournalCorrupt, $"bad journal line '{line}'", manifest);
            }
            restored.Add(parts[2]);
        }
        File.Delete(manifest);
        Directory.Delete(dir, recursive: true);
        return restored;
    }
}
