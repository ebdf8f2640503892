#include "kernel.h"

int handle(int n)
{
	pr_debug("handle %d\n", n);
	return n + 1;
}
