#include "kernel.h"

static int counter;

noinline void show_it(struct seq_file *m)
{
	counter++;
	seq_printf(m, "count %d\n", counter);
}

void other(struct seq_file *m)
{
	seq_puts(m, "unchanged\n");
}
