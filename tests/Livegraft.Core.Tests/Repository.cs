namespace Livegraft.Core.Tests;

/// <summary>The checkout the tests run from: the directory holding Livegraft.slnx.</summary>
internal static class Repository
{
    public static string Root { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Livegraft.slnx")))
                return dir.FullName;
        throw new InvalidOperationException("Livegraft.slnx not found above " + AppContext.BaseDirectory);
    }

    /// <summary>Every C# file under <c>src/</c>, without build output.</summary>
    public static IEnumerable<string> SourceFiles() =>
        Directory.EnumerateFiles(Path.Combine(Root, "src"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal));

    /// <summary>The project a source file belongs to (<c>Livegraft.Kernel</c>).</summary>
    public static string ProjectOf(string file) => Path.GetRelativePath(Path.Combine(Root, "src"), file).Split(Path.DirectorySeparatorChar)[0];
}
