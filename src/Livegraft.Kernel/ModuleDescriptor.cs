using System.Buffers.Binary;
using System.Text;
using Livegraft.Diff;
using Livegraft.Elf;
using Livegraft.Verify;
using static Livegraft.Elf.ElfNative;

namespace Livegraft.Kernel;

/// <summary>
/// Writes <c>livegraft_desc.o</c>, the data half of a generated livepatch module: the patch, object,
/// function and callback descriptors that the fixed C glue (<c>Module/glue/livepatch.c</c>) turns into
/// <c>klp_patch</c>/<c>klp_object</c>/<c>klp_func</c> at init, the run-pre verification table and its
/// address array, the livepatch relocations that fill that array, and the module's
/// <c>livegraft_*</c> <c>.modinfo</c> entries. The layout is <c>Module/glue/livegraft_module.h</c>'s;
/// the sizes below mirror it and the glue checks them with BUILD_BUG_ON.
/// </summary>
public static class ModuleDescriptor
{
    /// <summary>The object's file name in the module directory.</summary>
    public const string FileName = "livegraft_desc.o";

    private const uint Magic = 0x4447464c; // LIVEGRAFT_DESC_MAGIC
    private const uint Version = 1;        // LIVEGRAFT_DESC_VERSION
    private const int PatchSize = 40, ObjectSize = 24, FuncSize = 24, CallbackSize = 16;
    private const uint FlagClearRelocs = 0x1; // LIVEGRAFT_FLAG_CLEAR_RELOCS

    /// <summary>The vmlinux functions livegraft_relocs.c calls through thunks (<c>livegraft_NAME</c>).</summary>
    private static readonly string[] KernelThunks = ["text_poke", "text_poke_sync"];

