#include "kernel.h"

extern void set_handler(int (*fn)(int));

static noinline int handler(int n)
{
	return n + 2;
}

void register_it(void)
{
	set_handler(handler);
	printk("registered\n");
}

int call_it(int n)
{
	return handler(n);
}
