#include "kernel.h"

static int counter;

static noinline int bump(int n)
{
	counter += n + 1;
	return counter;
}

int entry(int n)
{
	return bump(n) + 1;
}
