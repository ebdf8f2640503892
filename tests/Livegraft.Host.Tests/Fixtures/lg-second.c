// SPDX-License-Identifier: GPL-2.0-or-later
/* A second, non-replace patch: replaces version_proc_show (/proc/version). Stacks on lg_sample. */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/seq_file.h>

static int livepatch_version_proc_show(struct seq_file *m, void *v)
{
	seq_printf(m, "%s\n", "version live patched by " KBUILD_MODNAME);
	return 0;
}

static struct klp_func funcs[] = {
	{ .old_name = "version_proc_show", .new_func = livepatch_version_proc_show, }, { }
};

static struct klp_object objs[] = {
	{ .funcs = funcs, }, { }
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

/* What the build records: a stacking patch of one function. */
static const char lg_meta[] __used __section(".modinfo") __aligned(1) =
	"livegraft.replace=N\0livegraft.functions=vmlinux:version_proc_show,0";

module_init(livepatch_init);
module_exit(livepatch_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
