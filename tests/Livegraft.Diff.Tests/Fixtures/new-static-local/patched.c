#include "kernel.h"

int handle(int n)
{
	static int calls;

	calls++;
	if (calls > 100)
		printk("many calls\n");
	return n + 1;
}
