// SPDX-License-Identifier: GPL-2.0-or-later
/* An atomic replace patch (cumulative-patches.rst): .replace = true, patches cmdline_proc_show
 * only, so loading it over lg_sample and lg_second would undo lg_second's version_proc_show. */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/seq_file.h>

static int livepatch_cmdline_proc_show(struct seq_file *m, void *v)
{
	seq_printf(m, "%s\n", "cmdline replaced by " KBUILD_MODNAME);
	return 0;
}

static struct klp_func funcs[] = {
	{ .old_name = "cmdline_proc_show", .new_func = livepatch_cmdline_proc_show, }, { }
};

static struct klp_object objs[] = {
	{ .funcs = funcs, }, { }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
	.replace = true,
};

static int livepatch_init(void)
{
	return klp_enable_patch(&patch);
}

static void livepatch_exit(void)
{
}

static const char lg_meta[] __used __section(".modinfo") __aligned(1) =
	"livegraft.replace=Y\0livegraft.functions=vmlinux:cmdline_proc_show,0";

module_init(livepatch_init);
module_exit(livepatch_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
