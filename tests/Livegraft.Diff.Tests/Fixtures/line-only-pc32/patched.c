#include "kernel.h"

/* An unrelated comment that shifts the lines below. */


void *alloc_it(unsigned long n)
{
	might_sleep();
	return kmalloc(n, 0xcc0);
}
