using System.Buffers.Binary;
using static Livegraft.Elf.ElfNative;

namespace Livegraft.Elf.Tests;

/// <summary>Damaged input either reads or fails with our exception type, never with a runtime
/// exception or a hang; so do decoding every relocation and writing what was read.</summary>
public class FuzzTests
{
    private const int CasesPerFile = 1500;
    private static readonly TimeSpan CaseLimit = TimeSpan.FromSeconds(10);

    private readonly ITestOutputHelper _output;

    public FuzzTests(ITestOutputHelper output) => _output = output;

    public static TheoryData<string> Inputs() => ["kernel-object", "module", "special"];

    private static string InputPath(string kind) => kind switch
    {
        "kernel-object" => Fixtures.KernelObject("fs/proc/cmdline.o"),
        "module" => Directory.EnumerateFiles(Fixtures.ModulesDirectory(), "*.ko", SearchOption.AllDirectories)
            .Where(p => new FileInfo(p).Length is > 8_000 and < 40_000).Order(StringComparer.Ordinal).First(),
        _ => SpecialSectionTests.SpecialObject(),
    };

    [Theory]
    [MemberData(nameof(Inputs))]
    public void MutationsFailOnlyWithElfFormatException(string kind)
    {
        var path = InputPath(kind);
        var original = File.ReadAllBytes(path);
        var layout = Layout.Of(original);
        var random = new Random(20240611 + kind.Length);
        var failures = new List<string>();
        var rejected = 0;
        var ids = new SortedDictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < CasesPerFile; i++)
        {
            var (bytes, what) = Mutate(original, layout, random, i);
            var outcome = RunCase(bytes);
            if (outcome.Failure is not null)
                failures.Add($"case {i} ({what}): {outcome.Failure}");
            else if (outcome.Id is not null)
            {
                rejected++;
                ids[outcome.Id] = ids.GetValueOrDefault(outcome.Id) + 1;
            }
        }
        _output.WriteLine($"{Path.GetFileName(path)}: {CasesPerFile} cases, {rejected} rejected: {string.Join(", ", ids.Select(p => $"{p.Key}×{p.Value}"))}");
        Assert.True(failures.Count == 0, $"{failures.Count} cases failed badly:\n" + string.Join("\n", failures.Take(30)));
    }

    private sealed record Outcome(string? Id, string? Failure);

    private static Outcome RunCase(byte[] bytes)
    {
        var task = Task.Run(() =>
        {
            try
            {
                var elf = ElfFile.Read(bytes, "fuzz.o");
                Fixtures.DecodeAllRelocations(elf);
                _ = elf.ToArray();
                _ = ElfPrinter.Print(elf);
                if (elf.Header.Type == ET_REL)
                {
                    // A new layout: every offset and alignment as read now feeds the writer's arithmetic.
                    elf.AddSection(new ElfSection(".livegraft.fuzz", SHT_PROGBITS) { Data = new byte[] { 1 } });
                    _ = elf.ToArray();
                }
                return new Outcome(null, null);
            }
            catch (LivegraftException e)
            {
                return e.Diagnostics.Count > 0 && e.Diagnostics[0].Id.StartsWith("LG", StringComparison.Ordinal)
                    ? new Outcome(e.Diagnostics[0].Id, null)
                    : new Outcome(null, "LivegraftException without a diagnostic id");
            }
            catch (Exception e)
            {
                return new Outcome(null, $"{e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }
        });
        if (!task.Wait(CaseLimit))
            return new Outcome(null, $"no result within {CaseLimit.TotalSeconds} s (hang)");
        return task.Result;
    }

    /// <summary>Where the interesting structures of the original file are.</summary>
    private sealed record Layout(int SectionHeaders, int SectionCount, (int Offset, int Size) Symtab, (int Offset, int Size) Rela, (int Offset, int Size) Strtab)
    {
        public static Layout Of(byte[] data)
        {
            var elf = ElfFile.Read(data);
            var shoff = (int)BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan(40));
            (int, int) Place(ElfSection? s) => s is null ? (0, 0) : ((int)s.Offset, (int)s.Size);
            var symtab = elf.SymbolTable!;
            var rela = elf.Sections.OfType<ElfRelocationSection>().FirstOrDefault(r => r.Target?.IsExecutable == true);
            return new Layout(shoff, elf.Sections.Count, Place(symtab), Place(rela), Place(symtab.Link));
        }
    }

    private static (byte[] Bytes, string What) Mutate(byte[] original, Layout l, Random random, int i)
    {
        var kind = i % 12;
        if (kind == 0)
        {
            // Truncation: evenly spread cut points plus random ones.
            var length = i % 24 == 0 ? (int)((long)original.Length * (i / 24) / (CasesPerFile / 24)) : random.Next(original.Length);
            return (original[..length], $"truncated to {length}");
        }
        var bytes = (byte[])original.Clone();
        var span = bytes.AsSpan();
        int SectionHeader(int n) => l.SectionHeaders + n * SHDR64_SIZE;
        int AnySection() => random.Next(l.SectionCount);
        ulong Wild() => random.Next(6) switch
        {
            0 => 0,
            1 => ulong.MaxValue - (ulong)random.Next(64),
            2 => (ulong)original.Length - (ulong)random.Next(1, 64),
            3 => (ulong)random.Next(original.Length),
            4 => 1UL << random.Next(64),
            _ => (ulong)random.NextInt64(),
        };
        string Flip(int start, int size, string where)
        {
            if (size <= 0)
                return "nothing to flip in " + where;
            var n = random.Next(1, 5);
            for (var k = 0; k < n; k++)
                bytes[start + random.Next(size)] ^= (byte)random.Next(1, 256);
            return $"{n} bytes flipped in {where}";
        }
        string what;
        switch (kind)
        {
            case 1:
                what = Flip(0, EHDR64_SIZE, "ELF header");
                break;
            case 2:
            case 3:
                what = Flip(l.SectionHeaders, l.SectionCount * SHDR64_SIZE, "section headers");
                break;
            case 4:
                what = Flip(l.Symtab.Offset, l.Symtab.Size, ".symtab");
                break;
            case 5:
                what = Flip(l.Rela.Offset, l.Rela.Size, "a .rela section");
                break;
            case 6:
            {
                // Bad offsets: sh_offset, e_shoff or e_phoff.
                var field = random.Next(3);
                var at = field switch { 0 => SectionHeader(AnySection()) + 24, 1 => 40, _ => 32 };
                var value = Wild();
                BinaryPrimitives.WriteUInt64LittleEndian(span[at..], value);
                what = $"offset field at 0x{at:x} = 0x{value:x}";
                break;
            }
            case 7:
            {
                // Huge counts and sizes: e_shnum, e_phnum, sh_size, section 0's sh_size (the escaped count).
                var field = random.Next(4);
                switch (field)
                {
                    case 0:
                        BinaryPrimitives.WriteUInt16LittleEndian(span[60..], (ushort)random.Next(0x10000));
                        break;
                    case 1:
                        BinaryPrimitives.WriteUInt16LittleEndian(span[56..], (ushort)random.Next(0x10000));
                        BinaryPrimitives.WriteUInt16LittleEndian(span[54..], PHDR64_SIZE);
                        break;
                    case 2:
                        BinaryPrimitives.WriteUInt64LittleEndian(span[(SectionHeader(AnySection()) + 32)..], Wild());
                        break;
                    default:
                        BinaryPrimitives.WriteUInt16LittleEndian(span[60..], 0);
                        BinaryPrimitives.WriteUInt64LittleEndian(span[(SectionHeader(0) + 32)..], Wild());
                        break;
                }
                what = $"count field {field}";
                break;
            }
            case 8:
            {
                // Bad string indices: sh_name, st_name, e_shstrndx.
                var field = random.Next(3);
                var value = (uint)Wild();
                if (field == 0)
                    BinaryPrimitives.WriteUInt32LittleEndian(span[SectionHeader(AnySection())..], value);
                else if (field == 1 && l.Symtab.Size > 0)
                    BinaryPrimitives.WriteUInt32LittleEndian(span[(l.Symtab.Offset + random.Next(l.Symtab.Size / SYM64_SIZE) * SYM64_SIZE)..], value);
                else
                    BinaryPrimitives.WriteUInt16LittleEndian(span[62..], (ushort)value);
                what = $"string index field {field} = 0x{value:x}";
                break;
            }
            case 9:
            {
                // Links, infos, types, alignments and entry sizes of a section.
                var n = AnySection();
                var field = random.Next(5);
                var at = SectionHeader(n) + field switch { 0 => 40, 1 => 44, 2 => 4, 3 => 48, _ => 56 };
                if (field <= 2)
                {
                    uint[] types = [SHT_SYMTAB, SHT_STRTAB, SHT_RELA, SHT_REL, SHT_GROUP, SHT_SYMTAB_SHNDX, SHT_NOBITS, SHT_DYNSYM, SHT_NULL];
                    var value = field == 2 ? types[random.Next(types.Length)] : (uint)random.Next(l.SectionCount + 3);
                    if (random.Next(4) == 0)
                        value = (uint)Wild();
                    BinaryPrimitives.WriteUInt32LittleEndian(span[at..], value);
                    what = $"section {n} field {field} = 0x{value:x}";
                }
                else
                {
                    var value = Wild();
                    BinaryPrimitives.WriteUInt64LittleEndian(span[at..], value);
                    what = $"section {n} field {field} = 0x{value:x}";
                }
                break;
            }
            case 10:
            {
                // Symbol section indices: st_shndx, including SHN_XINDEX without a SHT_SYMTAB_SHNDX.
                if (l.Symtab.Size == 0)
                    return (bytes, "no symtab");
                var sym = random.Next(l.Symtab.Size / SYM64_SIZE);
                ushort[] specials = [SHN_XINDEX, SHN_ABS, SHN_COMMON, SHN_LIVEPATCH, SHN_LORESERVE];
                var value = random.Next(2) == 0 ? specials[random.Next(specials.Length)] : (ushort)random.Next(0x10000);
                BinaryPrimitives.WriteUInt16LittleEndian(span[(l.Symtab.Offset + sym * SYM64_SIZE + 6)..], value);
                what = $"symbol {sym} st_shndx = 0x{value:x}";
                break;
            }
            default:
                what = Flip(l.Strtab.Offset, Math.Min(l.Strtab.Size, 64), ".strtab head") + "; " + Flip(0, original.Length, "anywhere");
                break;
        }
        return (bytes, what);
    }
}
