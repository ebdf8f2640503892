#include "kernel.h"

static const int c0 = __COUNTER__;
static const int c1 = __COUNTER__;


/* a comment that moves every line below */
int handle(int n)
{
	/* and one more line */
	pr_debug("handle %d\n", n);
	printk_index("handle %d\n");
	return n + 1;
}
