#include "kernel.h"

static noinline int helper(int n)
{
	printk("helper %d\n", n);
	return n * 7;
}

int caller(int n)
{
	return helper(n) + 1;
}

int caller2(int n)
{
	return helper(n + 1);
}
