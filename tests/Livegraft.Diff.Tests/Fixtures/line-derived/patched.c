#include "kernel.h"

/* a fix elsewhere in the file added lines above */


struct trans;
extern void __btrfs_abort_transaction(struct trans *t, const char *func, unsigned int line, int err);
#define btrfs_abort_transaction(t, err) __btrfs_abort_transaction(t, __func__, __LINE__, err)

int commit(struct trans *t, int err)
{
	if (err) {
		btrfs_abort_transaction(t, err);
		return err;
	}
	return 0;
}
