// SPDX-License-Identifier: GPL-2.0-or-later
/* lg-sample recording a kernel build id (a placeholder the tests rewrite or leave wrong). */
#define LG_RECORD_BUILD_ID
#include "lg-sample.c"
