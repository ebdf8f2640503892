using System.Text;
using static Livegraft.Elf.ElfNative;

namespace Livegraft.Elf;

/// <summary>
/// An ELF64 file: relocatable objects, kernel modules and vmlinux. Read with <see cref="Read(string)"/>,
/// edit the model (sections, symbols and relocations are objects), write with <see cref="Write(string)"/>.
/// An unmodified file is written back byte for byte.
/// </summary>
public sealed class ElfFile
{
    private ReadOnlyMemory<byte> _original = ReadOnlyMemory<byte>.Empty;
    private ulong _originalSectionHeaderOffset;
    private int _originalSectionCount = -1;
    private readonly Dictionary<ElfSection, (ulong Offset, ulong Size)> _originalPlacement = new(ReferenceEqualityComparer.Instance);

    /// <summary>Creates an empty x86-64 relocatable object holding the null section, .shstrtab, .strtab and .symtab.</summary>
    public ElfFile()
    {
        Sections.Add(new ElfSection("", SHT_NULL) { Alignment = 0 });
        var shstrtab = new ElfStringTable(".shstrtab");
        var strtab = new ElfStringTable(".strtab");
        var symtab = new ElfSymbolTable { Link = strtab };
        Sections.Add(symtab);
        Sections.Add(strtab);
        Sections.Add(shstrtab);
        SectionNames = shstrtab;
    }

    /// <summary>Creates a file with no sections (the reader fills it).</summary>
    internal ElfFile(bool empty)
    {
        _ = empty;
    }

    /// <summary>Path or name used in diagnostics.</summary>
    public string? FileName { get; set; }

    /// <summary>Header fields.</summary>
    public ElfHeader Header { get; } = new();

    /// <summary>Sections in header-table order; [0] is the null section.</summary>
    public List<ElfSection> Sections { get; } = [];

    /// <summary>Program headers.</summary>
    public List<ElfSegment> Segments { get; } = [];

    /// <summary>The section-name string table (e_shstrndx).</summary>
    public ElfStringTable? SectionNames { get; set; }

    /// <summary>Byte order.</summary>
    public ElfEncoding Encoding => new(Header.Data == ELFDATA2MSB);

    /// <summary>The first SHT_SYMTAB, if any.</summary>
    public ElfSymbolTable? SymbolTable => Sections.OfType<ElfSymbolTable>().FirstOrDefault(s => s.Type == SHT_SYMTAB);

    /// <summary>The file's bytes as read (empty for files built in memory).</summary>
    public ReadOnlyMemory<byte> OriginalBytes => _original;

    /// <summary>Finds a section by name.</summary>
    public ElfSection? FindSection(string name) => Sections.Find(s => s.Name == name);

    /// <summary>Relocation sections whose target is <paramref name="target"/>.</summary>
    public IEnumerable<ElfRelocationSection> RelocationsFor(ElfSection target) =>
        Sections.OfType<ElfRelocationSection>().Where(r => ReferenceEquals(r.InfoSection, target));

    /// <summary>Reads a file from disk.</summary>
    public static ElfFile Read(string path)
    {
        byte[] data;
        try
        {
            data = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LivegraftException(ExitCode.InvalidInput, "LG0001", $"cannot read: {e.Message}", path);
        }
        return Read(data, path);
    }

    /// <summary>Reads a file from memory (sections keep slices of <paramref name="data"/>);
    /// <paramref name="fileName"/> only names it in diagnostics.</summary>
    public static ElfFile Read(ReadOnlyMemory<byte> data, string? fileName = null) => new ElfReader(data, fileName).Read();

    /// <summary>Reads only the ELF header and program headers of a stream (a core file such as
    /// <c>/proc/kcore</c>, far larger than memory); the result has no sections.</summary>
    public static ElfFile ReadSegments(Stream stream, string? fileName = null) => ElfReader.ReadSegments(stream, fileName);

