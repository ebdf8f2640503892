
namespace Livegraft.Kernel.Tests.Integration;

/// <summary>The reference kernel's tree, prepared once for all tests that compile in it. Tests
/// that use it run one at a time (they share the tree).</summary>
public sealed class KernelFixture
{
    private readonly Lazy<KernelTree> _tree = new(() => KernelTree.Ensure(Target, Console.Error.WriteLine));

    public static KernelTarget Target => KernelTarget.Reference;

    /// <summary>The prepared tree (its packages are fetched into the cache when missing).</summary>
    public KernelTree Tree => _tree.Value;

    /// <summary>The reference headers, fetched when missing.</summary>
    public static string Headers => Target.EnsureHeaders(Console.Error.WriteLine);
}

[CollectionDefinition("kernel tree")]
public sealed class KernelTreeCollection : ICollectionFixture<KernelFixture>;

/// <summary>Compiles hand-written kernel C in a scratch external-module directory.</summary>
internal static class Scratch
{
    /// <summary>Compiles <paramref name="fileName"/> (written from <paramref name="source"/>) in
    /// <paramref name="dir"/> with the headers package; returns the object's path.</summary>
    public static string CompileObject(string dir, string fileName, string source, string? kcflags = null)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, fileName), source);
        var obj = Path.ChangeExtension(fileName, ".o");
        File.WriteAllText(Path.Combine(dir, "Kbuild"), $"obj-m := {obj}\n");
        var args = new List<string> { "-C", KernelFixture.Headers, "M=" + dir, "CC=" + KernelFixture.Target.Compiler };
        if (kcflags is not null)
            args.Add("KCFLAGS=" + kcflags);
        args.Add(obj);
        Run("make", args);
        return Path.Combine(dir, obj);
    }

    public static string Run(string file, IEnumerable<string> args)
    {
        var spec = new ProcessSpec(file, [.. args]) { Environment = new Dictionary<string, string?> { ["MAKEFLAGS"] = null } };
        var p = ProcessRunner.Run(spec);
        Assert.True(p.ExitCode == 0, $"{spec.Display} failed:\n{p.Stderr}\n{p.Stdout}");
        return p.Stdout;
    }
}