    /// <summary>Builds the object for <paramref name="request"/> and <paramref name="modinfo"/> (key → value, in order).</summary>
    public static ElfFile Build(LivepatchModuleRequest request, IReadOnlyList<KeyValuePair<string, string>> modinfo)
    {
        var elf = new ElfFile { FileName = FileName };
        var symtab = elf.SymbolTable!;
        var sectionSymbols = new Dictionary<ElfSection, ElfSymbol>(ReferenceEqualityComparer.Instance);
        var relas = new Dictionary<ElfSection, ElfRelocationSection>(ReferenceEqualityComparer.Instance);
        var externals = new Dictionary<string, ElfSymbol>(StringComparer.Ordinal);
        ElfSymbol SectionSymbol(ElfSection s)
        {
            if (!sectionSymbols.TryGetValue(s, out var sym))
            {
                sectionSymbols[s] = sym = new ElfSymbol { Type = STT_SECTION, Bind = STB_LOCAL, Section = s };
                symtab.Symbols.Add(sym);
            }
            return sym;
        }
        ElfRelocationSection RelaFor(ElfSection s)
        {
            if (!relas.TryGetValue(s, out var r))
                relas[s] = r = elf.AddSection(new ElfRelocationSection(".rela" + s.Name, s, symtab));
            return r;
        }
        ElfSymbol External(string name)
        {
            if (!externals.TryGetValue(name, out var sym))
            {
                externals[name] = sym = new ElfSymbol { Name = name, Bind = STB_GLOBAL, Type = STT_NOTYPE, SpecialIndex = SHN_UNDEF };
                symtab.Symbols.Add(sym);
            }
            return sym;
        }

        // Strings (object and function names).
        var strings = new List<byte>();
        var stringAt = new Dictionary<string, int>(StringComparer.Ordinal);
        int StringOffset(string s)
        {
            if (!stringAt.TryGetValue(s, out var at))
            {
                stringAt[s] = at = strings.Count;
                strings.AddRange(Encoding.UTF8.GetBytes(s));
                strings.Add(0);
            }
            return at;
        }
        var str = elf.AddSection(new ElfSection(".rodata.livegraft.str", SHT_PROGBITS) { Flags = SHF_ALLOC, Alignment = 1 });

        // Descriptors, laid out: patch, objects, functions, callbacks.
        var objects = request.Objects;
        var callbacks = objects.SelectMany((o, i) => new[] { o.PrePatch, o.PostPatch, o.PreUnpatch, o.PostUnpatch }
            .SelectMany((list, kind) => list.Select(fn => (Object: i, Kind: kind, Fn: fn)))).ToList();
        var funcCount = objects.Sum(o => o.Functions.Count);
        var objectsAt = PatchSize;
        var funcsAt = objectsAt + objects.Count * ObjectSize;
        var callbacksAt = funcsAt + funcCount * FuncSize;
        var desc = new byte[callbacksAt + callbacks.Count * CallbackSize];
        var data = elf.AddSection(new ElfSection(".rodata.livegraft", SHT_PROGBITS) { Flags = SHF_ALLOC, Alignment = 8 });
        void Pointer(int at, ElfSymbol target, long addend) =>
            RelaFor(data).Relocations.Add(new ElfRelocation { Offset = (ulong)at, Type = R_X86_64_64, Symbol = target, Addend = addend });
        var span = desc.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(span, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(span[4..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(span[8..], (uint)objects.Count);
        BinaryPrimitives.WriteUInt32LittleEndian(span[12..], (uint)callbacks.Count);
        BinaryPrimitives.WriteUInt32LittleEndian(span[16..], request.Replace ? 1u : 0u);
        BinaryPrimitives.WriteUInt32LittleEndian(span[20..], request.ClearRelocationsOnModuleRemoval ? FlagClearRelocs : 0u);
        Pointer(24, SectionSymbol(data), objectsAt);
        if (callbacks.Count > 0)
            Pointer(32, SectionSymbol(data), callbacksAt);
        var func = funcsAt;
        for (var i = 0; i < objects.Count; i++)
        {
            var o = objects[i];
            var at = objectsAt + i * ObjectSize;
            if (!o.IsVmlinux)
                Pointer(at, SectionSymbol(str), StringOffset(LivepatchModule.KlpObjectName(o.Name)));
            if (o.Functions.Count > 0)
                Pointer(at + 8, SectionSymbol(data), func);
            BinaryPrimitives.WriteUInt32LittleEndian(span[(at + 16)..], (uint)o.Functions.Count);
            foreach (var f in o.Functions)
            {
                Pointer(func, SectionSymbol(str), StringOffset(f.OldName));
                Pointer(func + 8, External(f.NewSymbol), 0);
                BinaryPrimitives.WriteUInt64LittleEndian(span[(func + 16)..], (ulong)f.Sympos);
                func += FuncSize;
            }
        }
        for (var i = 0; i < callbacks.Count; i++)
        {
            var at = callbacksAt + i * CallbackSize;
            BinaryPrimitives.WriteUInt32LittleEndian(span[at..], (uint)callbacks[i].Object);
            BinaryPrimitives.WriteUInt32LittleEndian(span[(at + 4)..], (uint)callbacks[i].Kind);
            Pointer(at + 8, External(callbacks[i].Fn), 0);
        }
        data.Data = desc;
        symtab.Symbols.Add(new ElfSymbol { Name = "livegraft_patch_desc", Type = STT_OBJECT, Bind = STB_GLOBAL, Section = data, Size = PatchSize });

        // Run-pre verification: the table, and one address per entry filled by a livepatch relocation.
        var names = objects.Select(o => LivepatchModule.KlpObjectName(o.Name)).ToList();
        var blob = VerifyTable.Encode(request.Verification, o => IndexOf(names, o));
        var blobSection = elf.AddSection(new ElfSection(".rodata.livegraft.verify", SHT_PROGBITS) { Flags = SHF_ALLOC, Alignment = 8, Data = blob });
        symtab.Symbols.Add(new ElfSymbol { Name = VerifyTable.BlobSymbol, Type = STT_OBJECT, Bind = STB_GLOBAL, Section = blobSection, Size = (ulong)blob.Length });
        var addresses = elf.AddSection(new ElfSection(".data..livegraft_verify", SHT_PROGBITS)
        {
            Flags = SHF_ALLOC | SHF_WRITE, Alignment = 8, Data = new byte[Math.Max(request.Verification.Count, 1) * 8],
        });
        symtab.Symbols.Add(new ElfSymbol { Name = VerifyTable.AddressSymbol, Type = STT_OBJECT, Bind = STB_GLOBAL, Section = addresses, Size = (ulong)addresses.Data.Length });
        var klp = request.Verification.Select((e, i) => new KlpTableEntry(e.Object, addresses, (ulong)(i * 8), R_X86_64_64, e.KlpSymbol, 0)).ToList();

        // What livegraft_relocs.c needs of vmlinux (not exported): a jmp thunk per function, so the
        // glue calls them directly (indirect branch tracking seals functions nothing takes the address
        // of), and text_mutex's address. vmlinux klp relocations: applied when the module loads.
        var code = new byte[KernelThunks.Length * 16];
        code.AsSpan().Fill(0xcc); // int3 between the thunks
        var thunks = elf.AddSection(new ElfSection(".text.livegraft_kernel", SHT_PROGBITS)
        {
            Flags = SHF_ALLOC | SHF_EXECINSTR, Alignment = 16, Data = code,
        });
        for (var i = 0; i < KernelThunks.Length; i++)
        {
            code.AsSpan(i * 16, 5).Clear();
            code[i * 16] = 0xe9; // jmp rel32
            symtab.Symbols.Add(new ElfSymbol { Name = "livegraft_" + KernelThunks[i], Type = STT_FUNC, Bind = STB_GLOBAL, Section = thunks, Value = (ulong)(i * 16), Size = 5 });
            klp.Add(new KlpTableEntry("vmlinux", thunks, (ulong)(i * 16 + 1), R_X86_64_PC32, $".klp.sym.vmlinux.{KernelThunks[i]},0", -4));
        }
        var kernelData = elf.AddSection(new ElfSection(".data..livegraft_kernel", SHT_PROGBITS) { Flags = SHF_ALLOC | SHF_WRITE, Alignment = 8, Data = new byte[8] });
        symtab.Symbols.Add(new ElfSymbol { Name = "livegraft_text_mutex", Type = STT_OBJECT, Bind = STB_GLOBAL, Section = kernelData, Size = 8 });
        klp.Add(new KlpTableEntry("vmlinux", kernelData, 0, R_X86_64_64, ".klp.sym.vmlinux.text_mutex,0", 0));
        KlpRelocationTable.Write(elf, klp, SectionSymbol, RelaFor);

        str.Data = strings.ToArray();
        var info = new List<byte>();
        foreach (var (k, v) in modinfo)
        {
            info.AddRange(Encoding.UTF8.GetBytes($"{k}={v}"));
            info.Add(0);
        }
        elf.AddSection(new ElfSection(".modinfo", SHT_PROGBITS) { Flags = SHF_ALLOC, Alignment = 1, Data = info.ToArray() });
        if (request.Source is not null)
            elf.AddSection(new ElfSection(LivepatchModule.SourceSection, SHT_PROGBITS) { Alignment = 1, Data = Encoding.UTF8.GetBytes(request.Source) });
        elf.AddSection(new ElfSection(".note.GNU-stack", SHT_PROGBITS) { Alignment = 1 });
        // Keep .symtab/.strtab/.shstrtab after the content sections, as assemblers do.
        var tables = elf.Sections.Where(s => s is ElfSymbolTable or ElfStringTable).ToList();
        elf.Sections.RemoveAll(tables.Contains);
        elf.Sections.AddRange(tables);
        return elf;
    }

    private static int IndexOf(List<string> objects, string obj)
    {
        for (var i = 0; i < objects.Count; i++)
            if (objects[i] == obj)
                return i;
        throw new LivegraftException(ExitCode.InvalidInput, KernelErrors.ModuleSpecInvalid, $"verification entry for object {obj}, which the patch does not patch");
    }
}
