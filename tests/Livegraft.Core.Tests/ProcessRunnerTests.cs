namespace Livegraft.Core.Tests;

public class ProcessRunnerTests
{
    [Fact]
    public void CapturesStatusOutputAndErrorInTheCLocale()
    {
        var r = ProcessRunner.Run(new ProcessSpec("/bin/sh", ["-c", "echo out; echo err >&2; echo $LC_ALL; exit 3"]), TestContext.Current.CancellationToken);
        Assert.Equal(3, r.ExitCode);
        Assert.Equal("out\nC\n", r.Stdout);
        Assert.Equal("err\n", r.Stderr);
        Assert.Equal("err", r.Tail());
    }

    [Fact]
    public void FeedsStdinAndKeepsBinaryStdout()
    {
        byte[] input = [0, 1, 2, 0xff, 10, 0];
        var r = ProcessRunner.Run(new ProcessSpec("cat", []) { Stdin = input, BinaryStdout = true }, TestContext.Current.CancellationToken);
        Assert.Equal(input, r.StdoutBytes);
    }

    [Fact]
    public void StreamsLinesToACallbackAndAFile()
    {
        var lines = new List<string>();
        var file = Path.GetTempFileName();
        try
        {
            ProcessRunner.Run(new ProcessSpec("/bin/sh", ["-c", "printf 'a\\nb\\n'"]) { OnStdoutLine = lines.Add, StdoutFile = file }, TestContext.Current.CancellationToken);
            Assert.Equal(["a", "b"], lines);
            Assert.Equal("a\nb\n", File.ReadAllText(file));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void EnvironmentChangesApplyAndRemove()
    {
        var r = ProcessRunner.Run(new ProcessSpec("/bin/sh", ["-c", "echo ${A-unset} ${HOME-unset}"])
        {
            Environment = new Dictionary<string, string?> { ["A"] = "set", ["HOME"] = null },
        }, TestContext.Current.CancellationToken);
        Assert.Equal("set unset\n", r.Stdout);
    }

    [Fact]
    public void AMissingProgramIsNamed()
    {
        var e = Assert.Throws<LivegraftException>(() => ProcessRunner.Run(new ProcessSpec("livegraft-no-such-tool", []), TestContext.Current.CancellationToken));
        Assert.Equal(CoreErrors.CannotRun, e.Diagnostics[0].Id);
        Assert.Contains("livegraft-no-such-tool", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RunCheckedThrowsWithTheCallersIdAndTheTail()
    {
        var e = Assert.Throws<LivegraftException>(() => ProcessRunner.RunChecked(new ProcessSpec("/bin/sh", ["-c", "echo why >&2; exit 1"]), "LG0399", "the step", cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal("LG0399", e.Diagnostics[0].Id);
        Assert.Contains("the step failed (exit 1):\nwhy", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CancellationKillsTheProcessTree()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.ThrowsAny<OperationCanceledException>(() => ProcessRunner.Run(new ProcessSpec("/bin/sh", ["-c", "sleep 30 & sleep 30; wait"]), cts.Token));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10));
    }

    [Fact]
    public void StartedProcessesAreDrivenAndKilled()
    {
        using var p = ProcessRunner.Start(new ProcessSpec("cat", []));
        p.Stdin.WriteLine("hello");
        Assert.Equal("hello", p.Stdout.ReadLine());
        p.Kill();
        Assert.True(p.HasExited);
    }

    [Fact]
    public void FindLooksInTheSbinDirectoriesToo()
    {
        Assert.Equal("/bin/sh", ProcessRunner.Find("/bin/sh"));
        Assert.True(ProcessRunner.Exists("sh"));
        Assert.False(ProcessRunner.Exists("livegraft-no-such-tool"));
    }
}
