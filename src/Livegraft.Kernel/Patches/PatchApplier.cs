using System.Text;

namespace Livegraft.Kernel.Patches;

/// <summary>Applies and reverse-applies a <see cref="PatchSet"/> to a directory tree.</summary>
/// <remarks>
/// Hunks must match exactly unless <see cref="PatchSet.Fuzz"/> allows fuzz (as <c>patch -F N</c>:
/// up to N context lines ignored at each end of a hunk); like <c>patch</c>, a hunk may move by any
/// offset as long as hunks stay in order. Each hunk that needed an offset or fuzz is reported in
/// <see cref="PatchSet.ApplyNotes"/>. Everything is computed in memory first, so a patch that does not apply
/// fails before any file is written. Files are read and written as Latin-1, byte for byte.
/// </remarks>
public static class PatchApplier
{
    /// <summary>Computes the result of applying <paramref name="patch"/> to <paramref name="root"/>:
    /// tree-relative path → new bytes, or null for a file to delete. Writes nothing. A file the
    /// patch changes more than once (a cumulative patch: several fixes one after the other) gets
    /// each change on top of the previous one, in patch order (reversed when un-applying).</summary>
    /// <exception cref="LivegraftException">LG0331 when a hunk does not apply, LG0332 when a file is
    /// missing or already exists.</exception>
    public static IReadOnlyDictionary<string, byte[]?> Compute(PatchSet patch, string root, bool reverse = false)
    {
        var result = new Dictionary<string, byte[]?>(StringComparer.Ordinal);
        patch.ApplyNotes.Clear();
        bool Exists(string rel) => result.TryGetValue(rel, out var pending) ? pending is not null : File.Exists(Path.Combine(root, rel));
        foreach (var original in reverse ? patch.Files.Reverse() : patch.Files)
        {
            var file = reverse ? Reverse(original) : original;
            var display = file.Path;
            string? oldText = null;
            if (file.OldPath is not null)
            {
                if (!Exists(file.OldPath))
                    throw new LivegraftException(ExitCode.InvalidInput, KernelErrors.PatchFileState, $"{file.OldPath} does not exist in the tree", file.OldPath);
                oldText = Encoding.Latin1.GetString(result.TryGetValue(file.OldPath, out var pending) ? pending! : File.ReadAllBytes(Path.Combine(root, file.OldPath)));
            }
            if (file.NewPath is not null && file.NewPath != file.OldPath && Exists(file.NewPath))
                throw new LivegraftException(ExitCode.InvalidInput, KernelErrors.PatchFileState, $"{file.NewPath} already exists in the tree", file.NewPath);

            var newText = ApplyHunks(oldText ?? "", file.Hunks, display, patch.Fuzz, patch.ApplyNotes);
            if (file.NewPath is null)
            {
                if (newText.Length != 0)
                    throw new LivegraftException(ExitCode.InvalidInput, KernelErrors.HunkFailed,
                        $"{file.OldPath} is to be deleted but has content the patch does not remove", file.OldPath);
                result[file.OldPath!] = null;
                continue;
            }
            if (file.OldPath is not null && file.OldPath != file.NewPath)
                result[file.OldPath] = null;
            result[file.NewPath] = Encoding.Latin1.GetBytes(newText);
        }
        return result;
    }

    /// <summary>Applies (or reverse-applies) <paramref name="patch"/> to <paramref name="root"/>,
    /// leaving the tree untouched when any hunk fails. Use <c>KernelTree.ApplyPatch</c> for the
    /// kernel tree: it also journals the originals.</summary>
    public static void Apply(PatchSet patch, string root, bool reverse = false) => Write(root, Compute(patch, root, reverse));

    /// <summary>Writes computed changes; each file is replaced atomically (temp file and rename).</summary>
    internal static void Write(string root, IReadOnlyDictionary<string, byte[]?> changes)
    {
        foreach (var (rel, bytes) in changes)
        {
            var full = Path.Combine(root, rel);
            if (bytes is null)
            {
                File.Delete(full);
                continue;
            }
            AtomicWrite(full, bytes);
        }
    }

    /// <summary>Replaces <paramref name="path"/> with <paramref name="bytes"/> via a temporary file,
    /// keeping the old file's mode.</summary>
    internal static void AtomicWrite(string path, byte[] bytes)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var tmp = path + ".livegraft-tmp";
        File.WriteAllBytes(tmp, bytes);
        if (File.Exists(path) && !OperatingSystem.IsWindows())
            File.SetUnixFileMode(tmp, File.GetUnixFileMode(path));
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>The inverse of a file patch: sides swapped, '+' and '-' exchanged.</summary>
    public static FilePatch Reverse(FilePatch file)
    {
        var kind = file.Kind switch
        {
            FileChangeKind.Added => FileChangeKind.Deleted,
            FileChangeKind.Deleted => FileChangeKind.Added,
            var k => k,
        };
        var hunks = file.Hunks.Select(h => new Hunk(
            h.Number, h.NewStart, h.NewCount, h.OldStart, h.OldCount,
            h.Lines.Select(l => l.Kind switch { '+' => l with { Kind = '-' }, '-' => l with { Kind = '+' }, _ => l }).ToList(),
            h.PatchLine)
        {
            OldNoNewlineAtEnd = h.NewNoNewlineAtEnd,
            NewNoNewlineAtEnd = h.OldNoNewlineAtEnd,
        }).ToList();
        return new FilePatch(file.NewPath, file.OldPath, kind, hunks);
    }

