#include "kernel.h"

int handle(int n)
{
	static_call_site(foo);
	return n + 2;
}
