#include "kernel.h"

extern int brand_new_helper(int);

int handle(int n)
{
	return brand_new_helper(n) + 1;
}
