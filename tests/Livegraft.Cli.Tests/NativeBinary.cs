namespace Livegraft.Cli.Tests;

/// <summary>The NativeAOT <c>livegraft</c> that <c>make test</c> publishes (or <c>$LIVEGRAFT_BIN</c>),
/// which the guests run.</summary>
internal static class NativeBinary
{
    public static string Path { get; } = Find();

    private static string Find()
    {
        var bin = Environment.GetEnvironmentVariable("LIVEGRAFT_BIN");
        if (!string.IsNullOrEmpty(bin))
            return bin;
        for (var d = AppContext.BaseDirectory; d is not null; d = System.IO.Path.GetDirectoryName(d))
        {
            var candidate = System.IO.Path.Combine(d, "artifacts", "livegraft", "livegraft");
            if (File.Exists(candidate))
                return candidate;
        }
        throw new InvalidOperationException("no NativeAOT livegraft under artifacts/ (run make publish or set LIVEGRAFT_BIN)");
    }
}
