namespace Livegraft.Kernel.Tests.Integration;

public sealed class HeaderMacroTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lg-macros-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Every macro of every author header, in one unit.</summary>
    internal const string EveryMacro = """
        #include <linux/module.h>
        #include <linux/slab.h>
        #include "livegraft.h"
        #include "kpatch-macros.h"
        #include "kpatch-syscall.h"
        #include <linux/livepatch_helpers.h>

        static int lg_pre(struct klp_object *obj) { return 0; }
        static void lg_post(struct klp_object *obj) { }
        static void lg_pre_un(struct klp_object *obj) { }
        static void lg_post_un(struct klp_object *obj) { }
        LIVEGRAFT_PRE_PATCH_CALLBACK(lg_pre);
        LIVEGRAFT_POST_PATCH_CALLBACK(lg_post);
        LIVEGRAFT_PRE_UNPATCH_CALLBACK(lg_pre_un);
        LIVEGRAFT_POST_UNPATCH_CALLBACK(lg_post_un);

        static int kp_pre(patch_object *obj) { return 0; }
        static void kp_void(patch_object *obj) { }
        KPATCH_PRE_PATCH_CALLBACK(kp_pre);
        KPATCH_POST_PATCH_CALLBACK(kp_void);
        KPATCH_PRE_UNPATCH_CALLBACK(kp_void);
        KPATCH_POST_UNPATCH_CALLBACK(kp_void);

        static int klp_pre(struct klp_object *obj) { return 0; }
        static void klp_void(struct klp_object *obj) { }
        KLP_PRE_PATCH_CALLBACK(klp_pre);
        KLP_POST_PATCH_CALLBACK(klp_void);
        KLP_PRE_UNPATCH_CALLBACK(klp_void);
        KLP_POST_UNPATCH_CALLBACK(klp_void);

        void lg_ignored(void) { }
        void lg_forced(void) { }
        LIVEGRAFT_IGNORE_FUNCTION(lg_ignored);
        LIVEGRAFT_IGNORE_SECTION(".text.unlikely.lg");
        LIVEGRAFT_FORCE_UNSAFE(lg_forced);
        LIVEGRAFT_IGNORE_STATIC("lg_counter.1");
        KPATCH_IGNORE_FUNCTION(lg_ignored);
        KPATCH_IGNORE_SECTION(".text.unlikely.kp");
        KPATCH_FORCE_UNSAFE(lg_forced);
        KPATCH_IGNORE_STATIC("kp_counter");

        struct thing { int a; };
        int lg_shadow(void *obj)
        {
        	int *s = LIVEGRAFT_SHADOW_GET_OR_ALLOC(int, obj, LIVEGRAFT_SHADOW_ID('l', 'g', 's', '1'), GFP_KERNEL);
        	struct thing *t = LIVEGRAFT_SHADOW_ALLOC(struct thing, obj, 2, GFP_KERNEL);

        	if (!s || !t || LIVEGRAFT_SHADOW_GET(int, obj, 1) != s)
        		return -ENOMEM;
        	LIVEGRAFT_SHADOW_FREE(obj, 2);
        	LIVEGRAFT_SHADOW_FREE_ALL(3);
        	KPATCH_PRINTK("livegraft %d\n", *s);
        	return 0;
        }

        DECLARE_STATIC_CALL(lg_sc, lg_pre);
        int lg_static_call(void)
        {
        	return LIVEGRAFT_STATIC_CALL(lg_sc)(NULL) + KLP_STATIC_CALL(lg_sc)(NULL) + KPATCH_STATIC_CALL(lg_sc)(NULL);
        }

        LIVEGRAFT_SYSCALL_DEFINE0(lgtest0) { return 0; }
        LIVEGRAFT_SYSCALL_DEFINE1(lgtest1, int, a) { return a; }
        LIVEGRAFT_SYSCALL_DEFINE2(lgtest2, int, a, int, b) { return a + b; }
        LIVEGRAFT_SYSCALL_DEFINE3(lgtest3, int, a, int, b, int, c) { return a + b + c; }
        LIVEGRAFT_SYSCALL_DEFINE4(lgtest4, int, a, int, b, int, c, int, d) { return a + b + c + d; }
        LIVEGRAFT_SYSCALL_DEFINE5(lgtest5, int, a, int, b, int, c, int, d, int, e) { return a + b + c + d + e; }
        LIVEGRAFT_SYSCALL_DEFINE6(lgtest6, int, a, long, b, unsigned int, c, char __user *, d, size_t, e, int, f) { return a + b + c + e + f + (d != NULL); }
        KPATCH_SYSCALL_DEFINE0(kptest0) { return 0; }
        KPATCH_SYSCALL_DEFINE1(kptest1, int, a) { return a; }
        KPATCH_SYSCALL_DEFINE2(kptest2, int, a, int, b) { return a + b; }
        KPATCH_SYSCALL_DEFINE3(kptest3, int, a, int, b, int, c) { return a + b + c; }
        KPATCH_SYSCALL_DEFINE4(kptest4, int, a, int, b, int, c, int, d) { return a + b + c + d; }
        KPATCH_SYSCALL_DEFINE5(kptest5, int, a, int, b, int, c, int, d, int, e) { return a + b + c + d + e; }
        KPATCH_SYSCALL_DEFINE6(kptest6, int, a, int, b, int, c, int, d, int, e, int, f) { return a + b + c + d + e + f; }
        KLP_SYSCALL_DEFINE0(klptest0) { return 0; }
        KLP_SYSCALL_DEFINE1(klptest1, int, a) { return a; }
        KLP_SYSCALL_DEFINE2(klptest2, int, a, int, b) { return a + b; }
        KLP_SYSCALL_DEFINE3(klptest3, int, a, int, b, int, c) { return a + b + c; }
        KLP_SYSCALL_DEFINE4(klptest4, int, a, int, b, int, c, int, d) { return a + b + c + d; }
        KLP_SYSCALL_DEFINE5(klptest5, int, a, int, b, int, c, int, d, int, e) { return a + b + c + d + e; }
        KLP_SYSCALL_DEFINE6(klptest6, int, a, int, b, int, c, int, d, int, e, int, f) { return a + b + c + d + e + f; }
        MODULE_LICENSE("GPL");

        """;

    [Fact]
    public void EveryMacroCompilesIntoItsSection()
    {
        var include = AuthorHeaders.Extract();
        // -Werror: the headers must not add warnings to a patch author's build.
        var obj = Scratch.CompileObject(_dir, "macros.c", EveryMacro, $"-Werror -ffunction-sections -fdata-sections -I{include}");
        var sections = Scratch.Run("readelf", ["-SW", obj]);
        // Each kind is used three times (livegraft, kpatch, klp names): 3 pointers of 8 bytes.
        foreach (var kind in new[] { "pre_patch", "post_patch", "pre_unpatch", "post_unpatch" })
            Assert.Matches($@"\.livegraft\.callbacks\.{kind}\s+PROGBITS\s+\S+\s+\S+\s+0*18 ", sections);
        // Directives are used twice each (livegraft, kpatch).
        foreach (var name in new[] { "ignore.functions", "ignore.sections", "force.functions", "ignore.statics" })
            Assert.Matches($@"\.livegraft\.{name.Replace(".", @"\.")}\s+PROGBITS\s+\S+\s+\S+\s+0*10 ", sections);
        Assert.Contains(".rela.livegraft.callbacks.pre_patch", sections);
        Assert.DoesNotContain("_eil_addr", sections); // no error-injection list entries
        Assert.DoesNotContain("__syscalls_metadata", sections);

        var symbols = Scratch.Run("readelf", ["-sW", obj]);
        foreach (var abi in new[] { "x64", "ia32" })
            foreach (var prefix in new[] { "lgtest", "kptest", "klptest" })
                for (var n = 0; n <= 6; n++)
                    Assert.Matches($@"FUNC\s+GLOBAL\s+DEFAULT\s+\d+ __{abi}_sys_{prefix}{n}\n", symbols);
    }
}
