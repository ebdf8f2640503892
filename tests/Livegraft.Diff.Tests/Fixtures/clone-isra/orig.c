#include "kernel.h"

struct item {
	long pad[4];
	int weight;
	int flags;
};

/* Only reads it->weight: gcc's IPA-SRA passes the int instead (item_cost.isra.0). */
static noinline int item_cost(struct item *it, int mult)
{
	int w = it->weight;

	if (w > mult)
		return w - mult;
	return w * mult;
}

int cost_a(struct item *it, int m)
{
	return item_cost(it, m) + 1;
}

int cost_b(struct item *it, int m)
{
	return item_cost(it, m + 2) + 3;
}
