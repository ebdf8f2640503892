// SPDX-License-Identifier: GPL-2.0-or-later
/* A copy of samples/livepatch/livepatch-sample.c: replaces cmdline_proc_show. Registered as
 * lg_sample (kbuild turns '-' into '_'). Records livegraft.* metadata the way the build does. */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/seq_file.h>
#include <generated/utsrelease.h>

static int livepatch_cmdline_proc_show(struct seq_file *m, void *v)
{
	seq_printf(m, "%s\n", "this has been live patched by " KBUILD_MODNAME);
	return 0;
}

static struct klp_func funcs[] = {
	{
		.old_name = "cmdline_proc_show",
		.new_func = livepatch_cmdline_proc_show,
	}, { }
};

static struct klp_object objs[] = {
	{
		/* name being NULL means vmlinux */
		.funcs = funcs,
	}, { }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int livepatch_init(void)
{
	return klp_enable_patch(&patch);
}

static void livepatch_exit(void)
{
}

/* MODULE_INFO cannot take a dotted key: write the .modinfo strings directly. */
static const char lg_meta[] __used __section(".modinfo") __aligned(1) =
	"livegraft.patch_sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\0"
	"livegraft.tool_version=0.1.0-test\0"
	"livegraft.kernel_release=" UTS_RELEASE "\0"
	"livegraft.replace=N\0"
	"livegraft.functions=vmlinux:cmdline_proc_show,0\0"
#ifdef LG_RECORD_BUILD_ID
	"livegraft.kernel_build_id=00112233445566778899aabbccddeeff00112233\0"
#endif
	;

module_init(livepatch_init);
module_exit(livepatch_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
