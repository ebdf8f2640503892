// The VM tests boot QEMU under TCG on a two-core machine; running classes in parallel only makes
// every boot slower and risks the boot timeouts.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
