#include "kernel.h"

asm(".pushsection .data.lgvar, \"aw\"\n\t"
    ".globl lg_counter\n"
    "lg_counter: .long 0\n\t"
    ".popsection");
extern int lg_counter;

int bump(void)
{
	return lg_counter += 2;
}
