namespace Livegraft.Cli.Tests;

/// <summary>A scratch directory for one test, deleted with everything in it on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    /// <summary>Absolute path of the directory.</summary>
    public string Path { get; } = Directory.CreateTempSubdirectory("livegraft-e2e-").FullName;

    /// <summary>A path inside the directory.</summary>
    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <inheritdoc/>
    public void Dispose() => Directory.Delete(Path, recursive: true);
}
