#include "kernel.h"

/*
 * A counter of how often the file was shown. This comment moves every
 * line below it, which must not matter: nothing here uses __LINE__.
 */
static int counter;

noinline void show_it(struct seq_file *m)
{
	counter++;	/* racy, but only statistics */
	seq_printf(m, "count %d\n", counter);
}

// another comment
void other(struct seq_file *m)
{
	seq_puts(m, "unchanged\n");
}
