/* SPDX-License-Identifier: GPL-2.0 */
/*
 * livegraft.h - annotations for Livegraft patch authors.
 *
 * Every macro only emits data into a ".livegraft.*" section of the compilation unit; the
 * differ (Livegraft.Diff) reads those sections from the patched object and never copies them
 * into the livepatch module. Encodings (one entry per use, each 8 bytes on x86-64):
 *
 *   .livegraft.callbacks.pre_patch     pointer to int  fn(struct klp_object *)
 *   .livegraft.callbacks.post_patch    pointer to void fn(struct klp_object *)
 *   .livegraft.callbacks.pre_unpatch   pointer to void fn(struct klp_object *)
 *   .livegraft.callbacks.post_unpatch  pointer to void fn(struct klp_object *)
 *   .livegraft.ignore.functions        pointer to a function whose change is ignored
 *   .livegraft.ignore.sections         pointer to the NUL-terminated name of a section to ignore
 *   .livegraft.force.functions         pointer to a function patched even though it is unsafe
 *   .livegraft.ignore.statics          pointer to the NUL-terminated name of a static local to
 *                                      leave uncorrelated
 *
 * Callbacks run as described in Documentation/livepatch/callbacks.rst, for the klp_object
 * (vmlinux or module) of the unit that declares them. Several callbacks of one kind run in link
 * order; the first pre_patch callback that fails stops the others.
 */
#ifndef _LIVEGRAFT_H
#define _LIVEGRAFT_H

#include <linux/compiler.h>
#include <linux/types.h>
#include <linux/livepatch.h>

typedef int (*livegraft_pre_patch_t)(struct klp_object *obj);
typedef void (*livegraft_post_patch_t)(struct klp_object *obj);
typedef void (*livegraft_pre_unpatch_t)(struct klp_object *obj);
typedef void (*livegraft_post_unpatch_t)(struct klp_object *obj);

#define __LIVEGRAFT_ENTRY(type, section, prefix, value)			\
	static type __used __section(section) __aligned(8)		\
		__UNIQUE_ID(prefix) = (value)

/* Callbacks (Documentation/livepatch/callbacks.rst). */
#define LIVEGRAFT_PRE_PATCH_CALLBACK(fn)				\
	__LIVEGRAFT_ENTRY(livegraft_pre_patch_t,			\
		".livegraft.callbacks.pre_patch", livegraft_pre_patch_, fn)
#define LIVEGRAFT_POST_PATCH_CALLBACK(fn)				\
	__LIVEGRAFT_ENTRY(livegraft_post_patch_t,			\
		".livegraft.callbacks.post_patch", livegraft_post_patch_, fn)
#define LIVEGRAFT_PRE_UNPATCH_CALLBACK(fn)				\
	__LIVEGRAFT_ENTRY(livegraft_pre_unpatch_t,			\
		".livegraft.callbacks.pre_unpatch", livegraft_pre_unpatch_, fn)
#define LIVEGRAFT_POST_UNPATCH_CALLBACK(fn)				\
	__LIVEGRAFT_ENTRY(livegraft_post_unpatch_t,			\
		".livegraft.callbacks.post_unpatch", livegraft_post_unpatch_, fn)

/* Differ directives. */
#define LIVEGRAFT_IGNORE_FUNCTION(fn)					\
	__LIVEGRAFT_ENTRY(void *, ".livegraft.ignore.functions",	\
		livegraft_ignore_function_, (void *)(fn))
#define LIVEGRAFT_IGNORE_SECTION(name)					\
	__LIVEGRAFT_ENTRY(const char *, ".livegraft.ignore.sections",	\
		livegraft_ignore_section_, name)
#define LIVEGRAFT_FORCE_UNSAFE(fn)					\
	__LIVEGRAFT_ENTRY(void *, ".livegraft.force.functions",		\
		livegraft_force_unsafe_, (void *)(fn))
#define LIVEGRAFT_IGNORE_STATIC(name)					\
	__LIVEGRAFT_ENTRY(const char *, ".livegraft.ignore.statics",	\
		livegraft_ignore_static_, name)

/*
 * Shadow variables (Documentation/livepatch/shadow-vars.rst): data attached to an existing
 * object, keyed by (object pointer, id). Pick ids unique per patch series; LIVEGRAFT_SHADOW_ID
 * builds one from four characters so ids read well in a debugger.
 */
#define LIVEGRAFT_SHADOW_ID(a, b, c, d)					\
	((unsigned long)(a) << 24 | (unsigned long)(b) << 16 |		\
	 (unsigned long)(c) << 8 | (unsigned long)(d))

/* The shadow of @obj typed as @type *, or NULL. */
#define LIVEGRAFT_SHADOW_GET(type, obj, id)				\
	((type *)klp_shadow_get((obj), (id)))
/* Allocates a zeroed shadow; NULL if it exists already or on allocation failure. */
#define LIVEGRAFT_SHADOW_ALLOC(type, obj, id, gfp)			\
	((type *)klp_shadow_alloc((obj), (id), sizeof(type), (gfp), NULL, NULL))
