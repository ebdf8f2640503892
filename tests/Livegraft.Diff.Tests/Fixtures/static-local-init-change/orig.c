#include "kernel.h"

int next_id(void)
{
	static int count = 5;

	return ++count;
}
