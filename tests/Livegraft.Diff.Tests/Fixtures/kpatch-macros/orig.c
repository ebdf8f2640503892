#include "kernel.h"
#include "kpatch-macros.h"

static noinline int noisy(int n)
{
	printk("noisy %d\n", n);
	return n;
}

int handle(int n)
{
	return noisy(n) + 1;
}
