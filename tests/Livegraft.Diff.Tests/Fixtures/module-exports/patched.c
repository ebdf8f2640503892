#include "kernel.h"

/* A module function using the exports of a module it depends on (dep), its own (mymod) and vmlinux's. */
extern int dep_helper(int n);
extern int other_thing(int n);
extern int printk(const char *fmt, ...);

noinline int own_export(int n)
{
	return n * 3;
}

int handle(int n)
{
	printk("handle %d\n", n);
	return dep_helper(n) + own_export(n) + other_thing(n);
}
