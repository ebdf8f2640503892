#include "kernel.h"

int next_id(void)
{
	static int count;

	if (count > 1000)
		printk("ids wrapped\n");
	return ++count;
}
