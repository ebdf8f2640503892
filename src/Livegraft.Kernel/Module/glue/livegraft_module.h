/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Livegraft: the data a generated livepatch module carries, as the module's C glue reads it.
 *
 * Nothing here is generated. The build writes one relocatable object, livegraft_desc.o, that
 * defines the symbols below with this layout (src/Livegraft.Kernel/ModuleDescriptor.cs, which
 * mirrors these sizes; livepatch.c checks them with BUILD_BUG_ON). Pointers are R_X86_64_64
 * relocations the module link resolves; livegraft_verify_addr is filled by livepatch
 * relocations (Documentation/livepatch/module-elf-format.rst).
 */
#ifndef LIVEGRAFT_MODULE_H
#define LIVEGRAFT_MODULE_H

#include <linux/types.h>

#define LIVEGRAFT_DESC_MAGIC	0x4447464cU	/* "LFGD" */
#define LIVEGRAFT_DESC_VERSION	1U

/* Callback kinds, in struct klp_callbacks order (Documentation/livepatch/callbacks.rst). */
enum livegraft_callback_kind {
	LIVEGRAFT_PRE_PATCH = 0,
	LIVEGRAFT_POST_PATCH = 1,
	LIVEGRAFT_PRE_UNPATCH = 2,
	LIVEGRAFT_POST_UNPATCH = 3,
};

/* One replaced function: a struct klp_func. 24 bytes. */
struct livegraft_func_desc {
	const char *old_name;
	void *new_func;
	unsigned long old_sympos;
};

/* One patched object: a struct klp_object. 24 bytes. name is NULL for vmlinux. */
struct livegraft_object_desc {
	const char *name;
	const struct livegraft_func_desc *funcs;
	u32 nr_funcs;
	u32 reserved;
};

/* One author callback (livegraft.h LIVEGRAFT_*_CALLBACK), run in table order. 16 bytes. */
struct livegraft_callback_desc {
	u32 object;
	u32 kind;
	void *fn;
};

/* livegraft_patch_desc.flags */
/* The kernel leaves klp relocation targets in place when a patched module goes away (no
 * klp_clear_object_relocs, before 6.2 upstream): the glue clears them itself (livegraft_relocs.c). */
#define LIVEGRAFT_FLAG_CLEAR_RELOCS	0x1U

/* The patch. 40 bytes. */
struct livegraft_patch_desc {
	u32 magic;
	u32 version;
	u32 nr_objects;
	u32 nr_callbacks;
	u32 replace;
	u32 flags;
	const struct livegraft_object_desc *objects;
	const struct livegraft_callback_desc *callbacks;
};

extern const struct livegraft_patch_desc livegraft_patch_desc;

/* Run-pre verification (docs/verify.md): the table Livegraft.Verify encodes (VerifyTable.cs) and
 * one address per entry, resolved by a livepatch relocation before the object's pre_patch runs. */
extern const u8 livegraft_verify_blob[];
extern unsigned long livegraft_verify_addr[];

/* 0 when every function of the object matches; else -EINVAL, with the first mismatch in why. */
int livegraft_verify_object(unsigned int objidx, const char *objname, char *why, size_t why_len);

/* Kernel functions and data the glue needs that vmlinux does not export, reached through vmlinux
 * livepatch relocations the module loader applies when this module is loaded: the functions are
 * 5-byte thunks in livegraft_desc.o (a jmp whose target is .klp.sym.vmlinux.<name>,0: a direct
 * branch, as indirect branch tracking wants), text_mutex a pointer. */
void *livegraft_text_poke(void *addr, const void *opcode, size_t len);
void livegraft_text_poke_sync(void);
extern struct mutex *livegraft_text_mutex;

void livegraft_clear_object_relocs(const char *objname);

#endif /* LIVEGRAFT_MODULE_H */
