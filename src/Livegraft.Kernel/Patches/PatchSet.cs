using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Livegraft.Kernel.Patches;

/// <summary>How a <see cref="FilePatch"/> changes its file.</summary>
public enum FileChangeKind
{
    /// <summary>The file exists before and after.</summary>
    Modified,
    /// <summary>The patch creates the file (<c>--- /dev/null</c>).</summary>
    Added,
    /// <summary>The patch deletes the file (<c>+++ /dev/null</c>).</summary>
    Deleted,
    /// <summary>The file moves (git <c>rename from/to</c>), possibly with hunks.</summary>
    Renamed,
}

/// <summary>One line of a hunk: <c>' '</c> context, <c>'-'</c> removed, <c>'+'</c> added.</summary>
public readonly record struct HunkLine(char Kind, string Text);

/// <summary>One <c>@@ -a,b +c,d @@</c> hunk.</summary>
/// <param name="Number">1-based position of the hunk in its file's patch, as <c>patch</c> numbers them.</param>
/// <param name="OldStart">First line of the old range (1-based; 0 for an empty old file).</param>
/// <param name="OldCount">Lines of the old range.</param>
/// <param name="NewStart">First line of the new range.</param>
/// <param name="NewCount">Lines of the new range.</param>
/// <param name="Lines">The hunk body.</param>
/// <param name="PatchLine">Line of the <c>@@</c> header in the patch file (1-based).</param>
public sealed record Hunk(int Number, int OldStart, int OldCount, int NewStart, int NewCount, IReadOnlyList<HunkLine> Lines, int PatchLine)
{
    /// <summary>The old file has no newline after the last line of this hunk (<c>\ No newline at end of file</c>).</summary>
    public bool OldNoNewlineAtEnd { get; init; }

    /// <summary>The new file has no newline after the last line of this hunk.</summary>
    public bool NewNoNewlineAtEnd { get; init; }
}

/// <summary>The changes to one file.</summary>
/// <param name="OldPath">Path before, relative to the tree after stripping one component (<c>-p1</c>); null when added.</param>
/// <param name="NewPath">Path after; null when deleted.</param>
/// <param name="Kind">What happens to the file.</param>
/// <param name="Hunks">The hunks, in order.</param>
public sealed record FilePatch(string? OldPath, string? NewPath, FileChangeKind Kind, IReadOnlyList<Hunk> Hunks)
{
    /// <summary>The path the change is known by: the new path, or the old one for deletions.</summary>
    public string Path => NewPath ?? OldPath!;
}

/// <summary>A parsed unified diff (git-style or <c>diff -u</c>, paths taken with <c>-p1</c>).</summary>
public sealed class PatchSet
{
    private static readonly Regex HunkHeader = new(@"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@", RegexOptions.CultureInvariant);

    private PatchSet(string? sourcePath, string sha256, IReadOnlyList<FilePatch> files)
    {
        SourcePath = sourcePath;
        Sha256 = sha256;
        Files = files;
    }

    /// <summary>The file the patch was read from, if any.</summary>
    public string? SourcePath { get; }

    /// <summary>How many context lines a hunk may lose at each end to apply (<c>patch -F N</c>);
    /// 0, the default, applies hunks exactly (at any offset, in order).</summary>
    public int Fuzz { get; set; }

    /// <summary>What applying the patch last needed beyond an exact match: a note per hunk applied
    /// at an offset (LG0345), a warning per hunk applied with fuzz (LG0346).</summary>
    public List<Diagnostic> ApplyNotes { get; } = [];

    /// <summary>Lower-case hex SHA-256 of the patch file's bytes; recorded in the module's metadata.</summary>
    public string Sha256 { get; }

    /// <summary>Changed files in patch order.</summary>
    public IReadOnlyList<FilePatch> Files { get; }

    /// <summary>Every path the patch touches (old and new paths of renames), tree-relative.</summary>
    public IReadOnlyList<string> ChangedPaths =>
        Files.SelectMany(f => new[] { f.OldPath, f.NewPath }).OfType<string>().Distinct(StringComparer.Ordinal).ToList();

