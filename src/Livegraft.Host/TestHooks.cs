namespace Livegraft.Host;

/// <summary>
/// Stopping points for the crash-safety tests: when <c>LIVEGRAFT_TEST_PAUSE_AT</c> names a step
/// (<c>install:sidecar</c>, <c>install:module</c>, <c>load:loaded</c>, ...), the process announces it
/// in <c>/run/livegraft/paused</c> and waits there to be killed, so a test can SIGKILL it at exactly
/// that point. Unset in production: each call is one environment lookup.
/// </summary>
internal static class TestHooks
{
    /// <summary>The environment variable naming the step to stop at.</summary>
    public const string Variable = "LIVEGRAFT_TEST_PAUSE_AT";

    public static void PauseAt(HostPaths paths, string step)
    {
        if (Environment.GetEnvironmentVariable(Variable) != step)
            return;
        var marker = Path.Combine(Path.GetDirectoryName(paths.LockFile)!, "paused");
        File.WriteAllText(marker, step + "\n");
        Thread.Sleep(Timeout.Infinite);
    }
}
