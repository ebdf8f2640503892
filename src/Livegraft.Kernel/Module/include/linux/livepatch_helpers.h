/* SPDX-License-Identifier: GPL-2.0 */
/*
 * linux/livepatch_helpers.h - the interface klp-build (Linux 6.19, scripts/livepatch) offers
 * patch authors, mapped onto livegraft.h so that such patches build unchanged against older
 * kernels. Kernels that ship this header themselves find their own first (-I order).
 */
#ifndef _LINUX_LIVEPATCH_HELPERS_H
#define _LINUX_LIVEPATCH_HELPERS_H

#include <linux/syscalls.h>
#include <linux/livepatch.h>
#include "../livegraft.h"

#ifdef MODULE
#define KLP_OBJNAME __KBUILD_MODNAME
#else
#define KLP_OBJNAME vmlinux
#endif

/* The callback types klp-build's kernels declare in linux/livepatch.h. */
#ifndef KLP_HAVE_CALLBACK_TYPES
#define KLP_HAVE_CALLBACK_TYPES
typedef int (*klp_pre_patch_t)(struct klp_object *obj);
typedef void (*klp_post_patch_t)(struct klp_object *obj);
typedef void (*klp_pre_unpatch_t)(struct klp_object *obj);
typedef void (*klp_post_unpatch_t)(struct klp_object *obj);
#endif

#define KLP_PRE_PATCH_CALLBACK(func)	LIVEGRAFT_PRE_PATCH_CALLBACK(func)
#define KLP_POST_PATCH_CALLBACK(func)	LIVEGRAFT_POST_PATCH_CALLBACK(func)
#define KLP_PRE_UNPATCH_CALLBACK(func)	LIVEGRAFT_PRE_UNPATCH_CALLBACK(func)
#define KLP_POST_UNPATCH_CALLBACK(func)	LIVEGRAFT_POST_UNPATCH_CALLBACK(func)

#ifdef LIVEGRAFT_STATIC_CALL
#define KLP_STATIC_CALL(name)		LIVEGRAFT_STATIC_CALL(name)
#endif

#define KLP_SYSCALL_DEFINE0(name)		LIVEGRAFT_SYSCALL_DEFINE0(name)
#define KLP_SYSCALL_DEFINE1(name, ...)		LIVEGRAFT_SYSCALL_DEFINE1(name, __VA_ARGS__)
#define KLP_SYSCALL_DEFINE2(name, ...)		LIVEGRAFT_SYSCALL_DEFINE2(name, __VA_ARGS__)
#define KLP_SYSCALL_DEFINE3(name, ...)		LIVEGRAFT_SYSCALL_DEFINE3(name, __VA_ARGS__)
#define KLP_SYSCALL_DEFINE4(name, ...)		LIVEGRAFT_SYSCALL_DEFINE4(name, __VA_ARGS__)
#define KLP_SYSCALL_DEFINE5(name, ...)		LIVEGRAFT_SYSCALL_DEFINE5(name, __VA_ARGS__)
#define KLP_SYSCALL_DEFINE6(name, ...)		LIVEGRAFT_SYSCALL_DEFINE6(name, __VA_ARGS__)
#define KLP_SYSCALL_DEFINEx(x, sname, ...)	LIVEGRAFT_SYSCALL_DEFINEx(x, sname, __VA_ARGS__)

#endif /* _LINUX_LIVEPATCH_HELPERS_H */
