// SPDX-License-Identifier: GPL-2.0
/* A module whose /proc/lg_fixture read sleeps in fixture_block() until /proc/lg_fixture is
 * written to. A task asleep there keeps a livepatch of fixture_block from completing its
 * transition (livepatch.rst, "Consistency model": the function is on the task's stack). */
#include <linux/module.h>
#include <linux/proc_fs.h>
#include <linux/wait.h>
#include <linux/uaccess.h>

static DECLARE_WAIT_QUEUE_HEAD(lg_wait);
static int lg_released;

noinline int fixture_block(void)
{
	int ret = wait_event_interruptible(lg_wait, READ_ONCE(lg_released));

	return ret ? ret : 1;
}
EXPORT_SYMBOL_GPL(fixture_block);

noinline int fixture_value(void)
{
	return 1;
}

static ssize_t lg_read(struct file *file, char __user *buf, size_t len, loff_t *pos)
{
	char text[32];
	int n, ret;

	if (*pos)
		return 0;
	ret = fixture_block();
	if (ret < 0)
		return ret;
	n = scnprintf(text, sizeof(text), "value %d\n", ret);
	if (copy_to_user(buf, text, min_t(size_t, n, len)))
		return -EFAULT;
	*pos = n;
	return min_t(size_t, n, len);
}

static ssize_t lg_write(struct file *file, const char __user *buf, size_t len, loff_t *pos)
{
	WRITE_ONCE(lg_released, 1);
	wake_up_all(&lg_wait);
	return len;
}

static const struct proc_ops lg_ops = {
	.proc_read = lg_read,
	.proc_write = lg_write,
	.proc_lseek = noop_llseek,
};

static int __init lg_init(void)
{
	return proc_create("lg_fixture", 0666, NULL, &lg_ops) ? 0 : -ENOMEM;
}

static void __exit lg_exit(void)
{
	remove_proc_entry("lg_fixture", NULL);
}

module_init(lg_init);
module_exit(lg_exit);
MODULE_LICENSE("GPL");
