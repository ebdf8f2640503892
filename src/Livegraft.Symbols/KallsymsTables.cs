using Livegraft.Elf;
using System.Buffers.Binary;
using System.Text;

namespace Livegraft.Symbols;

/// <summary>How <c>kallsyms_offsets</c> (or <c>kallsyms_addresses</c>) turn into addresses
/// (kernel/kallsyms.c, <c>kallsyms_sym_address</c>).</summary>
public enum KallsymsAddressMode
{
    /// <summary>No <c>CONFIG_KALLSYMS_BASE_RELATIVE</c>: <c>kallsyms_addresses[]</c> holds 64-bit addresses.</summary>
    Absolute,
    /// <summary><c>CONFIG_KALLSYMS_BASE_RELATIVE</c>: address = <c>kallsyms_relative_base + (u32)offset</c>.</summary>
    BaseRelative,
    /// <summary>Plus <c>CONFIG_KALLSYMS_ABSOLUTE_PERCPU</c>: offsets ≥ 0 are absolute (per-cpu symbols),
    /// negative ones are <c>kallsyms_relative_base - 1 - offset</c>.</summary>
    BaseRelativeAbsolutePercpu,
}

/// <summary>Where each kallsyms table sits in the vmlinux file (file offsets; -1 when absent).</summary>
/// <param name="Count">Value of <c>kallsyms_num_syms</c>.</param>
/// <param name="AddressMode">How addresses are encoded.</param>
/// <param name="RelativeBase">Value of <c>kallsyms_relative_base</c> (0 in <see cref="KallsymsAddressMode.Absolute"/>).</param>
/// <param name="Offsets">File offset of <c>kallsyms_offsets</c> (or <c>kallsyms_addresses</c>).</param>
/// <param name="RelativeBaseOffset">File offset of <c>kallsyms_relative_base</c>, or -1.</param>
/// <param name="NumSyms">File offset of <c>kallsyms_num_syms</c>.</param>
/// <param name="Names">File offset of <c>kallsyms_names</c>.</param>
/// <param name="Markers">File offset of <c>kallsyms_markers</c>.</param>
/// <param name="SeqsOfNames">File offset of <c>kallsyms_seqs_of_names</c> (6.2+, backported to late 6.1), or -1.</param>
/// <param name="TokenTable">File offset of <c>kallsyms_token_table</c>.</param>
/// <param name="TokenIndex">File offset of <c>kallsyms_token_index</c>.</param>
public sealed record KallsymsLayout(
    int Count, KallsymsAddressMode AddressMode, ulong RelativeBase,
    long Offsets, long RelativeBaseOffset, long NumSyms, long Names, long Markers, long SeqsOfNames, long TokenTable, long TokenIndex);

/// <summary>
/// Recovers the kallsyms tables that scripts/kallsyms.c compiled into a vmlinux, without any
/// symbol table: the token table is found by its run of one-character digit tokens, the rest by
/// walking backwards (and, for the 6.4+ order, forwards) with the 8-byte label alignment
/// <c>write_src</c> uses; see docs/symbols.md. Every symbol is decoded
/// in kallsyms order, which is the order klp counts <c>sympos</c> in for vmlinux.
/// </summary>
public sealed class KallsymsTables
{
    /// <summary>Upper bound on <c>kallsyms_num_syms</c> accepted while searching (kallsyms stores 24-bit sequence numbers).</summary>
    private const int MaxSymbols = 1 << 24;

    /// <summary>How far before the token table the names may start (bytes).</summary>
    private const long MaxBackwardScan = 256L << 20;

    private KallsymsTables(KallsymsLayout layout, IReadOnlyList<KernelSymbol> symbols)
    {
        Layout = layout;
        Symbols = symbols;
    }

    /// <summary>Where the tables were found.</summary>
    public KallsymsLayout Layout { get; }

