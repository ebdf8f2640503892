#include "kernel.h"
#include "kpatch-macros.h"

static noinline int noisy(int n)
{
	printk("noisy %d\n", n + 1);
	return n;
}

int handle(int n)
{
	return noisy(n) + 2;
}

static int pre_cb(void *obj)
{
	return 0;
}

KPATCH_PRE_PATCH_CALLBACK(pre_cb);
KPATCH_IGNORE_FUNCTION(noisy);
