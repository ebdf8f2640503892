#include "kernel.h"

/* Kernel `inline` implies notrace: an out-of-line copy has no fentry call. */
static notrace __attribute__((__noinline__)) int scale(int x)
{
	return x * 3;
}

int api_one(int x)
{
	return scale(x) + 1;
}

int api_two(int x)
{
	return scale(x) - 1;
}
