#include "kernel.h"

int helper(int n)
{
	return n + 1;
}

int handle(int n)
{
	return helper(n);
}
