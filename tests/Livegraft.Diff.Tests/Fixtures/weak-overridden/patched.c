#include "kernel.h"

int __attribute__((weak)) arch_hook(int n)
{
	return n * 2;
}

int handle(int n)
{
	return arch_hook(n) + 1;
}
