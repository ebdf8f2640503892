#include "kernel.h"

static int slots[4];

int take(unsigned int i)
{
	return slots[i & 3]++;
}
