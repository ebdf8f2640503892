// SPDX-License-Identifier: GPL-2.0
/*
 * Livegraft: the glue of every generated livepatch module (Documentation/livepatch/livepatch.rst,
 * section 5). The same file for every patch: what differs (objects, functions, callbacks, flags)
 * comes from the livegraft_desc.o object linked beside it (livegraft_module.h).
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/slab.h>
#include <linux/moduleparam.h>
#include <linux/string.h>
#include "livegraft_module.h"

static struct klp_patch livegraft_patch;
static struct klp_object *livegraft_objs;

/* The last module object this patch refused, and why ("<object>: <reason>"), for `livegraft status`:
 * /sys/module/<patch>/parameters/refused (docs/host.md). Cleared when that object is patched. */
static char livegraft_refusal[256];
module_param_string(refused, livegraft_refusal, sizeof(livegraft_refusal), 0444);
MODULE_PARM_DESC(refused, "the last module object this patch refused to patch, and why");

static void livegraft_free(void)
{
	u32 i;

	if (!livegraft_objs)
		return;
	for (i = 0; i < livegraft_patch_desc.nr_objects; i++)
		kfree(livegraft_objs[i].funcs);
	kfree(livegraft_objs);
	livegraft_objs = NULL;
}

/* The index of a klp_object of this patch, or -1 (klp's own dynamic objects of an atomic replace). */
static long livegraft_index(struct klp_object *obj)
{
	if (!livegraft_objs || obj < livegraft_objs || obj >= livegraft_objs + livegraft_patch_desc.nr_objects)
		return -1;
	return obj - livegraft_objs;
}

/* Runs the author's callbacks of one kind for one object, in order; a pre_patch failure stops. */
static int livegraft_run_callbacks(struct klp_object *obj, enum livegraft_callback_kind kind)
{
	const struct livegraft_patch_desc *d = &livegraft_patch_desc;
	long idx = livegraft_index(obj);
	u32 i;
	int ret;

	if (idx < 0)
		return 0;
	for (i = 0; i < d->nr_callbacks; i++) {
		const struct livegraft_callback_desc *cb = &d->callbacks[i];

		if (cb->object != idx || cb->kind != kind)
			continue;
		if (kind == LIVEGRAFT_PRE_PATCH) {
			ret = ((int (*)(struct klp_object *))cb->fn)(obj);
			if (ret)
				return ret;
		} else {
			((void (*)(struct klp_object *))cb->fn)(obj);
		}
	}
	return 0;
}

/* A module object klp refuses after applying its relocations (klp_module_coming): clear them so that
 * the module can be tried again (docs/build.md, "Modules that come and go"). */
static void livegraft_refused(struct klp_object *obj, const char *why)
{
	if (obj->name && obj->mod && obj->mod->state == MODULE_STATE_COMING) {
		pr_err("livegraft: %s: refusing to load module %s: %s\n", THIS_MODULE->name, obj->name, why);
		snprintf(livegraft_refusal, sizeof(livegraft_refusal), "%s: %s", obj->name, why);
		livegraft_clear_object_relocs(obj->name);
	}
}

static int livegraft_pre_patch(struct klp_object *obj)
{
	long idx = livegraft_index(obj);
	char why[160] = "";
	int ret;

	/* The running code must be the code the patch was built from before anything else runs. */
	if (idx >= 0) {
		ret = livegraft_verify_object(idx, obj->name ? obj->name : "vmlinux", why, sizeof(why));
		if (ret) {
			livegraft_refused(obj, why);
			return ret;
		}
	}
	ret = livegraft_run_callbacks(obj, LIVEGRAFT_PRE_PATCH);
	if (ret)
		livegraft_refused(obj, "a pre_patch callback failed");
	return ret;
}

static void livegraft_post_patch(struct klp_object *obj)
{
	size_t len = obj->name ? strlen(obj->name) : 0;

	if (len && !strncmp(livegraft_refusal, obj->name, len) && livegraft_refusal[len] == ':')
		livegraft_refusal[0] = '\0';
	livegraft_run_callbacks(obj, LIVEGRAFT_POST_PATCH);
}

static void livegraft_pre_unpatch(struct klp_object *obj)
{
	livegraft_run_callbacks(obj, LIVEGRAFT_PRE_UNPATCH);
}

static void livegraft_post_unpatch(struct klp_object *obj)
{
	livegraft_run_callbacks(obj, LIVEGRAFT_POST_UNPATCH);
	/* The object's module is going away (klp_module_going) or its load is refused because another
	 * patch failed for it (klp_module_coming's error path); this patch stays. */
	if ((livegraft_patch_desc.flags & LIVEGRAFT_FLAG_CLEAR_RELOCS) && livegraft_index(obj) >= 0 &&
	    obj->name && obj->mod && obj->mod->state != MODULE_STATE_LIVE)
		livegraft_clear_object_relocs(obj->name);
}

static int __init livegraft_init(void)
{
	const struct livegraft_patch_desc *d = &livegraft_patch_desc;
	u32 i, k;
	int ret;

	BUILD_BUG_ON(sizeof(struct livegraft_func_desc) != 24);
	BUILD_BUG_ON(sizeof(struct livegraft_object_desc) != 24);
	BUILD_BUG_ON(sizeof(struct livegraft_callback_desc) != 16);
	BUILD_BUG_ON(sizeof(struct livegraft_patch_desc) != 40);
	if (d->magic != LIVEGRAFT_DESC_MAGIC || d->version != LIVEGRAFT_DESC_VERSION || !d->nr_objects) {
		pr_err("livegraft: %s: malformed patch descriptor\n", THIS_MODULE->name);
		return -EINVAL;
	}
	/* klp walks arrays terminated by an empty entry. */
	livegraft_objs = kcalloc(d->nr_objects + 1, sizeof(*livegraft_objs), GFP_KERNEL);
	if (!livegraft_objs)
		return -ENOMEM;
	for (i = 0; i < d->nr_objects; i++) {
		const struct livegraft_object_desc *o = &d->objects[i];
		struct klp_func *funcs = kcalloc(o->nr_funcs + 1, sizeof(*funcs), GFP_KERNEL);

		if (!funcs) {
			livegraft_free();
			return -ENOMEM;
		}
		for (k = 0; k < o->nr_funcs; k++) {
			funcs[k].old_name = o->funcs[k].old_name;
			funcs[k].new_func = o->funcs[k].new_func;
			funcs[k].old_sympos = o->funcs[k].old_sympos;
		}
		livegraft_objs[i].name = o->name;
		livegraft_objs[i].funcs = funcs;
		livegraft_objs[i].callbacks.pre_patch = livegraft_pre_patch;
		livegraft_objs[i].callbacks.post_patch = livegraft_post_patch;
		livegraft_objs[i].callbacks.pre_unpatch = livegraft_pre_unpatch;
		livegraft_objs[i].callbacks.post_unpatch = livegraft_post_unpatch;
	}
	livegraft_patch.mod = THIS_MODULE;
	livegraft_patch.objs = livegraft_objs;
	livegraft_patch.replace = d->replace != 0;
	ret = klp_enable_patch(&livegraft_patch);
	if (ret)
		livegraft_free();
	return ret;
}

/* A livepatch module cannot be removed while enabled: exit only runs after klp let it go. */
static void __exit livegraft_exit(void)
{
	livegraft_free();
}

module_init(livegraft_init);
module_exit(livegraft_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
