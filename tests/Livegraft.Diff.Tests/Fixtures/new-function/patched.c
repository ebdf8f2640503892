#include "kernel.h"

static noinline int check_range(int n)
{
	if (n < 0 || n > 1000) {
		printk("bad value %d\n", n);
		return 0;
	}
	return n;
}

int handle(int n)
{
	return check_range(n) + 1;
}
