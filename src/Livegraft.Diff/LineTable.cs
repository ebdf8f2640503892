using System.Buffers.Binary;
using Livegraft.Elf;
using static Livegraft.Elf.ElfNative;

namespace Livegraft.Diff;

/// <summary>
/// The source lines of code in a relocatable object, from its DWARF <c>.debug_line</c> (versions 2
/// to 5, DWARF Standard §6.2). Only addresses and lines are decoded: the program of each unit is
/// found through <c>header_length</c>, so directory and file tables are skipped. In a relocatable
/// object each sequence's <c>DW_LNE_set_address</c> carries a relocation to its code section,
/// which is how rows are tied to sections.
/// </summary>
internal sealed class LineTable
{
    private readonly Dictionary<ElfSection, List<(ulong Offset, int Line, int File)>> _rows = new(ReferenceEqualityComparer.Instance);

    /// <summary>The table of <paramref name="file"/>, or null when it has no usable line program.</summary>
    public static LineTable? Read(ElfFile file)
    {
        var section = file.FindSection(".debug_line");
        if (section is null || section.Size == 0)
            return null;
        var relocations = new Dictionary<ulong, ElfRelocation>();
        foreach (var rs in file.RelocationsFor(section))
            foreach (var r in rs.Relocations)
                relocations[r.Offset] = r;
        var table = new LineTable();
        try
        {
            table.Parse(section.Data.Span, relocations);
        }
        catch (ArgumentOutOfRangeException)
        {
            return null; // truncated or not DWARF as we know it: fall back to the callee list
        }
        catch (IndexOutOfRangeException)
        {
            return null;
        }
        foreach (var rows in table._rows.Values)
            rows.Sort((x, y) => x.Offset.CompareTo(y.Offset));
        return table._rows.Count > 0 ? table : null;
    }

    /// <summary>The line of the last row at or before <paramref name="offset"/>, within the function
    /// at [<paramref name="start"/>, <paramref name="end"/>) of <paramref name="section"/>, that is
    /// in the function's own source file (the file of its first row: code inlined from headers has
    /// rows in other files); null when there is none.</summary>
    public int? OwnLineAt(ElfSection section, ulong start, ulong end, ulong offset)
    {
        if (!_rows.TryGetValue(section, out var rows))
            return null;
        int? file = null;
        int? line = null;
        foreach (var (at, l, f) in rows)
        {
            if (at < start)
                continue;
            if (at >= end || at > offset)
                break;
            file ??= f;
            if (f == file && l > 0)
                line = l;
        }
        return line;
    }

    private void Parse(ReadOnlySpan<byte> data, Dictionary<ulong, ElfRelocation> relocations)
    {
        var pos = 0;
        while (pos + 4 <= data.Length)
        {
            ulong length = BinaryPrimitives.ReadUInt32LittleEndian(data[pos..]);
            pos += 4;
            var offsetSize = 4;
            if (length == 0xffffffff)
            {
                length = BinaryPrimitives.ReadUInt64LittleEndian(data[pos..]);
                pos += 8;
                offsetSize = 8;
            }
            var end = pos + (int)length;
            var version = BinaryPrimitives.ReadUInt16LittleEndian(data[pos..]);
            pos += 2;
            if (version is < 2 or > 5)
                return;
            if (version >= 5)
                pos += 2; // address_size, segment_selector_size
            var headerLength = offsetSize == 8 ? (long)BinaryPrimitives.ReadUInt64LittleEndian(data[pos..]) : BinaryPrimitives.ReadUInt32LittleEndian(data[pos..]);
            pos += offsetSize;
            var program = pos + (int)headerLength;
            var minInst = data[pos++];
            if (version >= 4)
                pos++; // maximum_operations_per_instruction
            pos++; // default_is_stmt
            var lineBase = (sbyte)data[pos++];
            var lineRange = data[pos++];
            var opcodeBase = data[pos++];
            var argCounts = data.Slice(pos, opcodeBase - 1).ToArray();
            RunProgram(data[..end], program, minInst, lineBase, lineRange, opcodeBase, argCounts, relocations);
            pos = end;
        }
    }

    private void RunProgram(ReadOnlySpan<byte> data, int pos, byte minInst, sbyte lineBase, byte lineRange, byte opcodeBase, byte[] argCounts,
        Dictionary<ulong, ElfRelocation> relocations)
    {
        ElfSection? section = null;
        ulong address = 0;
        var line = 1;
        var file = 1;
        void Row()
        {
            if (section is null)
                return;
            if (!_rows.TryGetValue(section, out var rows))
                _rows[section] = rows = [];
            rows.Add((address, line, file));
        }
        while (pos < data.Length)
        {
            var op = data[pos++];
            if (op >= opcodeBase)
            {
                var adjusted = op - opcodeBase;
                address += (ulong)(adjusted / lineRange * minInst);
                line += lineBase + adjusted % lineRange;
                Row();
                continue;
            }
            switch (op)
            {
                case 0: // extended
                    var len = (int)Uleb(data, ref pos);
                    var next = pos + len;
                    var sub = data[pos];
                    if (sub == 1) // DW_LNE_end_sequence
                    {
                        Row();
                        section = null;
                        address = 0;
                        line = 1;
                        file = 1;
                    }
                    else if (sub == 2) // DW_LNE_set_address
                    {
                        var field = (ulong)(pos + 1);
                        if (relocations.TryGetValue(field, out var r) && r.Symbol?.Section is { } target && r.Type == R_X86_64_64)
                        {
                            section = target;
                            address = (ulong)((long)(r.Symbol.IsSectionSymbol ? 0 : r.Symbol.Value) + r.Addend);
                        }
                        else
                        {
                            section = null;
                        }
                    }
                    pos = next;
                    break;
                case 1: // DW_LNS_copy
                    Row();
                    break;
                case 2: // DW_LNS_advance_pc
                    address += Uleb(data, ref pos) * minInst;
                    break;
                case 3: // DW_LNS_advance_line
                    line += (int)Sleb(data, ref pos);
                    break;
                case 4: // DW_LNS_set_file
                    file = (int)Uleb(data, ref pos);
                    break;
                case 8: // DW_LNS_const_add_pc
                    address += (ulong)((255 - opcodeBase) / lineRange * minInst);
                    break;
                case 9: // DW_LNS_fixed_advance_pc
                    address += BinaryPrimitives.ReadUInt16LittleEndian(data[pos..]);
                    pos += 2;
                    break;
                default: // standard opcodes with ULEB arguments (set_file, set_column, set_isa, ...)
                    for (var i = 0; i < argCounts[op - 1]; i++)
                        Uleb(data, ref pos);
                    break;
            }
        }
    }

    private static ulong Uleb(ReadOnlySpan<byte> data, ref int pos)
    {
        ulong result = 0;
        var shift = 0;
        while (true)
        {
            var b = data[pos++];
            result |= (ulong)(b & 0x7f) << shift;
            if ((b & 0x80) == 0)
                return result;
            shift += 7;
        }
    }

    private static long Sleb(ReadOnlySpan<byte> data, ref int pos)
    {
        long result = 0;
        var shift = 0;
        byte b;
        do
        {
            b = data[pos++];
            result |= (long)(b & 0x7f) << shift;
            shift += 7;
        }
        while ((b & 0x80) != 0);
        if (shift < 64 && (b & 0x40) != 0)
            result |= -1L << shift;
        return result;
    }
}
