#include "kernel.h"

int handle_calls;

int handle(int n)
{
	handle_calls++;
	return n + 1;
}
