/* Fixture for ElfPrinterTests: compiled at test time with gcc-12, printed, compared to Golden/printer.txt. */
extern int printk(const char *fmt, ...);
extern int external_counter;

static int calls;
int table[4] = { 1, 2, 3, 4 };
int *table_end = &table[4];

__attribute__((noinline)) static int bump(int x)
{
	calls += x;
	return calls;
}

int printer_entry(int x)
{
	printk("printer %d\n", bump(x) + external_counter);
	return table[x & 3];
}
