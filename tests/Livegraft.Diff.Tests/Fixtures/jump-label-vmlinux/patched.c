#include "kernel.h"

extern struct static_key tracing_key;

int handle(int n)
{
	if (static_branch_unlikely(&tracing_key))
		printk("handle %d\n", n);
	return n + 2;
}
