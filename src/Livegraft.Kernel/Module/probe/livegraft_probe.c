// SPDX-License-Identifier: GPL-2.0
/*
 * Livegraft target probe (docs/targets.md). Compiled once per prepared tree, with that tree's
 * kbuild flags, to read what the x86-64 special sections of its objects look like: the size of
 * the struct behind each one and the offsets of the fields the differ and run-pre verification
 * read. Each value is an unsigned long named livegraft_probe_<name> in section .livegraft.probe;
 * Livegraft reads them back from the object (Features/TargetProbe.cs). Never linked or loaded.
 *
 * Structs a kernel may lack are guarded by LIVEGRAFT_PROBE_<X> macros, which Livegraft defines
 * when the tree's header defines the struct (struct paravirt_patch_site is gone from 6.8 on),
 * or by the config option that declares them.
 */
#include <linux/kernel.h>
#include <linux/stddef.h>
#include <linux/bug.h>
#include <linux/jump_label.h>
#include <linux/static_call_types.h>
#include <linux/printk.h>
#include <linux/processor.h> /* cpu_relax(), which asm/extable.h uses without including it */
#include <asm/alternative.h>
#include <asm/extable.h>
#include <asm/orc_types.h>
#ifdef LIVEGRAFT_PROBE_PARAVIRT_PATCH_SITE
#include <asm/paravirt_types.h>
#endif

#define LIVEGRAFT_PROBE(name, value) \
	const unsigned long livegraft_probe_##name __used __section(".livegraft.probe") = (value)

/* .altinstructions: apply_alternatives() reads instrlen and replacementlen. */
LIVEGRAFT_PROBE(alt_instr, sizeof(struct alt_instr));
LIVEGRAFT_PROBE(alt_instr_instrlen, offsetof(struct alt_instr, instrlen));
LIVEGRAFT_PROBE(alt_instr_replacementlen, offsetof(struct alt_instr, replacementlen));

/* __bug_table */
LIVEGRAFT_PROBE(bug_entry, sizeof(struct bug_entry));

/* __jump_table: code, target, key. */
LIVEGRAFT_PROBE(jump_entry, sizeof(struct jump_entry));
LIVEGRAFT_PROBE(jump_entry_key, offsetof(struct jump_entry, key));

/* __ex_table */
LIVEGRAFT_PROBE(exception_table_entry, sizeof(struct exception_table_entry));

/* .static_call_sites: addr, key. */
LIVEGRAFT_PROBE(static_call_site, sizeof(struct static_call_site));
LIVEGRAFT_PROBE(static_call_site_key, offsetof(struct static_call_site, key));

/* .orc_unwind (in lockstep with the 4-byte .orc_unwind_ip). */
LIVEGRAFT_PROBE(orc_entry, sizeof(struct orc_entry));

#ifdef CONFIG_PRINTK_INDEX
/* .printk_index */
LIVEGRAFT_PROBE(pi_entry, sizeof(struct pi_entry));
#endif

#ifdef LIVEGRAFT_PROBE_PARAVIRT_PATCH_SITE
/* .parainstructions: apply_paravirt() reads len. */
LIVEGRAFT_PROBE(paravirt_patch_site, sizeof(struct paravirt_patch_site));
LIVEGRAFT_PROBE(paravirt_patch_site_len, offsetof(struct paravirt_patch_site, len));
#endif
