/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kpatch-macros.h - kpatch's patch-author macros, mapped onto livegraft.h so that patches
 * written for kpatch build unchanged. The sections are Livegraft's (.livegraft.*), not
 * kpatch's (.kpatch.*): see livegraft.h for their encoding.
 */
#ifndef __KPATCH_MACROS_H_
#define __KPATCH_MACROS_H_

#include <linux/compiler.h>
#include <linux/jiffies.h>
#include <linux/printk.h>
#include "livegraft.h"

/* kpatch's callback signatures (kpatch-build/kpatch-macros.h). */
typedef struct klp_object patch_object;

typedef int (*kpatch_pre_patch_call_t)(patch_object *obj);
typedef void (*kpatch_post_patch_call_t)(patch_object *obj);
typedef void (*kpatch_pre_unpatch_call_t)(patch_object *obj);
typedef void (*kpatch_post_unpatch_call_t)(patch_object *obj);

#define KPATCH_PRE_PATCH_CALLBACK(_fn)		LIVEGRAFT_PRE_PATCH_CALLBACK(_fn)
#define KPATCH_POST_PATCH_CALLBACK(_fn)		LIVEGRAFT_POST_PATCH_CALLBACK(_fn)
#define KPATCH_PRE_UNPATCH_CALLBACK(_fn)	LIVEGRAFT_PRE_UNPATCH_CALLBACK(_fn)
#define KPATCH_POST_UNPATCH_CALLBACK(_fn)	LIVEGRAFT_POST_UNPATCH_CALLBACK(_fn)

#define KPATCH_IGNORE_FUNCTION(_fn)		LIVEGRAFT_IGNORE_FUNCTION(_fn)
#define KPATCH_IGNORE_SECTION(_sec)		LIVEGRAFT_IGNORE_SECTION(_sec)
#define KPATCH_FORCE_UNSAFE(_fn)		LIVEGRAFT_FORCE_UNSAFE(_fn)
#define KPATCH_IGNORE_STATIC(_static)		LIVEGRAFT_IGNORE_STATIC(_static)

/* kpatch's rate-limited printk for patched hot paths: at most 10 messages every 5 seconds. */
#define KPATCH_PRINTK(_fmt, ...)					\
({									\
	static DEFINE_RATELIMIT_STATE(_kpatch_rs, 5 * HZ, 10);		\
	if (__ratelimit(&_kpatch_rs))					\
		printk(_fmt, ## __VA_ARGS__);				\
})

#ifdef LIVEGRAFT_STATIC_CALL
#define KPATCH_STATIC_CALL(name)		LIVEGRAFT_STATIC_CALL(name)
#endif

#endif /* __KPATCH_MACROS_H_ */
