#include "kernel.h"

static int tbl[4];

int sum(void)
{
	int s = 0;
	for (int *p = tbl; p < &tbl[4]; p++)
		s += *p ;
	return s;
}

void fill(int v)
{
	for (int i = 0; i < 4; i++)
		tbl[i] = v;
}