    /// <summary>Reads one section's contents from a file without reading the rest of it (scanning
    /// thousands of modules for their <c>.modinfo</c>); null when the file has no such section.</summary>
    public static byte[]? ReadSectionData(string path, string sectionName)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 4096, FileOptions.RandomAccess);
            return ElfReader.ReadSectionData(stream, sectionName, path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LivegraftException(ExitCode.InvalidInput, "LG0001", $"cannot read: {e.Message}", path);
        }
    }

    /// <summary>True when <paramref name="data"/> starts with an ELF64 identification of either byte order.</summary>
    public static bool IsElf64(ReadOnlySpan<byte> data) =>
        data.Length >= 16 && data[0] == 0x7f && data[1] == (byte)'E' && data[2] == (byte)'L' && data[3] == (byte)'F' && data[4] == ELFCLASS64;

    /// <summary>The file offset of a virtual address through the PT_LOAD segments, or -1 when none maps it.</summary>
    public long FileOffsetOf(ulong address)
    {
        foreach (var p in Segments)
            if (p.Type == PT_LOAD && address >= p.VirtualAddress && address - p.VirtualAddress < p.FileSize)
                return (long)(p.Offset + (address - p.VirtualAddress));
        return -1;
    }

    /// <summary>The virtual address of a file offset through the PT_LOAD segments, or null.</summary>
    public ulong? AddressOf(long offset)
    {
        foreach (var p in Segments)
            if (p.Type == PT_LOAD && offset >= 0 && (ulong)offset >= p.Offset && (ulong)offset - p.Offset < p.FileSize)
                return p.VirtualAddress + ((ulong)offset - p.Offset);
        return null;
    }

    /// <summary>Reads without throwing: returns false with the diagnostic on malformed input.</summary>
    public static bool TryRead(ReadOnlyMemory<byte> data, string? fileName, out ElfFile? file, out Diagnostic? error)
    {
        try
        {
            file = Read(data, fileName);
            error = null;
            return true;
        }
        catch (LivegraftException e)
        {
            file = null;
            error = e.Diagnostics[0];
            return false;
        }
    }

    internal void SetOriginal(ReadOnlyMemory<byte> data, ulong shoff, int count)
    {
        _original = data;
        _originalSectionHeaderOffset = shoff;
        _originalSectionCount = count;
        foreach (var s in Sections)
            _originalPlacement[s] = (s.Offset, s.Size);
    }

    /// <summary>Adds a section and returns it.</summary>
    public T AddSection<T>(T section) where T : ElfSection
    {
        Sections.Add(section);
        return section;
    }

    /// <summary>Writes atomically: to a temporary file beside <paramref name="path"/>, then renamed.</summary>
    public void Write(string path)
    {
        var bytes = ToArray();
        var tmp = path + ".tmp-" + Environment.ProcessId;
        try
        {
            File.WriteAllBytes(tmp, bytes);
            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp))
                File.Delete(tmp);
        }
    }

    /// <summary>Serialises the model: encodes derived sections, lays out, and emits.</summary>
    public byte[] ToArray()
    {
        for (var i = 0; i < Sections.Count; i++)
            Sections[i].Index = i;
        VerifyReferences();
        // Symbols first (they fix symbol indices), then everything that refers to them.
        foreach (var t in Sections.OfType<ElfSymbolTable>())
            t.Encode(this);
        BuildStringTables();
        foreach (var t in Sections.OfType<ElfSymbolTable>())
            t.Encode(this); // again: name indices may have moved
        foreach (var s in Sections)
            if (s is not ElfSymbolTable)
                s.Encode(this);
        var shoff = Layout();
        return Emit(shoff);
    }

    /// <summary>Refuses links, group members and symbols that name a section no longer in
    /// <see cref="Sections"/>: their stale index would silently point at another section.</summary>
    private void VerifyReferences()
    {
        var present = new HashSet<ElfSection>(Sections, ReferenceEqualityComparer.Instance);
        void Check(ElfSection? target, string who)
        {
            if (target is not null && !present.Contains(target))
                throw new LivegraftException(ExitCode.InvalidInput, "LG0034", $"{who} refers to section '{target.Name}', which is not in the file", FileName);
        }
        foreach (var s in Sections)
        {
            Check(s.Link, $"{s.Name} sh_link");
            Check(s.InfoSection, $"{s.Name} sh_info");
            if (s is ElfGroupSection g)
                foreach (var m in g.Members)
                    Check(m, $"group {g.Name}");
            if (s is ElfSymbolTable t)
                foreach (var sym in t.Symbols)
                    Check(sym.Section, $"{t.Name} symbol '{sym}'");
        }
    }

    private void BuildStringTables()
    {
        var users = new Dictionary<ElfStringTable, List<(Action<uint> Set, string Name, uint Old)>>(ReferenceEqualityComparer.Instance);
        List<(Action<uint>, string, uint)> UsersOf(ElfStringTable t)
        {
            if (!users.TryGetValue(t, out var l))
                users[t] = l = [];
            return l;
        }
        if (SectionNames is not null)
            foreach (var s in Sections)
            {
                var sec = s;
                UsersOf(SectionNames).Add((v => sec.NameIndex = v, s.Name, s.NameIndex));
            }
        foreach (var t in Sections.OfType<ElfSymbolTable>())
        {
            if (t.Link is not ElfStringTable names)
                throw new LivegraftException(ExitCode.InvalidInput, "LG0032", $"{t.Name} has no string table");
            foreach (var sym in t.Symbols)
            {
                var s = sym;
                UsersOf(names).Add((v => s.NameIndex = v, s.Name, s.NameIndex));
            }
        }
        foreach (var (table, list) in users)
        {
            if (list.TrueForAll(u => table.Matches(u.Old, u.Name)))
                continue; // every name still sits where it was read: keep the table byte for byte
            // Deterministic suffix-merged table: longest strings first in reversed-ordinal order,
            // so a string that is a suffix of another reuses its tail.
            var distinct = list.Select(u => u.Name).Where(n => n.Length > 0).Distinct(StringComparer.Ordinal)
                .OrderBy(n => new string(n.Reverse().ToArray()), StringComparer.Ordinal).ToList();
            var offsets = new Dictionary<string, uint>(StringComparer.Ordinal) { [""] = 0 };
            var buffer = new List<byte> { 0 };
            for (var i = distinct.Count - 1; i >= 0; i--)
            {
                var name = distinct[i];
                if (i + 1 < distinct.Count && distinct[i + 1].EndsWith(name, StringComparison.Ordinal) && offsets.TryGetValue(distinct[i + 1], out var longer))
                {
                    offsets[name] = longer + (uint)(System.Text.Encoding.UTF8.GetByteCount(distinct[i + 1]) - System.Text.Encoding.UTF8.GetByteCount(name));
                    continue;
                }
                offsets[name] = (uint)buffer.Count;
                buffer.AddRange(System.Text.Encoding.UTF8.GetBytes(name));
                buffer.Add(0);
            }
            foreach (var u in list)
                u.Set(offsets[u.Name]);
            table.Data = buffer.ToArray();
        }
    }

    private bool CanPreserveLayout()
    {
        if (_originalSectionCount != Sections.Count)
            return false;
        foreach (var s in Sections)
            if (!_originalPlacement.TryGetValue(s, out var p) || p.Size != s.Size || p.Offset != s.Offset)
                return false;
        return true;
    }

    private ulong Layout()
    {
        if (CanPreserveLayout())
            return _originalSectionHeaderOffset;
        if (Header.Type != ET_REL && Segments.Count > 0)
            throw new LivegraftException(ExitCode.InvalidInput, "LG0033", $"cannot lay out a changed {(Header.Type == ET_EXEC ? "executable" : "linked file")}: only relocatable objects are rewritten with new layouts", FileName);
        ulong pos = EHDR64_SIZE + (ulong)(Segments.Count * PHDR64_SIZE);
        foreach (var s in Sections.Skip(1))
        {
            var align = Math.Max(1UL, s.Alignment);
            // An absurd sh_addralign (read from a damaged file, or set by mistake) must not wrap
            // the position around; the output has to fit one array anyway.
            if (align > MaxOutputSize)
                throw new LivegraftException(ExitCode.InvalidInput, "LG0035", $"section {s.Name}: alignment 0x{align:x} is too large to lay out", FileName);
            pos = (pos + align - 1) / align * align;
            s.Offset = pos;
            if (s.Type != SHT_NOBITS)
                pos += s.Size;
            if (pos > MaxOutputSize)
                throw new LivegraftException(ExitCode.InvalidInput, "LG0035", $"section {s.Name}: the file would exceed {MaxOutputSize} bytes", FileName);
        }
        return (pos + 7) & ~7UL;
    }

    /// <summary>Largest file the writer lays out (one managed array, with room for the headers).</summary>
    private const ulong MaxOutputSize = 0x7f000000;

    private byte[] Emit(ulong shoff)
    {
        var enc = Encoding;
        var count = Sections.Count;
        var end = shoff + (ulong)(count * SHDR64_SIZE);
        // Section 0 holds no bytes: its sh_offset is whatever the file said and must not size the output.
        foreach (var s in Sections.Skip(1))
            if (s.Type != SHT_NOBITS)
                end = Math.Max(end, s.Offset + s.Size);
        var preserved = CanPreserveLayout();
        if (preserved)
            end = Math.Max(end, (ulong)_original.Length);
        if (end > MaxOutputSize)
            throw new LivegraftException(ExitCode.InvalidInput, "LG0035", $"the file would exceed {MaxOutputSize} bytes", FileName);
        var output = new byte[end];
        if (preserved)
            _original.Span.CopyTo(output); // keeps padding and anything no header describes

        var h = output.AsSpan();
        h[0] = 0x7f; h[1] = (byte)'E'; h[2] = (byte)'L'; h[3] = (byte)'F';
        h[4] = Header.Class; h[5] = Header.Data; h[6] = Header.IdentVersion; h[7] = Header.OsAbi; h[8] = Header.AbiVersion;
        if (!preserved)
            h[9..16].Clear();
        enc.WriteU16(h[16..], Header.Type);
        enc.WriteU16(h[18..], Header.Machine);
        enc.WriteU32(h[20..], Header.Version);
        enc.WriteU64(h[24..], Header.Entry);
        enc.WriteU64(h[32..], Segments.Count > 0 ? (preserved ? enc.ReadU64(_original.Span[32..]) : EHDR64_SIZE) : 0);
        enc.WriteU64(h[40..], count > 0 ? shoff : 0);
        enc.WriteU32(h[48..], Header.Flags);
        enc.WriteU16(h[52..], EHDR64_SIZE);
        enc.WriteU16(h[54..], Segments.Count > 0 ? (ushort)PHDR64_SIZE : (ushort)0);
        enc.WriteU16(h[56..], (ushort)Segments.Count);
        enc.WriteU16(h[58..], count > 0 ? (ushort)SHDR64_SIZE : (ushort)0);
        // gABI: counts that do not fit spill into section 0's sh_size / sh_link.
        enc.WriteU16(h[60..], count >= SHN_LORESERVE ? (ushort)0 : (ushort)count);
        var shstrndx = SectionNames?.Index ?? 0;
        enc.WriteU16(h[62..], shstrndx >= SHN_LORESERVE ? SHN_XINDEX : (ushort)shstrndx);

        var phoff = (int)enc.ReadU64(h[32..]);
        for (var i = 0; i < Segments.Count; i++)
        {
            var p = Segments[i];
            var e = h.Slice(phoff + i * PHDR64_SIZE, PHDR64_SIZE);
            enc.WriteU32(e, p.Type);
            enc.WriteU32(e[4..], p.Flags);
            enc.WriteU64(e[8..], p.Offset);
            enc.WriteU64(e[16..], p.VirtualAddress);
            enc.WriteU64(e[24..], p.PhysicalAddress);
            enc.WriteU64(e[32..], p.FileSize);
            enc.WriteU64(e[40..], p.MemorySize);
            enc.WriteU64(e[48..], p.Alignment);
        }

        for (var i = 0; i < count; i++)
        {
            var s = Sections[i];
            var e = h.Slice((int)shoff + i * SHDR64_SIZE, SHDR64_SIZE);
            var link = s.Link?.Index is int li ? (uint)li : s.RawLink;
            var info = s.InfoSection?.Index is int ii ? (uint)ii : s.Info;
            var size = s.Size;
            if (i == 0)
            {
                size = count >= SHN_LORESERVE ? (ulong)count : s.Size;
                link = shstrndx >= SHN_LORESERVE ? (uint)shstrndx : s.RawLink;
            }
            enc.WriteU32(e, s.NameIndex);
            enc.WriteU32(e[4..], s.Type);
            enc.WriteU64(e[8..], s.Flags);
            enc.WriteU64(e[16..], s.Address);
            enc.WriteU64(e[24..], s.Offset);
            enc.WriteU64(e[32..], size);
            enc.WriteU32(e[40..], link);
            enc.WriteU32(e[44..], info);
            enc.WriteU64(e[48..], s.Alignment);
            enc.WriteU64(e[56..], s.EntrySize);
            if (s.Type != SHT_NOBITS && i != 0)
                s.Data.Span.CopyTo(h.Slice((int)s.Offset, (int)s.Size));
        }
        return output;
    }
}
