#include "kernel.h"

int tunable __attribute__((section(".lgtest"))) = 3;

int handle(int n)
{
	return n + tunable + 1;
}
