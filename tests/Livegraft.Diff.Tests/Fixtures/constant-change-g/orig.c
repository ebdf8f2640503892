#include "kernel.h"

/* The fix changes a constant, in a function that also calls printk (a __LINE__ taker). */
int get_limit(int verbose)
{
	if (verbose)
		printk("limit queried\n");
	return 100;
}
