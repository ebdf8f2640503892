#include "kernel.h"

static int __init setup_thing(void)
{
	printk("thing: setup\n");
	return 0;
}

int (*thing_initcall)(void) __used = setup_thing;
