#include "kernel.h"

int limit = 1;

int over_limit(int n)
{
	return n > limit;
}