    /// <summary>Every symbol in kallsyms order (address order, as <c>/proc/kallsyms</c> lists vmlinux).</summary>
    public IReadOnlyList<KernelSymbol> Symbols { get; }

    /// <summary>Reads a bzImage or vmlinux file and decodes its kallsyms.</summary>
    public static KallsymsTables ReadImage(string path) => Read(KernelImage.ReadVmlinux(path), path);

    /// <summary>Locates and decodes kallsyms in vmlinux bytes (ELF, or a raw image with the same layout).</summary>
    public static KallsymsTables Read(ReadOnlyMemory<byte> vmlinux, string? file = null)
    {
        var layout = Locate(vmlinux, file);
        return new KallsymsTables(layout, Decode(vmlinux.Span, layout, file));
    }

    /// <summary>Finds the tables; throws LG0316 when there are none.</summary>
    public static KallsymsLayout Locate(ReadOnlyMemory<byte> memory, string? file = null)
    {
        var data = memory.Span;
        // The file offset and the link address agree modulo 8 inside a PT_LOAD (gABI: p_offset ≡
        // p_vaddr mod p_align), so aligning file offsets aligns addresses, except in odd raw dumps.
        var alignDelta = 0;
        if (ElfFile.IsElf64(data))
        {
            var elf = ElfFile.Read(memory, file);
            if (elf.FindSection(".rodata") is { } rodata)
                alignDelta = (int)((rodata.Address - rodata.Offset) & 7);
        }
        var digits = "0\01\02\03\04\05\06\07\08\09\0"u8;
        var from = 0;
        while (from < data.Length)
        {
            var hit = data[from..].IndexOf(digits);
            if (hit < 0)
                break;
            var p = from + hit;
            if (TryTokenTable(data, p, alignDelta, out var table, out var index) && TryBackwards(data, table, index, alignDelta, out var layout))
                return layout;
            from = p + 1;
        }
        throw SymbolErrors.Invalid(SymbolErrors.KallsymsNotFound,
            "no kallsyms tables found (is CONFIG_KALLSYMS set? the token table's digit run '0','1',...,'9' is missing or inconsistent)", file);
    }

    private static long Align8(long position, int delta) => position + ((8 - ((position + delta) & 7)) & 7);

    private static long Round8(long size) => (size + 7) & ~7L;

    /// <summary>Checks that the digit run at <paramref name="p"/> sits at slots 0x30..0x39 of a token
    /// table followed by a matching <c>kallsyms_token_index</c>.</summary>
    private static bool TryTokenTable(ReadOnlySpan<byte> d, long p, int delta, out long table, out long index)
    {
        table = index = -1;
        // Walk the tokens of slots 0x30..0xff; each is one NUL-terminated string (possibly empty).
        var e = p;
        for (var slot = 0x30; slot <= 0xff; slot++)
        {
            if (e >= d.Length)
                return false;
            var window = d[(int)e..(int)Math.Min(d.Length, e + 1024)];
            var nul = window.IndexOf((byte)0);
            if (nul < 0)
                return false;
            e += nul + 1;
        }
        var ti = Align8(e, delta);
        if (ti + 512 > d.Length)
            return false;
        var idx = d.Slice((int)ti, 512);
        if (BinaryPrimitives.ReadUInt16LittleEndian(idx) != 0)
            return false;
        var start = p - BinaryPrimitives.ReadUInt16LittleEndian(idx[(0x30 * 2)..]);
        if (start < 0 || Align8(start, delta) != start)
            return false;
        for (var i = 0; i < 256; i++)
        {
            var s = start + BinaryPrimitives.ReadUInt16LittleEndian(idx[(i * 2)..]);
            var next = i == 255 ? e : start + BinaryPrimitives.ReadUInt16LittleEndian(idx[((i + 1) * 2)..]);
            if (next <= s || next > e || d[(int)next - 1] != 0 || d[(int)s..(int)(next - 1)].Contains((byte)0))
                return false;
        }
        table = start;
        index = ti;
        return true;
    }

