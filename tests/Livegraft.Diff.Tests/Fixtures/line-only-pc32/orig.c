#include "kernel.h"

void *alloc_it(unsigned long n)
{
	might_sleep();
	return kmalloc(n, 0xcc0);
}
