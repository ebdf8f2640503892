// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A live patch that crashes the machine right after it is in force: its post_patch callback
 * (Documentation/livepatch/callbacks.rst) panics. Boot safety must keep load-installed from
 * loading it again at the next boot.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/seq_file.h>

static int livepatch_uptime_proc_show(struct seq_file *m, void *v)
{
	seq_puts(m, "uptime live patched by " KBUILD_MODNAME "\n");
	return 0;
}

static void crash_post_patch(struct klp_object *obj)
{
	panic("lg_crash: deliberate crash right after the patch loaded");
}

static struct klp_func funcs[] = {
	{ .old_name = "uptime_proc_show", .new_func = livepatch_uptime_proc_show, }, { }
};

static struct klp_object objs[] = {
	{ .funcs = funcs, .callbacks = { .post_patch = crash_post_patch, }, }, { }
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

module_init(livepatch_init);
module_exit(livepatch_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
