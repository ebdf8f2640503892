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
    private readonly ReadOnlyMemory<byte> _data;
    private readonly List<Unit> _units = [];
    private readonly Dictionary<ElfSection, List<(Unit Unit, int Start)>> _sequences = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<ulong, ElfRelocation> _addresses = [];
    private readonly Dictionary<ElfSection, (ulong Offset, int Line, int File)[]> _rows = new(ReferenceEqualityComparer.Instance);

    /// <summary>One line-program header: what decoding its sequences needs.</summary>
    private readonly record struct Unit(int ProgramStart, int End, byte MinInst, sbyte LineBase, byte LineRange, byte OpcodeBase, byte[] ArgCounts);

    private LineTable(ReadOnlyMemory<byte> data) => _data = data;

    /// <summary>The table of <paramref name="file"/>, or null when it has no usable line program.
    /// Here the programs are only walked to find where each sequence starts and which section its
    /// <c>DW_LNE_set_address</c> relocation points at; a section's rows are decoded when first
    /// asked for (a unit's line table can hold hundreds of thousands of rows).</summary>
    public static LineTable? Read(ElfFile file)
    {
        var section = file.FindSection(".debug_line");
        if (section is null || section.Size == 0)
            return null;
        var table = new LineTable(section.Data);
        try
        {
            table.ReadUnits();
        }
        catch (ArgumentOutOfRangeException)
        {
            return null; // truncated or not DWARF as we know it: fall back to the callee list
        }
        if (table._units.Count == 0)
            return null;
        foreach (var rs in file.RelocationsFor(section))
            foreach (var r in rs.Relocations)
                if (r.Type == R_X86_64_64 && r.Symbol?.Section is not null)
                    table._addresses[r.Offset] = r;
        try
        {
            foreach (var unit in table._units)
                table.Run(unit, unit.ProgramStart, null, null);
        }
        catch (ArgumentOutOfRangeException)
        {
            return null;
        }
        catch (IndexOutOfRangeException)
        {
            return null;
        }
        return table;
    }

    /// <summary>The line of the last row at or before <paramref name="offset"/>, within the function
    /// at [<paramref name="start"/>, <paramref name="end"/>) of <paramref name="section"/>, that is
    /// in the function's own source file (the file of its first row: code inlined from headers has
    /// rows in other files); null when there is none.</summary>
    public int? OwnLineAt(ElfSection section, ulong start, ulong end, ulong offset)
    {
        var rows = RowsOf(section);
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

    private (ulong Offset, int Line, int File)[] RowsOf(ElfSection section)
    {
        if (_rows.TryGetValue(section, out var cached))
            return cached;
        var rows = new List<(ulong Offset, int Line, int File)>();
        foreach (var (unit, start) in _sequences.GetValueOrDefault(section) ?? [])
        {
            try
            {
                Run(unit, start, section, rows);
            }
            catch (ArgumentOutOfRangeException)
            {
                // a truncated sequence: keep what was decoded
            }
            catch (IndexOutOfRangeException)
            {
            }
        }
        var result = rows.ToArray();
        Array.Sort(result, (x, y) => x.Offset.CompareTo(y.Offset));
        return _rows[section] = result;
    }

    private void ReadUnits()
    {
        var data = _data.Span;
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
            _units.Add(new Unit(program, end, minInst, lineBase, lineRange, opcodeBase, data.Slice(pos, opcodeBase - 1).ToArray()));
            pos = end;
        }
    }

    /// <summary>Runs the line program of <paramref name="u"/> from <paramref name="pos"/>. With
    /// <paramref name="rows"/> null it walks the whole program and records where each sequence of
    /// each section starts; otherwise it decodes the one sequence starting there into rows.</summary>
    private void Run(Unit u, int pos, ElfSection? only, List<(ulong Offset, int Line, int File)>? rows)
    {
        var data = _data.Span[..u.End];
        ElfSection? section = null;
        ulong address = 0;
        var line = 1;
        var file = 1;
        var start = pos;
        void Row()
        {
            if (rows is not null && section is not null && ReferenceEquals(section, only))
                rows.Add((address, line, file));
        }
        while (pos < data.Length)
        {
            var op = data[pos++];
            if (op >= u.OpcodeBase)
            {
                var adjusted = op - u.OpcodeBase;
                address += (ulong)(adjusted / u.LineRange * u.MinInst);
                line += u.LineBase + adjusted % u.LineRange;
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
                        if (rows is not null)
                            return;
                        section = null;
                        address = 0;
                        line = 1;
                        file = 1;
                        start = next;
                    }
                    else if (sub == 2) // DW_LNE_set_address: relocated against the sequence's section
                    {
                        section = _addresses.TryGetValue((ulong)(pos + 1), out var r) ? r.Symbol!.Section : null;
                        address = r is null ? 0 : (ulong)((long)(r.Symbol!.IsSectionSymbol ? 0 : r.Symbol.Value) + r.Addend);
                        if (rows is null && section is not null)
                        {
                            if (!_sequences.TryGetValue(section, out var list))
                                _sequences[section] = list = [];
                            if (list.Count == 0 || list[^1].Start != start)
                                list.Add((u, start));
                        }
                    }
                    pos = next;
                    break;
                case 1: // DW_LNS_copy
                    Row();
                    break;
                case 2: // DW_LNS_advance_pc
                    address += Uleb(data, ref pos) * u.MinInst;
                    break;
                case 3: // DW_LNS_advance_line
                    line += (int)Sleb(data, ref pos);
                    break;
                case 4: // DW_LNS_set_file
                    file = (int)Uleb(data, ref pos);
                    break;
                case 8: // DW_LNS_const_add_pc
                    address += (ulong)((255 - u.OpcodeBase) / u.LineRange * u.MinInst);
                    break;
                case 9: // DW_LNS_fixed_advance_pc
                    address += BinaryPrimitives.ReadUInt16LittleEndian(data[pos..]);
                    pos += 2;
                    break;
                default: // standard opcodes with ULEB arguments (set_column, set_isa, ...)
                    for (var i = 0; i < u.ArgCounts[op - 1]; i++)
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
