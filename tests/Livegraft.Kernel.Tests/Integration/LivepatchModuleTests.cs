using Livegraft.Symbols;
namespace Livegraft.Kernel.Tests.Integration;

public sealed class LivepatchModuleTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lg-module-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // What the differ would produce for samples/livepatch/livepatch-sample.c: a GLOBAL
    // replacement function, plus callbacks it made global.
    private const string Replacement = """
        #include <linux/seq_file.h>
        #include <linux/livepatch.h>

        int __livegraft_new_0(struct seq_file *m, void *v);
        int __livegraft_new_0(struct seq_file *m, void *v)
        {
        	seq_printf(m, "%s\n", "this has been live patched");
        	return 0;
        }

        int __livegraft_pre_0(struct klp_object *obj);
        int __livegraft_pre_0(struct klp_object *obj) { return 0; }
        int __livegraft_pre_1(struct klp_object *obj);
        int __livegraft_pre_1(struct klp_object *obj) { return 0; }
        void __livegraft_post_0(struct klp_object *obj);
        void __livegraft_post_0(struct klp_object *obj) { }

        """;

    [Fact]
    public void BuildsAModuleThatModinfoAccepts()
    {
        var diff = Scratch.CompileObject(Path.Combine(_dir, "scratch"), "replacement.c", Replacement, "-ffunction-sections -fdata-sections");
        var request = new LivepatchModuleRequest("test-cmdline", KernelFixture.Target,
        [
            new KlpObjectSpec("vmlinux", [new KlpFunctionSpec("cmdline_proc_show", "__livegraft_new_0", 0)],
                ["__livegraft_pre_0", "__livegraft_pre_1"], ["__livegraft_post_0"], [], [])
            {
                DiffObjects = [diff],
            },
        ])
        {
            PatchSha256 = new string('a', 64),
        };
        var built = LivepatchModule.Build(request, Path.Combine(_dir, "module"), cancellationToken: TestContext.Current.CancellationToken);

        Assert.True(File.Exists(built.KoPath));
        Assert.Equal("livepatch-test-cmdline.ko", Path.GetFileName(built.KoPath));
        Assert.Equal("livepatch_test_cmdline", built.ModuleName);
        Assert.Equal(["Y"], built.Info["livepatch"]);
        Assert.Equal(["GPL"], built.Info["license"]);
        Assert.Equal("6.1.0-56-amd64 SMP preempt mod_unload modversions", built.Info["vermagic"][0].Trim());
        Assert.Equal(["livepatch_test_cmdline"], built.Info["name"]);
        Assert.Equal([new string('a', 64)], built.Info[LivegraftInfo.PatchSha256]);
        Assert.Equal(["6.1.0-56-amd64"], built.Info[LivegraftInfo.KernelRelease]);
        Assert.Equal(["vmlinux"], built.Info[LivegraftInfo.Objects]);
        Assert.NotEmpty(built.Info[LivegraftInfo.Version][0]);
        Assert.Equal(["Livegraft live patch test-cmdline"], built.Info["description"]);
        // The vermagic matches a module the distro shipped, not just our computation.
        var shipped = Path.Combine(KernelFixture.Target.ModulesDirectory, "kernel", "fs", "nls", "nls_utf8.ko");
        if (File.Exists(shipped))
            Assert.Equal(LivepatchModule.ReadInfo(shipped)["vermagic"], built.Info["vermagic"]);
    }

    [Fact]
    public void ModpostRejectsUnexportedSymbols()
    {
        // kallsyms_lookup_name is not exported since 5.7: a diff object may not leave it
        // undefined (the differ turns such references into klp relocations instead).
        var diff = Scratch.CompileObject(Path.Combine(_dir, "scratch"), "bad.c", """
            #include <linux/kallsyms.h>
            int __livegraft_new_0(void);
            int __livegraft_new_0(void) { return kallsyms_lookup_name("x") != 0; }

            """);
        var request = new LivepatchModuleRequest("bad", KernelFixture.Target,
            [new KlpObjectSpec("vmlinux", [new KlpFunctionSpec("f", "__livegraft_new_0", 0)]) { DiffObjects = [diff] }]);
        var e = Assert.Throws<LivegraftException>(() => LivepatchModule.Build(request, Path.Combine(_dir, "module"), cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal(KernelErrors.ModuleBuildFailed, e.Diagnostics[0].Id);
        Assert.Contains("kallsyms_lookup_name", e.Message);
    }
}
