#include "kernel.h"

int limit = 2;

int over_limit(int n)
{
	return n > limit;
}
