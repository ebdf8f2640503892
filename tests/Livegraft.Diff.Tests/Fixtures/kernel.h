/* Minimal stand-ins for kernel constructs, so the fixtures compile without kernel headers.
 * Each macro mimics what the kernel's version leaves in the object file (section names,
 * symbol names, fentry calls), which is all the differ sees. */
#ifndef FIXTURE_KERNEL_H
#define FIXTURE_KERNEL_H

#define __init		__attribute__((section(".init.text"))) __attribute__((cold))
#define __exit		__attribute__((section(".exit.text"))) __attribute__((cold))
#define __initdata	__attribute__((section(".init.data")))
#define notrace		__attribute__((no_instrument_function))
#define noinline	__attribute__((noinline))
#define __cold		__attribute__((cold))
#define __used		__attribute__((used))
#define unlikely(x)	__builtin_expect(!!(x), 0)
#define likely(x)	__builtin_expect(!!(x), 1)

struct seq_file;
extern int printk(const char *fmt, ...);
extern int _printk(const char *fmt, ...);
extern void seq_puts(struct seq_file *m, const char *s);
extern void seq_printf(struct seq_file *m, const char *fmt, ...);
extern void *kmalloc(unsigned long size, unsigned int flags);
extern void __might_sleep(const char *file, int line);

/* include/linux/kernel.h: might_sleep() passes __LINE__. */
#define might_sleep() __might_sleep(__FILE__, __LINE__)

/* include/asm-generic/bug.h (6.1): DO_ONCE_LITE_IF keeps its flag in .data.once. */
#define WARN_ONCE(condition, ...) ({					\
	static _Bool __attribute__((section(".data.once"))) __already_done; \
	int __ret_warn_once = !!(condition);				\
	if (unlikely(__ret_warn_once && !__already_done)) {		\
		__already_done = 1;					\
		printk(__VA_ARGS__);					\
	}								\
	unlikely(__ret_warn_once);					\
})

/* livegraft.h, without the kernel headers it pulls in. */
#define __LG_CAT2(a, b) a##b
#define __LG_CAT(a, b) __LG_CAT2(a, b)
#define LIVEGRAFT_PRE_PATCH_CALLBACK(fn)				\
	static int (*__LG_CAT(livegraft_pre_patch_, __COUNTER__))(void *) \
	__used __attribute__((section(".livegraft.callbacks.pre_patch"), aligned(8))) = (fn)
#define LIVEGRAFT_POST_UNPATCH_CALLBACK(fn)				\
	static void (*__LG_CAT(livegraft_post_unpatch_, __COUNTER__))(void *) \
	__used __attribute__((section(".livegraft.callbacks.post_unpatch"), aligned(8))) = (fn)

/* include/linux/export.h, reduced: the differ only looks at __ksymtab_<name> symbols. */
#define EXPORT_SYMBOL(sym)						\
	static const void *__ksymtab_##sym __used			\
	__attribute__((section("___ksymtab+" #sym))) = (const void *)&sym

/* arch/x86/include/asm/jump_label.h (6.1), reduced: a 5-byte nop and a __jump_table entry
 * { s32 code; s32 target; long key; } with the key PC-relative, as the kernel emits it. */
struct static_key { int enabled; };
static inline __attribute__((always_inline)) _Bool arch_static_branch(struct static_key *key)
{
	asm goto("1: .byte 0x0f,0x1f,0x44,0x00,0x00\n\t"
		 ".pushsection __jump_table, \"aw\"\n\t"
		 ".balign 8\n\t"
		 ".long 1b - ., %l[l_yes] - .\n\t"
		 ".quad %c0 - .\n\t"
		 ".popsection"
		 : : "i" (key) : : l_yes);
	return 0;
l_yes:
	return 1;
}
#define static_branch_unlikely(key) unlikely(arch_static_branch(key))

#define LIVEGRAFT_IGNORE_FUNCTION(fn)					\
	static void *__LG_CAT(livegraft_ignore_func_, __COUNTER__)	\
	__used __attribute__((section(".livegraft.ignore.functions"), aligned(8))) = (void *)(fn)

/* include/linux/dynamic_debug.h (6.1), reduced: a descriptor in __dyndbg per pr_debug site,
 * named __UNIQUE_ID_ddebugN, carrying the site's line; its static key gates the call. */
struct _ddebug { const char *modname, *function, *filename, *format; unsigned int lineno:18; unsigned int flags:8; struct static_key key; } __attribute__((aligned(8)));
extern void __dynamic_pr_debug(struct _ddebug *d, const char *fmt, ...);
#define __DD_ID(n) __LG_CAT(__UNIQUE_ID_ddebug, n)
#define __pr_debug(id, fmt, ...) do {					\
	static struct _ddebug __used __attribute__((section("__dyndbg"))) id = \
		{ "unit", __func__, __FILE__, fmt, __LINE__, 0, { 0 } };	\
	if (static_branch_unlikely(&id.key))				\
		__dynamic_pr_debug(&id, fmt, ##__VA_ARGS__);		\
} while (0)
#define pr_debug(fmt, ...) __pr_debug(__DD_ID(__COUNTER__), fmt, ##__VA_ARGS__)

/* include/linux/printk.h (6.1, CONFIG_PRINTK_INDEX): an index entry per printk site. */
struct pi_entry { const char *fmt; const char *func; const char *file; unsigned int line; };
#define printk_index(fmt) ({						\
	static const struct pi_entry _entry __used = { fmt, __func__, __FILE__, __LINE__ }; \
	static const struct pi_entry *_entry_ptr __used __attribute__((section(".printk_index"))) = &_entry; \
	0; })

/* include/linux/tracepoint.h (6.1), reduced: a tracepoint's static key gates its call. */
struct tracepoint { const char *name; struct static_key key; };
#define DECLARE_TRACE(name) extern struct tracepoint __tracepoint_##name; extern void __traceiter_##name(int);
#define trace_call(name, arg) do { if (static_branch_unlikely(&__tracepoint_##name.key)) __traceiter_##name(arg); } while (0)

/* arch/x86/include/asm/static_call.h (6.1), reduced: a call to the trampoline and a
 * .static_call_sites entry { s32 addr; s32 key; }. */
#define static_call_site(name)						\
	asm volatile("1: call __SCT__" #name "\n\t"			\
		     ".pushsection .static_call_sites, \"a\"\n\t"	\
		     ".long 1b - .\n\t"					\
		     ".long __SCK__" #name " - .\n\t"			\
		     ".popsection" ::: "memory", "rax", "rdi", "rsi", "rdx", "rcx", "r8", "r9", "r10", "r11")

#endif
