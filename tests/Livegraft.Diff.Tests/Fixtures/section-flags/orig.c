#include "kernel.h"

const int tunable __attribute__((section(".lgtest"))) = 3;

int handle(int n)
{
	return n + tunable;
}
