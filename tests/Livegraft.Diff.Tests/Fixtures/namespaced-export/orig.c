#include "kernel.h"

extern int usb_stor_thing(int n);

int handle(int n)
{
	return n + 1;
}
