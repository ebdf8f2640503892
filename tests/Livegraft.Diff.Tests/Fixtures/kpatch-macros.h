/* kpatch-build/kpatch-macros.h's encodings, reduced to what create-diff-object reads: objects
 * built with kpatch's own macros carry these .kpatch.* sections (not Livegraft's). */
#ifndef FIXTURE_KPATCH_MACROS_H
#define FIXTURE_KPATCH_MACROS_H

struct kpatch_pre_patch_callback {
	int (*fn)(void *obj);
	char *objname; /* filled in by create-diff-object */
};

#define KPATCH_IGNORE_FUNCTION(_fn) \
	void *__kpatch_ignore_func_##_fn __attribute__((section(".kpatch.ignore.functions"))) = _fn;

#define KPATCH_FORCE_UNSAFE(_fn) \
	void *__kpatch_force_func_##_fn __attribute__((section(".kpatch.force"))) = _fn;

#define KPATCH_PRE_PATCH_CALLBACK(_fn) \
	static struct kpatch_pre_patch_callback kpatch_pre_patch_data __attribute__((section(".kpatch.callbacks.pre_patch"), used)) = { \
		.fn = _fn, \
		.objname = 0 \
	};

#endif
