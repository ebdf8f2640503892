#include "kernel.h"

int limit = 2;
extern int gone(int n);

int over_limit(int n)
{
	return n > limit;
}

int handle(int n)
{
	return n + 1;
}
