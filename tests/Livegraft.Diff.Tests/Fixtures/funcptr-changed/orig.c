#include "kernel.h"

extern void set_handler(int (*fn)(int));

static noinline int handler(int n)
{
	return n + 1;
}

void register_it(void)
{
	set_handler(handler);
}

int call_it(int n)
{
	return handler(n);
}
