// SPDX-License-Identifier: GPL-2.0
/* Livepatch of lg_fixture's fixture_block: the patched version returns 2 without sleeping. */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/livepatch.h>

static int livepatch_fixture_block(void)
{
	return 2;
}

static struct klp_func funcs[] = {
	{ .old_name = "fixture_block", .new_func = livepatch_fixture_block, }, { }
};

static struct klp_object objs[] = {
	{ .name = "lg_fixture", .funcs = funcs, }, { }
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
