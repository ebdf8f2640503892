#include "kernel.h"

static inline __attribute__((always_inline)) int has_feature(void)
{
	/* static_cpu_has's slow path lives in .altinstr_aux and jumps back */
	asm goto("jmp 6f\n\t"
		 ".pushsection .altinstr_aux, \"ax\"\n\t"
		 "6: testb $1, boot_cpu_data(%%rip)\n\t"
		 "jnz %l[t_yes]\n\t"
		 "jmp %l[t_no]\n\t"
		 ".popsection" : : : : t_yes, t_no);
t_yes:
	return 1;
t_no:
	return 0;
}

int first(int n)
{
	
	return n + 1;
}

int second(int n)
{
	return has_feature() ? n : -n;
}
