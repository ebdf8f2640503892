#include "kernel.h"

extern int slow_path(int *p, int i);
struct s { int ready; int v[64]; };
static int lookup(struct s *p, int n)
{
	if (__builtin_expect(p->ready, 1))
		return p->v[n & 63];
	for (int i = 0; i < n; i++) {
		if (slow_path(p->v, i) > 20) { p->ready = 1; return i; }
		printk("step %d\n", i);
		printk("step2 %d %d\n", i, p->v[i & 63]);
		printk("step3 %d\n", i * 7);
		printk("step4 %d\n", i * 9);
	}
	return -1;
}
int a(struct s *p, int n) { return lookup(p, n); }
int b(struct s *p, int n) { return lookup(p, n + 1) + 1; }
int c(struct s *p, int n) { return lookup(p, n + 3) + 5; }
int d(struct s *p, int n) { return lookup(p, n + 4) + 6; }
