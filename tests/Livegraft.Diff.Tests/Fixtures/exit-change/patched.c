#include "kernel.h"

static void __exit teardown(void)
{
	printk("thing: teardown done\n");
}

void (*thing_exitcall)(void) __used = teardown;
