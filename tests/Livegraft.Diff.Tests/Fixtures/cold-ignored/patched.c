#include "kernel.h"

extern int do_work(int);
extern void report_error(const char *what, int err) __cold;

/* The error path calls a cold function: gcc moves it to process.cold in .text.unlikely. */
int process(int n)
{
	int r = do_work(n);

	if (r < 0) {
		report_error("process", r);
		printk("process: error %d\n", r);
		return -1;
	}
	return r + n;
}

LIVEGRAFT_IGNORE_FUNCTION(process);
