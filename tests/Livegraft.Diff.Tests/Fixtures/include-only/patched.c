#include "kernel.h"
#include "extra.h"

static int limit = 4;

int handle(int n)
{
	might_sleep();
	WARN_ONCE(n > limit, "too big %d\n", n);
	pr_debug("handle %d\n", n);
	return n + limit;
}
