/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kpatch-syscall.h - kpatch's syscall patching macros, mapped onto livegraft.h.
 * KPATCH_SYSCALL_DEFINEn(name, ...) defines the syscall like SYSCALL_DEFINEn() but without
 * error-injection and syscall-metadata annotations.
 */
#ifndef __KPATCH_SYSCALL_H_
#define __KPATCH_SYSCALL_H_

#include "livegraft.h"

#define KPATCH_SYSCALL_DEFINE0(name)		LIVEGRAFT_SYSCALL_DEFINE0(name)
#define KPATCH_SYSCALL_DEFINE1(name, ...)	LIVEGRAFT_SYSCALL_DEFINE1(name, __VA_ARGS__)
#define KPATCH_SYSCALL_DEFINE2(name, ...)	LIVEGRAFT_SYSCALL_DEFINE2(name, __VA_ARGS__)
#define KPATCH_SYSCALL_DEFINE3(name, ...)	LIVEGRAFT_SYSCALL_DEFINE3(name, __VA_ARGS__)
#define KPATCH_SYSCALL_DEFINE4(name, ...)	LIVEGRAFT_SYSCALL_DEFINE4(name, __VA_ARGS__)
#define KPATCH_SYSCALL_DEFINE5(name, ...)	LIVEGRAFT_SYSCALL_DEFINE5(name, __VA_ARGS__)
#define KPATCH_SYSCALL_DEFINE6(name, ...)	LIVEGRAFT_SYSCALL_DEFINE6(name, __VA_ARGS__)
#define KPATCH_SYSCALL_DEFINEx(x, sname, ...)	LIVEGRAFT_SYSCALL_DEFINEx(x, sname, __VA_ARGS__)

#endif /* __KPATCH_SYSCALL_H_ */
