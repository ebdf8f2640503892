#include "kernel.h"

int next_id(void)
{
	static int count = 6;

	return ++count;
}
