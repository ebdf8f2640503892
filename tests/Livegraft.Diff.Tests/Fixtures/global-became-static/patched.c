#include "kernel.h"

static noinline int helper(int n)
{
	return n + 1;
}

int handle(int n)
{
	return helper(n) + 1;
}
