#include "kernel.h"

static const int c0 = __COUNTER__;
int handle(int n)
{
	pr_debug("handle %d\n", n);
	printk_index("handle %d\n");
	return n + 1;
}
