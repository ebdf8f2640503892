using Livegraft.Kernel.Patches;

namespace Livegraft.Kernel.Tests;

/// <summary>Which hunks change a struct's layout, read from the source before compiling (LG0414).</summary>
public sealed class StructLayoutChangesTests : IDisposable
{
    private const string Header = """
        /* a header */
        struct widget {
        	int a;
        	/* the count */
        	long count;
        	union {
        		int x;
        		void *p;
        	};
        };

        enum mode {
        	MODE_A,
        	MODE_B,
        };

        static struct widget w = {
        	.a = 1,
        };

        static inline int widget_a(struct widget *w)
        {
        	return w->a;
        }

        """;

    private readonly string _root = Directory.CreateTempSubdirectory("lg-struct-").FullName;

    public StructLayoutChangesTests() => File.WriteAllText(Path.Combine(_root, "w.h"), Header.Replace("\r", "", StringComparison.Ordinal));

    public void Dispose() => Directory.Delete(_root, recursive: true);

    /// <summary>A one-hunk patch of w.h: <paramref name="lines"/> are the hunk's lines (' ', '-', '+' first)
    /// starting at old line <paramref name="start"/>.</summary>
    private IReadOnlyList<Diagnostic> Find(int start, params string[] lines)
    {
        var old = lines.Count(l => l[0] != '+');
        var @new = lines.Count(l => l[0] != '-');
        var patch = $"--- a/w.h\n+++ b/w.h\n@@ -{start},{old} +{start},{@new} @@\n{string.Join("\n", lines)}\n";
        return StructLayoutChanges.Find(PatchSet.ParseText(patch), _root);
    }

    [Fact]
    public void A_member_spelled_otherwise_with_the_same_layout_is_no_change()
    {
        Assert.Empty(Find(3, "-\tint a;", "+\ts32   a; /* signed */", " \t/* the count */"));
        Assert.Single(Find(3, "-\tint a;", "+\tu32 a;", " \t/* the count */"));
    }

    [Fact]
    public void An_added_member_is_a_layout_change_named_with_its_struct()
    {
        var d = Assert.Single(Find(3, " \tint a;", "+\tint b;", " \t/* the count */"));
        Assert.Equal(KernelErrors.StructLayoutChanged, d.Id);
        Assert.StartsWith("struct widget changes layout", d.Message, StringComparison.Ordinal);
        Assert.Equal("w.h", d.File);
    }

    [Fact]
    public void A_member_added_before_the_closing_brace_is_inside_the_struct() =>
        Assert.Single(Find(9, " \t};", "+\tint last;", " };"));

    [Fact]
    public void A_removed_or_retyped_member_is_a_layout_change() =>
        Assert.Single(Find(5, "-\tlong count;", "+\tint count;"));

    [Fact]
    public void A_member_of_an_anonymous_union_changes_the_outer_struct() =>
        Assert.Contains("struct widget", Assert.Single(Find(7, " \t\tint x;", "+\t\tlong y;", " \t\tvoid *p;")).Message, StringComparison.Ordinal);

    [Fact]
    public void Comments_enums_initializers_and_code_are_not_layout_changes()
    {
        Assert.Empty(Find(4, "-\t/* the count */", "+\t/* how many */"));
        Assert.Empty(Find(13, " \tMODE_A,", "+\tMODE_C,", " \tMODE_B,"));
        Assert.Empty(Find(18, "-\t.a = 1,", "+\t.a = 2,"));
        Assert.Empty(Find(23, "-\treturn w->a;", "+\treturn w->a + 1;"));
    }

    [Fact]
    public void A_new_struct_is_not_a_change_of_an_existing_layout() =>
        Assert.Empty(Find(11, " ", "+struct gadget {", "+\tint z;", "+};", "+", " enum mode {"));
}
