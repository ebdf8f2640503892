#include "kernel.h"

static const int weights[8] = { 3, 1, 4, 1, 5, 9, 2, 6 };

int weight_of(unsigned int i)
{
	return weights[i & 7] + 1;
}

int weight_sum(void)
{
	int s = 0;

	for (int i = 0; i < 8; i++)
		s += weights[i];
	return s;
}