    /// <summary>Scans back from the token table for <c>kallsyms_num_syms</c>, accepting a candidate only
    /// when names, markers (and <c>kallsyms_seqs_of_names</c>, when present) tile exactly up to the token
    /// table and an address table that decodes to sorted addresses sits where write_src puts it.</summary>
    private static bool TryBackwards(ReadOnlySpan<byte> d, long table, long tokenIndex, int delta, out KallsymsLayout layout)
    {
        layout = null!;
        var stop = Math.Max(8, table - MaxBackwardScan);
        for (var q = table - 8; q >= stop; q -= 8)
        {
            var n = BinaryPrimitives.ReadUInt32LittleEndian(d[(int)q..]);
            if (n == 0 || n > MaxSymbols || BinaryPrimitives.ReadUInt32LittleEndian(d[(int)(q + 4)..]) != 0)
                continue;
            var names = q + 8;
            if (names + 2L * n > table)
                continue;
            var markerBytes = Round8(4L * ((n + 255) / 256));
            foreach (var withSeqs in (ReadOnlySpan<bool>)[true, false])
            {
                var seqs = withSeqs ? table - Round8(3L * n) : -1;
                var markers = (withSeqs ? seqs : table) - markerBytes;
                if (markers < names + 2L * n || BinaryPrimitives.ReadUInt32LittleEndian(d[(int)markers..]) != 0)
                    continue;
                if (!NamesTile(d, names, markers, (int)n, delta))
                    continue;
                if (TryAddresses(d, q, tokenIndex, withSeqs, (int)n, delta, out var mode, out var relativeBase, out var offsets, out var relativeBaseOffset, ref seqs))
                {
                    layout = new KallsymsLayout((int)n, mode, relativeBase, offsets, relativeBaseOffset, q, names, markers, seqs, table, tokenIndex);
                    return true;
                }
            }
        }
        return false;
    }

    /// <summary>Finds the address table. Up to 6.3 (the reference's layout) it precedes
    /// <c>kallsyms_num_syms</c> at <paramref name="q"/>: offsets, ALGN, relative_base. From 6.4
    /// (scripts/kallsyms: "change the output order") it follows <c>kallsyms_token_index</c>: offsets,
    /// ALGN, relative_base, ALGN, seqs_of_names. Without BASE_RELATIVE a <c>u64[n]</c> stands in the
    /// offsets' place and relative_base is absent.</summary>
    private static bool TryAddresses(ReadOnlySpan<byte> d, long q, long tokenIndex, bool seqsBeforeTokens, int n, int delta,
        out KallsymsAddressMode mode, out ulong relativeBase, out long offsets, out long relativeBaseOffset, ref long seqs)
    {
        relativeBaseOffset = q - 8;
        offsets = relativeBaseOffset - Round8(4L * n);
        if (TryOffsets(d, offsets, relativeBaseOffset, n, delta, out mode, out relativeBase))
            return true;
        offsets = q - 8L * n;
        relativeBaseOffset = -1;
        if (TryAbsolute(d, offsets, n, out mode, out relativeBase))
            return true;
        if (seqsBeforeTokens)
            return false;
        offsets = Align8(tokenIndex + 512, delta);
        relativeBaseOffset = offsets + Round8(4L * n);
        if (TryOffsets(d, offsets, relativeBaseOffset, n, delta, out mode, out relativeBase))
        {
            seqs = SeqsIfPresent(d, relativeBaseOffset + 8, n);
            return true;
        }
        relativeBaseOffset = -1;
        if (TryAbsolute(d, offsets, n, out mode, out relativeBase))
        {
            seqs = SeqsIfPresent(d, offsets + 8L * n, n);
            return true;
        }
        return false;
    }

