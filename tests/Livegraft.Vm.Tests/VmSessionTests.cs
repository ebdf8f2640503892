using Livegraft.Kernel;

namespace Livegraft.Vm.Tests;

/// <summary>Commands against one shared guest.</summary>
public sealed class VmSessionTests(VmFixture fixture) : IClassFixture<VmFixture>
{
    private readonly VmSession _vm = fixture.Vm;

    [Fact]
    public void Boots_the_reference_release()
    {
        var r = _vm.Run("uname -r");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(KernelTarget.ReferenceRelease, r.Output.Trim());
        Assert.True(_vm.BootTime > TimeSpan.Zero);
    }

    [Theory]
    [InlineData("exit 3", 3)]
    [InlineData("true", 0)]
    [InlineData("false", 1)]
    [InlineData("sh -c 'exit 255'", 255)]
    public void Exit_status_propagates(string command, int expected) =>
        Assert.Equal(expected, _vm.Run(command).ExitCode);

    [Fact]
    public void Output_is_exactly_what_the_command_wrote()
    {
        Assert.Equal("a\nb\n", _vm.Run("echo a; echo b").Output);
        Assert.Equal("no newline", _vm.Run("printf 'no newline'").Output);
        Assert.Equal("", _vm.Run("true").Output);
        Assert.Equal("\n\n", _vm.Run("echo; echo").Output);
        var r = _vm.Run("echo out; echo err >&2; exit 7");
        Assert.Equal("out\nerr\n", r.Output);
        Assert.Equal(7, r.ExitCode);
        Assert.DoesNotContain("@@", r.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void Commands_with_quotes_newlines_and_large_output_round_trip()
    {
        var script = "x='it'\"'\"'s'\nfor i in 1 2 3; do\n  echo \"$x $i\"\ndone\ncat <<'EOF'\n$HOME `not run`\nEOF";
        Assert.Equal("it's 1\nit's 2\nit's 3\n$HOME `not run`\n", _vm.Run(script).Output);
        var big = _vm.Run("seq 1 20000");
        Assert.Equal(20000, big.Output.TrimEnd('\n').Split('\n').Length);
        Assert.EndsWith("19999\n20000\n", big.Output, StringComparison.Ordinal);
        var longCommand = "echo " + new string('x', 9000) + " | wc -c";
        Assert.Equal("9001", _vm.Run(longCommand).Output.Trim());
    }

    [Fact]
    public void Runs_in_root_with_stdin_closed()
    {
        Assert.Equal("/root\n", _vm.Run("pwd").Output);
        Assert.Equal("", _vm.Run("cat").Output);
    }

    [Fact]
    public void Initramfs_files_and_host_executables_are_there()
    {
        Assert.Equal("hello from the host\n", _vm.Run("cat /root/hello.txt").Output);
        var xz = _vm.Run("hostxz --version");
        Assert.Equal(0, xz.ExitCode);
        Assert.Contains("liblzma", xz.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void Livegraft_binary_is_installed_with_its_libraries()
    {
        var r = _vm.Run("livegraft a b");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("native stand-in 3\n", r.Output);
        Assert.Equal(0, _vm.Run("test -x /usr/bin/livegraft && test -e /lib64/ld-linux-x86-64.so.2").ExitCode);
    }

    [Fact]
    public void Module_loads_with_modprobe()
    {
        Assert.Equal(0, _vm.Run("modprobe dummy").ExitCode);
        Assert.Contains("dummy", _vm.Run("lsmod").Output, StringComparison.Ordinal);
        Assert.Equal(0, _vm.Run("ip link add lgdummy0 type dummy && ip link show lgdummy0").ExitCode);
        Assert.Equal(0, _vm.Run("rmmod dummy").ExitCode);
    }

    [Fact]
    public void Kernel_messages_stay_out_of_output_but_dmesg_sees_them()
    {
        var r = _vm.Run("echo livegraft-marker-kmsg > /dev/kmsg; echo done");
        Assert.Equal("done\n", r.Output);
        Assert.Contains("livegraft-marker-kmsg", _vm.Run("dmesg").Output, StringComparison.Ordinal);
    }

    [Fact]
    public void Timeout_kills_the_command_and_the_vm_stays_usable()
    {
        var r = _vm.Run("echo started; sleep 600 & sleep 600", TimeSpan.FromSeconds(2));
        Assert.True(r.TimedOut);
        Assert.Equal(124, r.ExitCode);
        Assert.StartsWith("started\n", r.Output, StringComparison.Ordinal);
        Assert.True(r.Elapsed < TimeSpan.FromSeconds(30), r.Elapsed.ToString());
        Assert.Equal("ok\n", _vm.Run("echo ok").Output);
        // The whole process group went, including the background sleep.
        Assert.Equal("0\n", _vm.Run("ps | grep -c '[s]leep 600'").Output);
    }

    [Fact]
    public void Put_file_over_serial()
    {
        var data = new byte[50_000];
        new Random(42).NextBytes(data);
        _vm.PutFile("/tmp/put/blob.bin", data, 0x1ED);
        var expected = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(data));
        Assert.Equal(expected, _vm.Run("sha256sum /tmp/put/blob.bin").Output.Split(' ')[0]);
        Assert.Equal("755\n", _vm.Run("stat -c %a /tmp/put/blob.bin").Output);
    }

    [Fact]
    public void Console_log_keeps_the_session()
    {
        _vm.Run("echo console-log-check");
        Assert.Contains("console-log-check", _vm.ConsoleLog, StringComparison.Ordinal);
        Assert.Contains("@@LG-READY:", _vm.ConsoleLog, StringComparison.Ordinal);
    }
}
