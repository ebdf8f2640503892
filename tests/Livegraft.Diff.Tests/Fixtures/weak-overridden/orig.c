#include "kernel.h"

int __attribute__((weak)) arch_hook(int n)
{
	return n;
}

int handle(int n)
{
	return arch_hook(n) + 1;
}
