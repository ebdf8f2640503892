using System.Buffers.Binary;
using System.Text.Json;

namespace Livegraft.Host.Tests;

public class HostParsingTests
{
    [Theory]
    [InlineData(0UL, "")]
    [InlineData(1UL << 15, "K")]
    [InlineData((1UL << 12) | (1UL << 13) | (1UL << 15), "OEK")]
    [InlineData(1UL | (1UL << 9), "PW")]
    [InlineData(1UL << 40, "?")]
    public void DecodesTaintMasks(ulong mask, string letters) => Assert.Equal(letters, TaintFlag.Letters(mask));

    [Fact]
    public void TaintTableMatchesKernelBitOrder()
    {
        for (var i = 0; i < TaintFlag.All.Count; i++)
            Assert.Equal(i, TaintFlag.All[i].Bit);
        Assert.Equal("TAINT_LIVEPATCH", TaintFlag.All[15].Name);
    }

    [Fact]
    public void ParsesBuildIdNote()
    {
        // A non-GNU note first, then NT_GNU_BUILD_ID with a 20-byte desc.
        var notes = new List<byte>();
        void Note(string name, uint type, byte[] desc)
        {
            var n = System.Text.Encoding.ASCII.GetBytes(name + "\0");
            var h = new byte[12];
            BinaryPrimitives.WriteUInt32LittleEndian(h, (uint)n.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(4), (uint)desc.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(8), type);
            notes.AddRange(h);
            notes.AddRange(n);
            notes.AddRange(new byte[(4 - n.Length % 4) % 4]);
            notes.AddRange(desc);
            notes.AddRange(new byte[(4 - desc.Length % 4) % 4]);
        }
        Note("Xen", 6, [1, 2, 3]);
        Note("GNU", 3, Enumerable.Range(0, 20).Select(i => (byte)i).ToArray());
        Assert.Equal("000102030405060708090a0b0c0d0e0f10111213", RunningKernel.ParseBuildId(notes.ToArray()));
        Assert.Null(RunningKernel.ParseBuildId([1, 2, 3]));
    }

    [Fact]
    public void ReadsTheHostsOwnKernelNotes()
    {
        if (!File.Exists("/sys/kernel/notes"))
            Assert.Skip("no /sys/kernel/notes");
        var kernel = RunningKernel.Read(HostPaths.Default);
        Assert.False(string.IsNullOrEmpty(kernel.Release));
        Assert.Matches("^[0-9a-f]{40}$", kernel.BuildId ?? "");
    }

    [Fact]
    public void ParsesProcModules()
    {
        var modules = ProcModule.Parse("""
            lg_second 16384 1 - Live 0xffffffffc0a0c000 (OEK)
            lg_sample 16384 1 - Live 0xffffffffc0a06000 (OEK)
            dummy 16384 0 - Live 0xffffffffc0a00000
            """);
        Assert.Equal(["lg_second", "lg_sample", "dummy"], modules.Select(m => m.Name));
        Assert.Equal("OEK", modules[0].Taint);
        Assert.Equal("", modules[2].Taint);
        Assert.Equal(1, modules[0].References);
    }

    [Theory]
    [InlineData("[<0>] fixture_block+0x4f/0x90 [lg_fixture]", "fixture_block")]
    [InlineData("[<0>] do_syscall_64+0x55/0xb0", "do_syscall_64")]
    [InlineData("  [<ffffffff81000000>] schedule+0x1/0x2", "schedule")]
    [InlineData("", null)]
    public void ParsesStackFrames(string frame, string? function) => Assert.Equal(function, TaskScanner.FrameFunction(frame));

    [Theory]
    [InlineData("60", 60.0)]
    [InlineData("60s", 60.0)]
    [InlineData("500ms", 0.5)]
    [InlineData("2m", 120.0)]
    [InlineData("1.5s", 1.5)]
    public void ParsesDurations(string text, double seconds) => Assert.Equal(seconds, Duration.Parse(text).TotalSeconds, 6);

    [Theory]
    [InlineData("")]
    [InlineData("abc")]
    [InlineData("-1s")]
    [InlineData("0")]
    public void RejectsBadDurations(string text)
    {
        var e = Assert.Throws<LivegraftException>(() => Duration.Parse(text));
        Assert.Equal("LG0517", e.Diagnostics[0].Id);
        Assert.Equal(ExitCode.Usage, e.ExitCode);
    }

