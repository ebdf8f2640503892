#include "kernel.h"

static inline __attribute__((always_inline)) void pv_site(void)
{
	/* an old kernel's paravirt site: entries aligned, the last one not padded */
	asm volatile("1: .byte 0x0f,0x1f,0x44,0x00,0x00\n\t"
		     ".pushsection .parainstructions, \"a\"\n\t"
		     ".balign 8\n\t"
		     ".quad 1b\n\t"
		     ".byte 7\n\t"
		     ".byte 5\n\t"
		     ".popsection");
}

int other(int n)
{
	pv_site();
	return n * 3;
}

int handle(int n)
{
	pv_site();
	return n + 2;
}
