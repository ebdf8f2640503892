#include "kernel.h"

int limit_bytes(int n)
{
	return n > 4096 ? 4096 : n;
}

void *alloc_it(unsigned long n)
{
	might_sleep();
	return kmalloc(n, 0xcc0);
}
