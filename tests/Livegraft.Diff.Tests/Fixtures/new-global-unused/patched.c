#include "kernel.h"

int new_count;

int new_helper(int n)
{
	new_count++;
	return n + 1;
}

int handle(int n)
{
	return n + 1;
}