    /// <summary>A /sys and /proc tree as the 6.1 kernel lays it out with two stacked patches, one in transition.</summary>
    internal static TempTree FakeHost()
    {
        var t = new TempTree();
        t.Write("proc/sys/kernel/osrelease", BuiltModules.Release + "\n");
        t.Write("proc/sys/kernel/tainted", ((1 << 12) | (1 << 13) | (1 << 15)).ToString() + "\n");
        t.Write("proc/cmdline", "console=ttyS0 quiet\n");
        // Newest first, as kernel/module/procfs.c walks the list add_unformed_module pushes onto.
        t.Write("proc/modules", """
            lg_fixture_patch 16384 1 - Live 0x0 (OEK)
            lg_second 16384 1 - Live 0x0 (OEK)
            lg_fixture 16384 0 - Live 0x0 (OE)
            lg_sample 16384 1 - Live 0x0 (OEK)
            lg_replaced 16384 0 - Live 0x0 (OEK)

            """);
        void Patch(string name, bool enabled, bool transition, params (string Obj, bool Patched, string[] Funcs)[] objs)
        {
            t.Write($"sys/kernel/livepatch/{name}/enabled", enabled ? "1\n" : "0\n");
            t.Write($"sys/kernel/livepatch/{name}/transition", transition ? "1\n" : "0\n");
            t.Write($"sys/kernel/livepatch/{name}/force", "");
            foreach (var (obj, patched, funcs) in objs)
            {
                t.Write($"sys/kernel/livepatch/{name}/{obj}/patched", patched ? "1\n" : "0\n");
                foreach (var f in funcs)
                    Directory.CreateDirectory(Path.Combine(t.Root, $"sys/kernel/livepatch/{name}/{obj}/{f}"));
            }
        }
        Patch("lg_sample", true, false, ("vmlinux", true, ["cmdline_proc_show,1"]));
        Patch("lg_second", true, false, ("vmlinux", true, ["version_proc_show,1"]));
        Patch("lg_fixture_patch", true, true, ("lg_fixture", true, ["fixture_block,1"]));
        // Tasks: 1 switched, 42 asleep in the old function, 43 a thread of 42 outside the function, 7 not in any transition.
        void Task(int pid, int tid, string comm, int state, string stack)
        {
            t.Write($"proc/{pid}/task/{tid}/patch_state", state + "\n");
            t.Write($"proc/{pid}/task/{tid}/comm", comm + "\n");
            t.Write($"proc/{pid}/task/{tid}/stack", stack);
        }
        Task(1, 1, "init", 1, "[<0>] do_wait+0x1/0x2\n");
        Task(42, 42, "cat", 0, "[<0>] fixture_block+0x4f/0x90 [lg_fixture]\n[<0>] lg_read+0x20/0x80 [lg_fixture]\n[<0>] vfs_read+0xa/0x100\n");
        Task(42, 43, "cat-helper", 0, "[<0>] futex_wait+0x1/0x2\n");
        Task(7, 7, "idle-ish", -1, "");
        t.Write("proc/self/task/notnumeric", "");
        return t;
    }

    [Fact]
    public void ReadsSysfsPatchesInStackOrder()
    {
        using var t = FakeHost();
        var patches = new LivepatchSysfs(t.Paths).Patches();
        Assert.Equal(["lg_replaced", "lg_sample", "lg_second", "lg_fixture_patch"], patches.Select(p => p.Name));
        var replaced = patches[0];
        Assert.False(replaced.Registered);
        Assert.False(replaced.Enabled);
        var sample = patches[1];
        Assert.True(sample is { Registered: true, Enabled: true, Transition: false, Replace: null, Taint: "OEK" });
        Assert.Equal([new KlpObjectState("vmlinux", true, [new KlpFunctionState("cmdline_proc_show", 1)])], sample.Objects,
            (a, b) => a.Name == b.Name && a.Patched == b.Patched && a.Functions.SequenceEqual(b.Functions));
        Assert.True(patches[3].Transition);
        Assert.Equal(["fixture_block"], patches[3].FunctionNames);
    }