/* Returns the existing shadow or allocates a zeroed one. */
#define LIVEGRAFT_SHADOW_GET_OR_ALLOC(type, obj, id, gfp)		\
	((type *)klp_shadow_get_or_alloc((obj), (id), sizeof(type), (gfp), NULL, NULL))
#define LIVEGRAFT_SHADOW_FREE(obj, id)	klp_shadow_free((obj), (id), NULL)
#define LIVEGRAFT_SHADOW_FREE_ALL(id)	klp_shadow_free_all((id), NULL)

/*
 * static_call() through a key that lives in a module cannot be relocated by a livepatch
 * (the trampoline is not exported); call through the key's current target instead.
 */
#ifdef CONFIG_HAVE_STATIC_CALL
#include <linux/static_call.h>
#define LIVEGRAFT_STATIC_CALL(name)					\
	((typeof(STATIC_CALL_TRAMP(name)) *)(STATIC_CALL_KEY(name).func))
#endif

/*
 * Syscall patching. SYSCALL_DEFINEn() in a patch would add error-injection and ftrace
 * syscall metadata entries for a syscall that already exists; these define the same
 * functions (__x64_sys_NAME, __ia32_sys_NAME, __se_sys_NAME, __do_sys_NAME) as
 * arch/x86/include/asm/syscall_wrapper.h in Linux 6.1, without those annotations.
 */
#include <linux/syscalls.h>

#ifdef CONFIG_X86_64

#define __LIVEGRAFT_SYS_STUB0(abi, name)				\
	long __##abi##_##name(const struct pt_regs *regs);		\
	long __##abi##_##name(const struct pt_regs *regs)		\
		__alias(__do_##name);

#define __LIVEGRAFT_SYS_STUBx(abi, name, ...)				\
	long __##abi##_##name(const struct pt_regs *regs);		\
	long __##abi##_##name(const struct pt_regs *regs)		\
	{								\
		return __se_##name(__VA_ARGS__);			\
	}

#ifdef CONFIG_IA32_EMULATION
#define __LIVEGRAFT_IA32_SYS_STUB0(name)				\
	__LIVEGRAFT_SYS_STUB0(ia32, sys_##name)
#define __LIVEGRAFT_IA32_SYS_STUBx(x, name, ...)			\
	__LIVEGRAFT_SYS_STUBx(ia32, sys##name,				\
		SC_IA32_REGS_TO_ARGS(x, __VA_ARGS__))
#else
#define __LIVEGRAFT_IA32_SYS_STUB0(name)
#define __LIVEGRAFT_IA32_SYS_STUBx(x, name, ...)
#endif

#define LIVEGRAFT_SYSCALL_DEFINE0(sname)				\
	static long __do_sys_##sname(const struct pt_regs *__unused);	\
	__LIVEGRAFT_SYS_STUB0(x64, sys_##sname)				\
	__LIVEGRAFT_IA32_SYS_STUB0(sname)				\
	static long __do_sys_##sname(const struct pt_regs *__unused)

#define LIVEGRAFT_SYSCALL_DEFINEx(x, name, ...)				\
	static long __se_sys##name(__MAP(x, __SC_LONG, __VA_ARGS__));	\
	static inline long __do_sys##name(__MAP(x, __SC_DECL, __VA_ARGS__)); \
	__LIVEGRAFT_SYS_STUBx(x64, sys##name,				\
		SC_X86_64_REGS_TO_ARGS(x, __VA_ARGS__))			\
	__LIVEGRAFT_IA32_SYS_STUBx(x, name, __VA_ARGS__)		\
	static long __se_sys##name(__MAP(x, __SC_LONG, __VA_ARGS__))	\
	{								\
		long ret = __do_sys##name(__MAP(x, __SC_CAST, __VA_ARGS__)); \
		__MAP(x, __SC_TEST, __VA_ARGS__);			\
		__PROTECT(x, ret, __MAP(x, __SC_ARGS, __VA_ARGS__));	\
		return ret;						\
	}								\
	static inline long __do_sys##name(__MAP(x, __SC_DECL, __VA_ARGS__))

#else /* !CONFIG_X86_64 */
#error "livegraft.h: syscall helpers are only written for x86-64"
#endif

#define LIVEGRAFT_SYSCALL_DEFINE1(name, ...) LIVEGRAFT_SYSCALL_DEFINEx(1, _##name, __VA_ARGS__)
#define LIVEGRAFT_SYSCALL_DEFINE2(name, ...) LIVEGRAFT_SYSCALL_DEFINEx(2, _##name, __VA_ARGS__)
#define LIVEGRAFT_SYSCALL_DEFINE3(name, ...) LIVEGRAFT_SYSCALL_DEFINEx(3, _##name, __VA_ARGS__)
#define LIVEGRAFT_SYSCALL_DEFINE4(name, ...) LIVEGRAFT_SYSCALL_DEFINEx(4, _##name, __VA_ARGS__)
#define LIVEGRAFT_SYSCALL_DEFINE5(name, ...) LIVEGRAFT_SYSCALL_DEFINEx(5, _##name, __VA_ARGS__)
#define LIVEGRAFT_SYSCALL_DEFINE6(name, ...) LIVEGRAFT_SYSCALL_DEFINEx(6, _##name, __VA_ARGS__)

#endif /* _LIVEGRAFT_H */
