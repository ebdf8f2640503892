// SPDX-License-Identifier: GPL-2.0
/*
 * Livegraft: run-pre verification inside the module (docs/verify.md). Before klp enables the
 * patch for an object, compare the running code of every function the patch replaces or reaches
 * with the code it was built from, ignoring the bytes the link and boot rewrite. A mismatch makes
 * the object's pre_patch callback fail, so klp never enables the patch (livepatch.rst).
 *
 * Table layout (little endian; Livegraft.Verify/VerifyTable.cs encodes it):
 *   "LGVERIF1" u32 count u32 reserved
 *   count x { u32 object-index, u32 sympos, u32 size, u16 name-len, u16 object-len, u8 role, u8[3],
 *             name, object, expected[size], mask[size], zero padding to 4 }
 */
#include <linux/module.h>
#include <linux/kernel.h>
/* get_unaligned_le32 and friends: <asm/unaligned.h> up to 6.11, <linux/unaligned.h> from 6.12. */
#if __has_include(<linux/unaligned.h>)
#include <linux/unaligned.h>
#else
#include <asm/unaligned.h>
#endif
#include "livegraft_module.h"

int livegraft_verify_object(unsigned int objidx, const char *objname, char *why, size_t why_len)
{
	const u8 *blob = livegraft_verify_blob;
	u32 count = get_unaligned_le32(blob + 8), i;
	size_t off = 16;
	int bad = 0, checked = 0;

	for (i = 0; i < count; i++) {
		const u8 *e = blob + off;
		u32 obj = get_unaligned_le32(e), sympos = get_unaligned_le32(e + 4);
		u32 size = get_unaligned_le32(e + 8), k;
		u16 nlen = get_unaligned_le16(e + 12), olen = get_unaligned_le16(e + 14);
		const char *name = (const char *)(e + 20);
		const u8 *expected = e + 20 + nlen + olen, *mask = expected + size;
		const u8 *text = (const u8 *)livegraft_verify_addr[i];

		off = ALIGN(off + 20 + nlen + olen + 2 * (size_t)size, 4);
		if (obj != objidx)
			continue;
		checked++;
		if (!text) {
			pr_err("livegraft: %s: %s: %.*s,%u was not resolved; refusing to patch\n",
			       THIS_MODULE->name, objname, nlen, name, sympos);
			if (!bad)
				snprintf(why, why_len, "%.*s,%u was not resolved", nlen, name, sympos);
			bad = 1;
			continue;
		}
		for (k = 0; k < size; k++) {
			if (mask[k] && text[k] != expected[k]) {
				pr_err("livegraft: %s: %s: %.*s,%u+0x%x: running code differs from the code this patch was built from (expected %02x, found %02x); refusing to patch\n",
				       THIS_MODULE->name, objname, nlen, name, sympos, k, expected[k], text[k]);
				if (!bad)
					snprintf(why, why_len, "%.*s,%u+0x%x: running code differs from the code the patch was built from",
						 nlen, name, sympos, k);
				bad = 1;
				break;
			}
		}
	}
	if (bad)
		return -EINVAL;
	pr_info("livegraft: %s: %s: %d functions match the code the patch was built from\n",
		THIS_MODULE->name, objname, checked);
	return 0;
}
