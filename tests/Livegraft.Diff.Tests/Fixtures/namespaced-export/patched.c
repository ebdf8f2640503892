#include "kernel.h"

extern int usb_stor_thing(int n);

int handle(int n)
{
	return usb_stor_thing(n) + 1;
}