    /// <summary>True when <paramref name="n"/> length-prefixed names start at <paramref name="names"/>, end
    /// where the 8-byte padding before <paramref name="markers"/> begins, and every 256th starts where the markers say.</summary>
    private static bool NamesTile(ReadOnlySpan<byte> d, long names, long markers, int n, int delta)
    {
        var region = d[(int)names..(int)markers];
        var off = 0;
        for (var i = 0; i < n; i++)
        {
            if ((i & 0xff) == 0 && BinaryPrimitives.ReadUInt32LittleEndian(d[(int)(markers + 4L * (i >> 8))..]) != off)
                return false;
            if (off >= region.Length)
                return false;
            int len = region[off];
            var header = 1;
            if ((len & 0x80) != 0)
            {
                if (off + 1 >= region.Length)
                    return false;
                len = (len & 0x7f) | (region[off + 1] << 7);
                header = 2;
            }
            if (len == 0)
                return false;
            off += header + len;
        }
        return off <= region.Length && Align8(names + off, delta) == markers;
    }

    private static long SeqsIfPresent(ReadOnlySpan<byte> d, long position, int n) => position + 3L * n <= d.Length ? position : -1;

    private static bool TryOffsets(ReadOnlySpan<byte> d, long offsets, long relativeBaseOffset, int n, int delta, out KallsymsAddressMode mode, out ulong relativeBase)
    {
        mode = KallsymsAddressMode.BaseRelative;
        relativeBase = 0;
        if (offsets < 0 || Align8(offsets, delta) != offsets || offsets + 4L * n > d.Length || relativeBaseOffset + 8 > d.Length)
            return false;
        relativeBase = BinaryPrimitives.ReadUInt64LittleEndian(d[(int)relativeBaseOffset..]);
        var table = d.Slice((int)offsets, 4 * n);
        var anyNegative = false;
        for (var i = 0; i < n && !anyNegative; i++)
            anyNegative = BinaryPrimitives.ReadInt32LittleEndian(table[(i * 4)..]) < 0;
        mode = anyNegative ? KallsymsAddressMode.BaseRelativeAbsolutePercpu : KallsymsAddressMode.BaseRelative;
        return Sorted(d, offsets, n, mode, relativeBase);
    }

    private static bool TryAbsolute(ReadOnlySpan<byte> d, long addresses, int n, out KallsymsAddressMode mode, out ulong relativeBase)
    {
        mode = KallsymsAddressMode.Absolute;
        relativeBase = 0;
        return addresses >= 0 && addresses + 8L * n <= d.Length && Sorted(d, addresses, n, mode, 0);
    }

    /// <summary>True when the addresses never decrease (sort_symbols) and are not all equal, which rules
    /// out zero-filled data posing as an address table.</summary>
    private static bool Sorted(ReadOnlySpan<byte> d, long offsets, int n, KallsymsAddressMode mode, ulong relativeBase)
    {
        var first = Address(d, offsets, 0, mode, relativeBase);
        var previous = first;
        for (var i = 1; i < n; i++)
        {
            var a = Address(d, offsets, i, mode, relativeBase);
            if (a < previous)
                return false;
            previous = a;
        }
        return previous > first;
    }

    /// <summary>kernel/kallsyms.c <c>kallsyms_sym_address</c>, for each mode.</summary>
    private static ulong Address(ReadOnlySpan<byte> d, long offsets, int i, KallsymsAddressMode mode, ulong relativeBase)
    {
        if (mode == KallsymsAddressMode.Absolute)
            return BinaryPrimitives.ReadUInt64LittleEndian(d[(int)(offsets + 8L * i)..]);
        var o = BinaryPrimitives.ReadInt32LittleEndian(d[(int)(offsets + 4L * i)..]);
        if (mode == KallsymsAddressMode.BaseRelative)
            return relativeBase + (uint)o;
        // Positive offsets are absolute values; negative ones are relative to relative_base - 1.
        return o >= 0 ? (ulong)o : unchecked(relativeBase - 1 - (ulong)(long)o);
    }

