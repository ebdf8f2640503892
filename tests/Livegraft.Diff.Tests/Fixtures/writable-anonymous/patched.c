#include "kernel.h"

asm(".pushsection .data.anon, \"aw\"\n\t"
    ".Lanon: .long 0\n\t"
    ".popsection");

int bump(void)
{
	int v;
	asm volatile("movl .Lanon(%%rip), %0" : "=r"(v));
	return v + 2;
}
