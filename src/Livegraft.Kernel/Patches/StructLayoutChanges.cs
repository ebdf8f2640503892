using System.Text.RegularExpressions;

namespace Livegraft.Kernel.Patches;

/// <summary>
/// Finds hunks that add, remove or change a member of a <c>struct</c> or <c>union</c> definition:
/// instances already in memory keep the old layout, so no live patch can carry such a change (the
/// usual way out is a shadow variable, docs/build.md). Read from the source, before compiling: the
/// old file is scanned for the definitions enclosing each changed line, so the refusal names the
/// struct and the line. Comments, blank lines and preprocessor lines inside a definition are not
/// members; enums are left alone (their values are constants the differ compares).
/// </summary>
public static partial class StructLayoutChanges
{
    [GeneratedRegex(@"^\s*(?:typedef\s+)?(?:struct|union)\s*(?<name>[A-Za-z_]\w*)?\s*(?:__[a-z_]+(?:\([^)]*\))?\s*)*\{")]
    private static partial Regex StructOpen();

    /// <summary>One diagnostic (LG0414) per struct whose layout a file of <paramref name="patch"/> changes.
    /// <paramref name="root"/> is the tree the patch applies to.</summary>
    public static IReadOnlyList<Diagnostic> Find(PatchSet patch, string root)
    {
        var found = new List<Diagnostic>();
        foreach (var file in patch.Files)
        {
            if (file.OldPath is null || file.Kind == FileChangeKind.Deleted || Path.GetExtension(file.Path) is not (".h" or ".c"))
                continue;
            var full = Path.Combine(root, file.OldPath);
            if (!File.Exists(full))
                continue;
            var enclosing = Enclosing(File.ReadAllLines(full, System.Text.Encoding.Latin1));
            // Per struct, the members a hunk removes and adds, by their layout-normalised text: a
            // member removed and added again the same (a comment, whitespace, u8 for unsigned char)
            // leaves the layout as it was.
            var changes = new List<(string Struct, char Kind, string Text, int Line)>();
            foreach (var hunk in file.Hunks)
            {
                var oldLine = hunk.OldStart; // 1-based line of the next old line
                foreach (var l in hunk.Lines)
                {
                    if (l.Kind == ' ')
                    {
                        oldLine++;
                        continue;
                    }
                    // A removed line is old line oldLine; an added one goes before it, so it is inside
                    // whatever encloses that line (the closing brace of a struct is still inside it).
                    var at = oldLine;
                    if (l.Kind == '-')
                        oldLine++;
                    if (!IsMember(l.Text) || at < 1 || at > enclosing.Length || enclosing[at - 1] is not { } name)
                        continue;
                    changes.Add((name, l.Kind, Normalise(l.Text), at));
                }
            }
            foreach (var group in changes.GroupBy(c => c.Struct, StringComparer.Ordinal))
            {
                var removed = group.Where(c => c.Kind == '-').Select(c => c.Text).ToList();
                var added = group.Where(c => c.Kind == '+').ToList();
                var left = new List<(string Struct, char Kind, string Text, int Line)>();
                foreach (var a in added)
                    if (!removed.Remove(a.Text))
                        left.Add(a);
                if (left.Count == 0 && removed.Count == 0)
                    continue;
                var first = left.Count > 0 ? left[0] : group.First(c => c.Kind == '-' && removed.Contains(c.Text));
                found.Add(new Diagnostic(KernelErrors.StructLayoutChanged, Severity.Error,
                    $"{group.Key} changes layout (a member is {(left.Count > 0 ? "added or changed" : "removed")}): instances already in memory keep the old layout, " +
                    "so a live patch cannot carry it; keep the new state in a shadow variable (livegraft.h LIVEGRAFT_SHADOW_*) or reboot into the new kernel",
                    file.Path, $"line {first.Line}"));
            }
        }
        return found;
    }

    /// <summary>For each line (0-based), the innermost struct or union definition it is in (before the
    /// line's own braces), or null.</summary>
    private static string?[] Enclosing(string[] lines)
    {
        var result = new string?[lines.Length];
        var stack = new Stack<string?>();
        var inComment = false;
        for (var i = 0; i < lines.Length; i++)
        {
            result[i] = stack.Count > 0 ? stack.Peek() : null;
            var line = StripComments(lines[i], ref inComment);
            var opens = StructOpen().Match(line);
            var first = true;
            foreach (var c in line)
            {
                if (c == '{')
                {
                    // The brace a definition opens names it; an anonymous struct or union inside one
                    // belongs to the outer definition's layout; any other brace (code, enum,
                    // initializer) is not a definition.
                    var outer = stack.Count > 0 ? stack.Peek() : null;
                    stack.Push(first && opens.Success
                        ? opens.Groups["name"].Success ? $"{KindOf(line)} {opens.Groups["name"].Value}" : outer ?? $"an anonymous {KindOf(line)}"
                        : null);
                    first = false;
                }
                else if (c == '}' && stack.Count > 0)
                    stack.Pop();
            }
        }
        return result;
    }

    [GeneratedRegex(@"\b(?:__)?(?<sign>[us])(?<bits>8|16|32|64)\b")]
    private static partial Regex FixedWidth();

    /// <summary>A member line as its layout sees it: no comments, single spaces, the kernel's
    /// fixed-width types (<c>u8</c>, <c>__u32</c>, <c>s64</c>...) in their C spelling.</summary>
    private static string Normalise(string text)
    {
        var comment = false;
        var t = string.Join(' ', StripComments(text, ref comment).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
        return FixedWidth().Replace(t, m => (m.Groups["sign"].Value, m.Groups["bits"].Value) switch
        {
            ("u", "8") => "unsigned char",
            ("s", "8") => "signed char",
            ("u", "16") => "unsigned short",
            ("s", "16") => "short",
            ("u", "32") => "unsigned int",
            ("s", "32") => "int",
            ("u", _) => "unsigned long long",
            _ => "long long",
        }).Replace(" ;", ";", StringComparison.Ordinal);
    }

    private static string KindOf(string line) => line.Contains("union", StringComparison.Ordinal) ? "union" : "struct";

    /// <summary>True for a line that declares something (not blank, not only a comment or a preprocessor line).</summary>
    private static bool IsMember(string text)
    {
        var comment = false;
        var t = StripComments(text, ref comment).Trim();
        return t.Length > 0 && t[0] != '#' && t != "{" && t != "}" && t != "};";
    }

    private static string StripComments(string line, ref bool inComment)
    {
        var sb = new System.Text.StringBuilder(line.Length);
        for (var i = 0; i < line.Length; i++)
        {
            if (inComment)
            {
                if (i + 1 < line.Length && line[i] == '*' && line[i + 1] == '/')
                {
                    inComment = false;
                    i++;
                }
                continue;
            }
            if (i + 1 < line.Length && line[i] == '/' && line[i + 1] == '*')
            {
                inComment = true;
                i++;
                continue;
            }
            if (i + 1 < line.Length && line[i] == '/' && line[i + 1] == '/')
                break;
            sb.Append(line[i]);
        }
        return sb.ToString();
    }
}