    /// <summary>Decodes every symbol of a located layout, in kallsyms order.</summary>
    public static KernelSymbol[] Decode(ReadOnlySpan<byte> d, KallsymsLayout layout, string? file = null)
    {
        CheckBounds(d, layout, file);
        // Expand the 256 tokens once (kallsyms_expand_symbol walks token_table[token_index[b]]).
        var tokens = new byte[256][];
        for (var i = 0; i < 256; i++)
        {
            var s = layout.TokenTable + BinaryPrimitives.ReadUInt16LittleEndian(d[(int)(layout.TokenIndex + 2 * i)..]);
            var rest = d[(int)s..];
            tokens[i] = rest[..rest.IndexOf((byte)0)].ToArray();
        }
        var names = d[(int)layout.Names..(int)layout.Markers];
        var result = new KernelSymbol[layout.Count];
        var buffer = new byte[1024];
        var off = 0;
        for (var i = 0; i < layout.Count; i++)
        {
            if (off >= names.Length)
                throw Malformed($"symbol {i} starts past the end of kallsyms_names", file, layout.Names + off);
            int len = names[off];
            var header = 1;
            if ((len & 0x80) != 0 && off + 1 < names.Length)
            {
                len = (len & 0x7f) | (names[off + 1] << 7);
                header = 2;
            }
            if (off + header + len > names.Length)
                throw Malformed($"symbol {i} runs past the end of kallsyms_names", file, layout.Names + off);
            var length = 0;
            foreach (var b in names.Slice(off + header, len))
            {
                var t = tokens[b];
                if (length + t.Length > buffer.Length)
                    Array.Resize(ref buffer, buffer.Length * 2 + t.Length);
                t.CopyTo(buffer, length);
                length += t.Length;
            }
            if (length < 2)
                throw Malformed($"symbol {i} expands to {length} characters, fewer than a type and a name", file, layout.Names + off);
            // The first expanded character is the type letter (kallsyms_get_symbol_type).
            result[i] = new KernelSymbol(Encoding.Latin1.GetString(buffer, 1, length - 1), (char)buffer[0],
                Address(d, layout.Offsets, i, layout.AddressMode, layout.RelativeBase));
            off += header + len;
        }
        return result;
    }

    /// <summary>Refuses a layout whose tables do not lie inside <paramref name="d"/> (a layout is public data).</summary>
    private static void CheckBounds(ReadOnlySpan<byte> d, KallsymsLayout layout, string? file)
    {
        var width = layout.AddressMode == KallsymsAddressMode.Absolute ? 8L : 4L;
        if (layout.Count < 0 || layout.Offsets < 0 || layout.Offsets + width * layout.Count > d.Length)
            throw Malformed($"kallsyms_offsets ({layout.Count} entries) do not fit in the file", file, layout.Offsets);
        if (layout.Names < 0 || layout.Markers < layout.Names || layout.Markers > d.Length)
            throw Malformed("kallsyms_names does not lie inside the file", file, layout.Names);
        if (layout.TokenTable < 0 || layout.TokenIndex < layout.TokenTable || layout.TokenIndex + 512 > d.Length)
            throw Malformed("kallsyms_token_table/kallsyms_token_index do not lie inside the file", file, layout.TokenTable);
        for (var i = 0; i < 256; i++)
        {
            var s = layout.TokenTable + BinaryPrimitives.ReadUInt16LittleEndian(d[(int)(layout.TokenIndex + 2 * i)..]);
            if (s >= layout.TokenIndex || d[(int)s..(int)layout.TokenIndex].IndexOf((byte)0) < 0)
                throw Malformed($"token {i} does not end inside kallsyms_token_table", file, layout.TokenIndex + 2 * i);
        }
    }

    private static LivegraftException Malformed(string message, string? file, long offset) =>
        SymbolErrors.Invalid(SymbolErrors.KallsymsMalformed, message, file, offset);
}