    [Fact]
    public void FindsTasksThatHaveNotSwitched()
    {
        using var t = FakeHost();
        var blockers = new TaskScanner(t.Paths).Blockers(1, ["fixture_block"], "lg_fixture_patch");
        Assert.Equal([42, 43], blockers.Select(b => b.Tid).Order());
        var cat = blockers.Single(b => b.Tid == 42);
        Assert.Equal("cat", cat.Comm);
        Assert.Equal("fixture_block", cat.Function);
        Assert.Equal(0, cat.PatchState);
        Assert.Null(blockers.Single(b => b.Tid == 43).Function);
        Assert.Contains("in fixture_block", cat.ToString());
        // Unpatching: the blocker sits in the patch module's new function.
        t.Write("proc/42/task/42/patch_state", "1\n");
        t.Write("proc/42/task/42/stack", "[<0>] livepatch_fixture_block+0x4/0x10 [lg_fixture_patch]\n");
        var back = new TaskScanner(t.Paths).Blockers(0, ["fixture_block"], "lg_fixture_patch");
        Assert.Equal("livepatch_fixture_block", back.Single(b => b.Tid == 42).Function);
    }

    [Fact]
    public void StatusReportsStalledTransitionAndEffectiveVersion()
    {
        using var t = FakeHost();
        var s = new LivepatchManager(t.Paths).Status(TimeSpan.Zero);
        Assert.Equal(PatchVerdict.Stalled, s.Verdict);
        Assert.Equal("lg_fixture_patch", s.TransitionPatch);
        Assert.Equal($"{BuiltModules.Release}+lg_sample+lg_second+lg_fixture_patch", s.EffectiveVersion);
        Assert.Equal("OEK", s.Kernel.TaintLetters);

        using var doc = JsonDocument.Parse(Json(w => HostJson.Write(w, s)));
        var root = doc.RootElement;
        Assert.Equal("stalled", root.GetProperty("verdict").GetString());
        Assert.Equal(BuiltModules.Release, root.GetProperty("kernel").GetProperty("release").GetString());
        Assert.Equal(["O", "E", "K"], root.GetProperty("kernel").GetProperty("taintFlags").EnumerateArray().Select(f => f.GetProperty("letter").GetString()));
        Assert.Equal(4, root.GetProperty("patches").GetArrayLength());
        var fn = root.GetProperty("patches")[1].GetProperty("objects")[0].GetProperty("functions")[0];
        Assert.Equal("cmdline_proc_show", fn.GetProperty("name").GetString());
        Assert.Equal(1, fn.GetProperty("sympos").GetInt32());
        Assert.Equal("fixture_block", root.GetProperty("blockers").EnumerateArray().Single(b => b.GetProperty("tid").GetInt32() == 42).GetProperty("function").GetString());
    }

    [Fact]
    public void StatusWithoutPatchesIsNone()
    {
        using var t = new TempTree();
        t.Write("proc/sys/kernel/osrelease", "6.1.0-56-amd64\n");
        Directory.CreateDirectory(Path.Combine(t.Root, "sys/kernel/livepatch"));
        var s = new LivepatchManager(t.Paths).Status(TimeSpan.Zero);
        Assert.Equal(PatchVerdict.None, s.Verdict);
        Assert.Equal("6.1.0-56-amd64", s.EffectiveVersion);
        Assert.True(s.LivepatchSupported);
    }

    internal static string Json(Action<Utf8JsonWriter> write)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
            write(w);
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }
}

public class NativeTests
{
    [Fact]
    public void LibcResolves()
    {
        Assert.Equal(Environment.UserName == "root", LivepatchManager.IsRoot);
        Assert.StartsWith("ENOENT", Native.Libc.Describe(Native.Libc.ENOENT));
    }

    [Fact]
    public void DeleteModuleOfAnUnknownNameIsENOENT()
    {
        if (!LivepatchManager.IsRoot)
            Assert.Skip("needs root");
        // ENOSYS or EPERM where a sandbox filters module syscalls; ENOENT on a plain host.
        Assert.Contains(Native.Libc.DeleteModule("livegraft_no_such_module", Native.Libc.O_NONBLOCK), new[] { Native.Libc.ENOENT, Native.Libc.EPERM, Native.Libc.ENOSYS });
    }
}
