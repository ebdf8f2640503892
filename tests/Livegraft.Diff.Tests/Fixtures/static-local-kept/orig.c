#include "kernel.h"

int next_id(void)
{
	static int count;

	return ++count;
}
