#include "kernel.h"

static int ready;

int handle(int n)
{
	return ready ? n + 2 : n + 1;
}

static int pre_patch(void *obj)
{
	ready = 1;
	printk("pre_patch\n");
	return 0;
}
LIVEGRAFT_PRE_PATCH_CALLBACK(pre_patch);