    /// <summary>Reads and parses a patch file.</summary>
    public static PatchSet Parse(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LivegraftException(ExitCode.InvalidInput, KernelErrors.PatchMalformed, $"cannot read patch: {e.Message}", path);
        }
        return Parse(bytes, path);
    }

    /// <summary>Parses patch text; <paramref name="displayName"/> names it in diagnostics.</summary>
    public static PatchSet ParseText(string text, string displayName = "<patch>") => Parse(Encoding.Latin1.GetBytes(text), displayName);

    private static PatchSet Parse(byte[] bytes, string displayName)
    {
        var sha = Sha256Hash.HashHex(bytes);
        // Latin-1 maps every byte to one char, so hunks compare and apply byte for byte whatever
        // the encoding of the source file (PatchApplier reads files the same way).
        var text = Encoding.Latin1.GetString(bytes);
        var lines = text.Split('\n');
        // A trailing newline produces an empty last element that is not a line.
        var count = lines.Length > 0 && lines[^1].Length == 0 ? lines.Length - 1 : lines.Length;
        for (var i = 0; i < count; i++)
            if (lines[i].EndsWith('\r'))
                lines[i] = lines[i][..^1];

        var files = new List<FilePatch>();
        var i0 = 0;
        while (i0 < count)
        {
            var line = lines[i0];
            if (line.StartsWith("diff --git ", StringComparison.Ordinal))
            {
                i0 = ParseGitFile(lines, count, i0, files, displayName);
                continue;
            }
            if (line.StartsWith("--- ", StringComparison.Ordinal) && i0 + 1 < count && lines[i0 + 1].StartsWith("+++ ", StringComparison.Ordinal))
            {
                var oldPath = HeaderPath(line[4..]);
                var newPath = HeaderPath(lines[i0 + 1][4..]);
                i0 += 2;
                i0 = ParseHunks(lines, count, i0, out var hunks, displayName);
                files.Add(Make(oldPath, newPath, renamed: false, hunks, displayName, i0));
                continue;
            }
            if (line.StartsWith("@@ ", StringComparison.Ordinal))
                throw Malformed(displayName, i0, "hunk without a file header (--- / +++)");
            if (line.StartsWith("GIT binary patch", StringComparison.Ordinal) || line.StartsWith("Binary files ", StringComparison.Ordinal))
                throw Malformed(displayName, i0, "binary patches are not supported");
            // Anything else is commentary (mail headers, commit message, diffstat).
            i0++;
        }
        if (files.Count == 0)
            throw new LivegraftException(ExitCode.InvalidInput, KernelErrors.PatchMalformed, "no file changes found in the patch", displayName);
        var dup = files.GroupBy(f => f.Path, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null)
            throw new LivegraftException(ExitCode.InvalidInput, KernelErrors.PatchMalformed, $"{dup.Key} is changed twice in one patch", displayName);
        return new PatchSet(displayName == "<patch>" ? null : displayName, sha, files);
    }

    private static int ParseGitFile(string[] lines, int count, int start, List<FilePatch> files, string displayName)
    {
        // diff --git a/X b/Y, then extended headers until ---/+++ or the next diff.
        string? oldPath = null, newPath = null;
        var gitPaths = lines[start]["diff --git ".Length..];
        var added = false;
        var deleted = false;
        var renamed = false;
        var i = start + 1;
        for (; i < count; i++)
        {
            var l = lines[i];
            if (l.StartsWith("diff --git ", StringComparison.Ordinal) || l.StartsWith("@@ ", StringComparison.Ordinal))
                break;
            if (l.StartsWith("--- ", StringComparison.Ordinal) && i + 1 < count && lines[i + 1].StartsWith("+++ ", StringComparison.Ordinal))
                break;
            if (l.StartsWith("new file mode", StringComparison.Ordinal))
                added = true;
            else if (l.StartsWith("deleted file mode", StringComparison.Ordinal))
                deleted = true;
            else if (l.StartsWith("rename from ", StringComparison.Ordinal))
            {
                oldPath = l["rename from ".Length..];
                renamed = true;
            }
            else if (l.StartsWith("rename to ", StringComparison.Ordinal))
                newPath = l["rename to ".Length..];
            else if (l.StartsWith("copy from ", StringComparison.Ordinal) || l.StartsWith("copy to ", StringComparison.Ordinal))
                throw Malformed(displayName, i, "git copies are not supported; send the new file as an addition");
            else if (l.StartsWith("GIT binary patch", StringComparison.Ordinal) || l.StartsWith("Binary files ", StringComparison.Ordinal))
                throw Malformed(displayName, i, "binary patches are not supported");
        }
        var hunks = (IReadOnlyList<Hunk>)[];
        if (i < count && lines[i].StartsWith("--- ", StringComparison.Ordinal))
        {
            var o = HeaderPath(lines[i][4..]);
            var n = HeaderPath(lines[i + 1][4..]);
            oldPath = o;
            newPath = n;
            i = ParseHunks(lines, count, i + 2, out hunks, displayName);
        }
        else if (oldPath is null && newPath is null)
        {
            // A mode-only change or an empty new file: the paths come from the diff --git line.
            var (a, b) = SplitGitPaths(gitPaths) ?? throw Malformed(displayName, start, "cannot read the paths of 'diff --git'");
            oldPath = added ? null : a;
            newPath = deleted ? null : b;
        }
        if (added)
            oldPath = null;
        if (deleted)
            newPath = null;
        if (!renamed && !added && !deleted && hunks.Count == 0)
            return i; // mode change only: nothing to compile
        files.Add(Make(oldPath, newPath, renamed, hunks, displayName, start));
        return i;
    }

    private static (string, string)? SplitGitPaths(string s)
    {
        // "a/x b/x" with identical halves for non-renames; paths with spaces are ambiguous, so
        // split at the " b/" that yields equal remainders, else at the last one.
        for (var k = s.IndexOf(" b/", StringComparison.Ordinal); k >= 0; k = s.IndexOf(" b/", k + 1, StringComparison.Ordinal))
        {
            var a = s[..k];
            var b = s[(k + 1)..];
            if (a.Length > 2 && a[2..] == b[2..])
                return (StripComponent(a)!, StripComponent(b)!);
        }
        return null;
    }

    private static FilePatch Make(string? oldPath, string? newPath, bool renamed, IReadOnlyList<Hunk> hunks, string displayName, int line)
    {
        if (oldPath is null && newPath is null)
            throw Malformed(displayName, line, "both sides of the file header are /dev/null");
        foreach (var p in new[] { oldPath, newPath })
            if (p is not null && (p.StartsWith('/') || p.Split('/').Contains("..")))
                throw Malformed(displayName, line, $"unsafe path '{p}' (absolute or containing '..')");
        var kind = oldPath is null ? FileChangeKind.Added
            : newPath is null ? FileChangeKind.Deleted
            : renamed || oldPath != newPath ? FileChangeKind.Renamed
            : FileChangeKind.Modified;
        return new FilePatch(oldPath, newPath, kind, hunks);
    }

    /// <summary>Path from a <c>---</c>/<c>+++</c> header: drops a tab-separated timestamp, maps
    /// <c>/dev/null</c> to null, unquotes git's C-style quoting and strips one component.</summary>
    private static string? HeaderPath(string field)
    {
        var tab = field.IndexOf('\t');
        if (tab >= 0)
        {
            // diff -N marks a missing side with the epoch as its timestamp (as GNU patch reads it).
            var stamp = field[(tab + 1)..];
            if (stamp.StartsWith("1970-01-01 00:00:00", StringComparison.Ordinal) || stamp.StartsWith("1969-12-31 ", StringComparison.Ordinal))
                return null;
            field = field[..tab];
        }
        field = field.TrimEnd();
        if (field.StartsWith('"') && field.EndsWith('"') && field.Length >= 2)
            field = Regex.Unescape(field[1..^1]);
        if (field == "/dev/null")
            return null;
        return StripComponent(field);
    }

    private static string? StripComponent(string? path)
    {
        if (path is null)
            return null;
        var slash = path.IndexOf('/');
        return slash < 0 ? path : path[(slash + 1)..];
    }

    private static int ParseHunks(string[] lines, int count, int i, out IReadOnlyList<Hunk> hunks, string displayName)
    {
        var list = new List<Hunk>();
        while (i < count && lines[i].StartsWith("@@ ", StringComparison.Ordinal))
        {
            var header = lines[i];
            var m = HunkHeader.Match(header);
            if (!m.Success)
                throw Malformed(displayName, i, $"bad hunk header '{header}'");
            int N(Group g, int dflt) => g.Success ? int.Parse(g.Value, CultureInfo.InvariantCulture) : dflt;
            var oldStart = N(m.Groups[1], 0);
            var oldCount = N(m.Groups[2], 1);
            var newStart = N(m.Groups[3], 0);
            var newCount = N(m.Groups[4], 1);
            var headerLine = i;
            i++;
            var body = new List<HunkLine>();
            int o = 0, n = 0;
            bool oldNoNl = false, newNoNl = false;
            char last = ' ';
            while (o < oldCount || n < newCount || (i < count && lines[i].StartsWith('\\')))
            {
                if (i >= count)
                    throw Malformed(displayName, headerLine, $"hunk #{list.Count + 1} is truncated (expected -{oldCount} +{newCount} lines)");
                var l = lines[i];
                if (l.StartsWith('\\'))
                {
                    // "\ No newline at end of file" applies to the line just before it.
                    if (last == '-')
                        oldNoNl = true;
                    else if (last == '+')
                        newNoNl = true;
                    else
                    {
                        oldNoNl = true;
                        newNoNl = true;
                    }
                    i++;
                    if (o >= oldCount && n >= newCount)
                        break;
                    continue;
                }
                var kind = l.Length == 0 ? ' ' : l[0];
                var content = l.Length == 0 ? "" : l[1..];
                switch (kind)
                {
                    case ' ':
                        o++;
                        n++;
                        break;
                    case '-':
                        o++;
                        break;
                    case '+':
                        n++;
                        break;
                    default:
                        throw Malformed(displayName, i, $"unexpected line in hunk #{list.Count + 1} (expected -{oldCount} +{newCount} lines, got -{o} +{n})");
                }
                if (o > oldCount || n > newCount)
                    throw Malformed(displayName, i, $"hunk #{list.Count + 1} has more lines than its header says");
                body.Add(new HunkLine(kind, content));
                last = kind;
                i++;
            }
            list.Add(new Hunk(list.Count + 1, oldStart, oldCount, newStart, newCount, body, headerLine + 1)
            {
                OldNoNewlineAtEnd = oldNoNl,
                NewNoNewlineAtEnd = newNoNl,
            });
        }
        hunks = list;
        return i;
    }

    private static LivegraftException Malformed(string displayName, int lineIndex, string message) =>
        new(ExitCode.InvalidInput, KernelErrors.PatchMalformed, message, displayName, $"line {lineIndex + 1}");
}
