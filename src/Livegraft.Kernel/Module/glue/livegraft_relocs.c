// SPDX-License-Identifier: GPL-2.0
/*
 * Livegraft: clearing an object's livepatch relocation targets when its module goes away, on
 * kernels whose livepatch core does not (docs/build.md, "Modules that come and go").
 *
 * klp writes the .klp.rela.<object>.* relocations of a patched module into this module's code and
 * data when the module arrives (klp_module_coming -> apply_relocate_add). x86's apply_relocate_add
 * refuses a target that is not zero ("Skipping invalid relocation target, existing value is
 * nonzero"), so without clearing, the module could never be loaded again while the patch stays.
 * Upstream (6.2, kernel/livepatch/core.c klp_clear_object_relocs) clears them in
 * klp_cleanup_module_patches_limited, right after the object's post_unpatch callback; this is the
 * same walk, run from that callback: the sections come from the patch module's own ELF headers the
 * module loader keeps for livepatch modules (mod->klp_info, kernel/module/livepatch.c), and the
 * places are written with text_poke under text_mutex as apply_relocate_add writes them.
 *
 * A module whose verification fails when it arrives (livegraft_pre_patch) is refused by klp, which
 * leaves that object's relocations applied (also in 6.12): they are cleared then too, so the next
 * attempt to load the module is refused for the same reason, not for a stale relocation.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/elf.h>
#include <linux/mutex.h>
#include <linux/string.h>
#include "livegraft_module.h"

/* Bytes a relocation of this type wrote (arch/x86/kernel/module.c __apply_relocate_add). */
static size_t livegraft_reloc_size(unsigned int type)
{
	switch (type) {
	case R_X86_64_64:
	case R_X86_64_PC64:
		return 8;
	case R_X86_64_32:
	case R_X86_64_32S:
	case R_X86_64_PC32:
	case R_X86_64_PLT32:
		return 4;
	default:
		return 0;
	}
}

void livegraft_clear_object_relocs(const char *objname)
{
	struct klp_modinfo *info = THIS_MODULE->klp_info;
	static const u64 zero;
	size_t len = strlen(objname);
	unsigned int i, cleared = 0;

	if (!info || !livegraft_text_mutex) {
		pr_err("livegraft: %s: cannot clear the relocations of %s: module %s will not load again while this patch is loaded\n",
		       THIS_MODULE->name, objname, objname);
		return;
	}
	mutex_lock(livegraft_text_mutex);
	for (i = 1; i < info->hdr.e_shnum; i++) {
		const Elf_Shdr *sec = &info->sechdrs[i];
		const char *name = info->secstrings + sec->sh_name;
		const Elf64_Rela *rela = (const Elf64_Rela *)sec->sh_addr;
		unsigned long base, j;

		/* .klp.rela.<objname>.<section> (klp_write_object_relocs) */
		if (!(sec->sh_flags & SHF_RELA_LIVEPATCH) || strncmp(name, ".klp.rela.", 10) ||
		    strncmp(name + 10, objname, len) || name[10 + len] != '.')
			continue;
		base = info->sechdrs[sec->sh_info].sh_addr;
		for (j = 0; j < sec->sh_size / sizeof(*rela); j++) {
			size_t size = livegraft_reloc_size(ELF64_R_TYPE(rela[j].r_info));

			if (size) {
				livegraft_text_poke((void *)(base + rela[j].r_offset), &zero, size);
				cleared++;
			}
		}
	}
	livegraft_text_poke_sync();
	mutex_unlock(livegraft_text_mutex);
	pr_info("livegraft: %s: %s: cleared %u relocated places; the module can be loaded again\n",
		THIS_MODULE->name, objname, cleared);
}
