#include "kernel.h"

int check(int n)
{
	WARN_ONCE(n < 0, "negative %d\n", n);
	return n * 2;
}

int check2(int n)
{
	WARN_ONCE(n > 9, "big %d\n", n);
	return n * 5;
}
