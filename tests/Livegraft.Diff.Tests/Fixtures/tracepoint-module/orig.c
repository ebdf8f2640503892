#include "kernel.h"

DECLARE_TRACE(foo_event)

int handle(int n)
{
	trace_call(foo_event, n);
	return n + 1;
}
