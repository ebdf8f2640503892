#include "kernel.h"

int handle(int n)
{
	return n + 2;
}
EXPORT_SYMBOL(handle);
