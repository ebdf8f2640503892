using System.Runtime.CompilerServices;

// Tests reach the host-tool runner directly to simulate a missing decompressor.
[assembly: InternalsVisibleTo("Livegraft.Symbols.Tests")]
