#include "kernel.h"

static inline int clamp_len(int n)
{
	return n > 100 ? 100 : n;
}

int read_len(int n)
{
	return clamp_len(n) + 1;
}

int write_len(int n)
{
	return clamp_len(n) * 2;
}

int unrelated(int n)
{
	return n - 7;
}
