#include "kernel.h"

static const char names[][8] = { "zero", "one", "two", "three" };

const char *name_of(int n)
{
	return names[n & 1];
}
