using System.Buffers.Binary;
using System.Text;
using Livegraft.Symbols;

namespace Livegraft.Symbols.Tests;

/// <summary>
/// Writes kallsyms tables the way scripts/kallsyms.c write_src lays them out (base-relative with
/// absolute per-cpu), with a trivial token table: every byte stands for itself, except that the
/// unused slots hold two-character tokens so the table is not all single letters.
/// </summary>
internal static class SyntheticKallsyms
{
    /// <summary>Builds the tables; <paramref name="modern"/> uses the 6.4+ order (num_syms, names, markers,
    /// token table, token index, offsets, relative_base, seqs_of_names) instead of 6.1's.</summary>
    public static byte[] Build(IReadOnlyList<KernelSymbol> symbols, bool withSeqs, bool modern = false)
    {
        var o = new List<byte>();
        void Align() { while (o.Count % 8 != 0) o.Add(0); }
        void U32(uint v) { Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); o.AddRange(b.ToArray()); }
        void U64(ulong v) { Span<byte> b = stackalloc byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(b, v); o.AddRange(b.ToArray()); }

        o.AddRange(new byte[64]); // something in front, as .rodata has
        Align();
        var relativeBase = symbols.Where(s => s.Type != 'A').Min(s => s.Address);
        void Addresses()
        {
            foreach (var s in symbols)
            {
                var offset = s.Type == 'A' ? (long)s.Address : (long)relativeBase - (long)s.Address - 1;
                U32(unchecked((uint)(int)offset));
            }
            Align();
            U64(relativeBase);
        }
        void Seqs()
        {
            for (var i = 0; i < symbols.Count; i++)
                o.AddRange(new[] { (byte)(i >> 16), (byte)(i >> 8), (byte)i });
            Align();
        }
        if (!modern)
            Addresses();
        U32((uint)symbols.Count);
        Align();
        var markers = new List<uint>();
        var namesStart = o.Count;
        for (var i = 0; i < symbols.Count; i++)
        {
            if ((i & 0xff) == 0)
                markers.Add((uint)(o.Count - namesStart));
            var bytes = Encoding.ASCII.GetBytes(symbols[i].Type + symbols[i].Name);
            if (bytes.Length <= 0x7f)
                o.Add((byte)bytes.Length);
            else
            {
                o.Add((byte)((bytes.Length & 0x7f) | 0x80));
                o.Add((byte)(bytes.Length >> 7));
            }
            o.AddRange(bytes);
        }
        Align();
        foreach (var m in markers)
            U32(m);
        Align();
        if (withSeqs && !modern)
            Seqs();
        var index = new ushort[256];
        var tableStart = o.Count;
        for (var c = 0; c < 256; c++)
        {
            index[c] = (ushort)(o.Count - tableStart);
            if (c >= 0x20 && c < 0x7f)
                o.Add((byte)c);
            else
                o.AddRange("zz"u8.ToArray());
            o.Add(0);
        }
        Align();
        foreach (var v in index)
        {
            o.Add((byte)v);
            o.Add((byte)(v >> 8));
        }
        if (modern)
        {
            Align();
            Addresses();
            Align();
            if (withSeqs)
                Seqs();
        }
        o.AddRange(new byte[64]);
        return o.ToArray();
    }
}