    private static string ApplyHunks(string text, IReadOnlyList<Hunk> hunks, string display, int fuzz, List<Diagnostic> notes)
    {
        if (hunks.Count == 0)
            return text;
        var eol = text.Length == 0 || text.EndsWith('\n');
        List<string> lines = text.Length == 0 ? [] : [.. (text.EndsWith('\n') ? text[..^1] : text).Split('\n')];
        var delta = 0;   // lines added minus removed by the hunks applied so far, plus drift
        var floor = 0;   // hunks apply in order: never before the end of the previous one
        foreach (var h in hunks)
        {
            // For a pure insertion (-N,0) the new text goes after line N.
            var start = h.OldCount == 0 ? h.OldStart : h.OldStart - 1;
            var at = -1;
            var used = 0;
            List<string> old = [], @new = [];
            var dropped = -1;
            for (var f = 0; f <= fuzz && at < 0; f++)
            {
                // patch -F: drop up to f context lines at each end of the hunk (the file keeps its
                // own lines there).
                var body = TrimContext(h.Lines, f, out var droppedFront, out var droppedBack);
                if (droppedFront + droppedBack == dropped)
                    break; // no more context to drop
                dropped = droppedFront + droppedBack;
                old = [.. body.Where(l => l.Kind != '+').Select(l => l.Text)];
                @new = [.. body.Where(l => l.Kind != '-').Select(l => l.Text)];
                at = Find(lines, old, start + droppedFront + delta, floor);
                used = f;
            }
            if (at < 0)
            {
                var all = h.Lines.Where(l => l.Kind != '+').Select(l => l.Text).ToList();
                throw HunkFailure(h, display, lines, all, start + delta);
            }
            var intended = start + delta;
            var front = TrimFront(h.Lines, used);
            if (used > 0)
                notes.Add(new Diagnostic(KernelErrors.HunkFuzz, Severity.Warning, $"hunk #{h.Number} applied with fuzz {used}{(at - front != intended ? $" at offset {at - front - intended} lines" : "")}", display, $"hunk #{h.Number}"));
            else if (at != intended)
                notes.Add(new Diagnostic(KernelErrors.HunkOffset, Severity.Note, $"hunk #{h.Number} applied at offset {at - intended} lines", display, $"hunk #{h.Number}"));
            lines.RemoveRange(at, old.Count);
            lines.InsertRange(at, @new);
            delta = at - front - start + (@new.Count - old.Count);
            floor = at + @new.Count;
            if (at + @new.Count == lines.Count)
                eol = !h.NewNoNewlineAtEnd;
        }
        if (lines.Count == 0)
            return "";
        var joined = string.Join('\n', lines);
        return eol ? joined + "\n" : joined;
    }

    /// <summary>The hunk's lines without up to <paramref name="fuzz"/> context lines at each end.</summary>
    private static List<HunkLine> TrimContext(IReadOnlyList<HunkLine> lines, int fuzz, out int front, out int back)
    {
        front = TrimFront(lines, fuzz);
        back = 0;
        while (back < fuzz && lines.Count - back - 1 >= front && lines[lines.Count - back - 1].Kind == ' ')
            back++;
        return [.. lines.Skip(front).Take(lines.Count - front - back)];
    }

    private static int TrimFront(IReadOnlyList<HunkLine> lines, int fuzz)
    {
        var front = 0;
        while (front < fuzz && front < lines.Count && lines[front].Kind == ' ')
            front++;
        return front;
    }

    private static int Find(List<string> lines, List<string> old, int expected, int floor)
    {
        var max = lines.Count - old.Count;
        if (max < floor)
            return -1;
        expected = Math.Clamp(expected, floor, max);
        for (var k = 0; ; k++)
        {
            var down = expected - k;
            var up = expected + k;
            if (down < floor && up > max)
                return -1;
            if (down >= floor && Matches(lines, old, down))
                return down;
            if (k > 0 && up <= max && Matches(lines, old, up))
                return up;
        }
    }

    private static bool Matches(List<string> lines, List<string> old, int at)
    {
        for (var i = 0; i < old.Count; i++)
            if (!string.Equals(lines[at + i], old[i], StringComparison.Ordinal))
                return false;
        return true;
    }

    private static LivegraftException HunkFailure(Hunk h, string display, List<string> lines, List<string> old, int expected)
    {
        // Name the first line that differs at the expected place: the usual reason is a context
        // line that changed upstream.
        var detail = "";
        for (var i = 0; i < old.Count; i++)
        {
            var at = expected + i;
            if (at >= lines.Count)
            {
                detail = $"; the file ends at line {lines.Count}";
                break;
            }
            if (at >= 0 && lines[at] != old[i])
            {
                detail = $"; line {at + 1} is '{Clip(lines[at])}', the patch expects '{Clip(old[i])}'";
                break;
            }
        }
        return new LivegraftException(ExitCode.InvalidInput, KernelErrors.HunkFailed,
            $"hunk #{h.Number} (@@ -{h.OldStart},{h.OldCount} +{h.NewStart},{h.NewCount} @@, patch line {h.PatchLine}) does not apply{detail}",
            display, $"hunk #{h.Number}");
    }

    private static string Clip(string s) => s.Length > 80 ? s[..77] + "..." : s;
}
