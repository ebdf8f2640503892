/* An include a fix might add: more lines, more __COUNTER__ uses, a static inline helper. */
#ifndef FIXTURE_EXTRA_H
#define FIXTURE_EXTRA_H

static inline int extra_twice(int n)
{
	return n * 2;
}

static const int __attribute__((unused)) extra_counter_a = __COUNTER__;
static const int __attribute__((unused)) extra_counter_b = __COUNTER__;

#endif
