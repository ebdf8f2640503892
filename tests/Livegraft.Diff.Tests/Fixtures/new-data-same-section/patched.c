#include "kernel.h"

/* Two new objects in one shared section, one pointing at the other: the output keeps them in one
 * section, and the pointer's field must still end up zero for the module loader. */
static int limits[2] __attribute__((section(".data.shared"), used)) = { 4, 8 };
static int *current_limit __attribute__((section(".data.shared"), used)) = &limits[1];

int lookup(int i)
{
	return i * 2 + *current_limit;
}
