#include "kernel.h"

extern void set_err(const char *msg);

int check_args(int a, int b)
{
	if (a < 0) {
		static const char __msg[] = "negative a";
		set_err(__msg);
		return -1;
	}
	if (b < 0) {
		static const char __msg[] = "b must not be negative";
		set_err(__msg);
		return -2;
	}
	return 0;
}
