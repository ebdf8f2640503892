#include "kernel.h"

static noinline int helper(int n)
{
	printk("helper %d\n", n);
	return n * 9;
}

int caller(int n)
{
	return helper(n) + 2;
}

int caller2(int n)
{
	return helper(n + 1);
}
