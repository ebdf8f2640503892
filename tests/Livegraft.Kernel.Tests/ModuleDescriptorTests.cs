using System.Buffers.Binary;
using Livegraft.Diff;
using Livegraft.Elf;
using Livegraft.Symbols;
using Livegraft.Verify;
using static Livegraft.Elf.ElfNative;

namespace Livegraft.Kernel.Tests;

/// <summary>The data object of a livepatch module (<see cref="ModuleDescriptor"/>), read back with
/// Livegraft.Elf: what the fixed glue in Module/glue will find at init.</summary>
public class ModuleDescriptorTests
{
    private static LivepatchModuleRequest Request(params KlpObjectSpec[] objects) => new("fix-cmdline", KernelTarget.Reference, objects) { PatchSha256 = "ab12" };

    private static ElfFile Build(LivepatchModuleRequest request) =>
        ElfFile.Read(ModuleDescriptor.Build(request, [new(LivegraftInfo.KernelRelease, request.Target.Release), new(LivegraftInfo.PatchSha256, "ab12")]).ToArray(), "desc.o");

    private static ElfSymbol Symbol(ElfFile f, string name) => f.SymbolTable!.Symbols.Single(s => s.Name == name);

    /// <summary>Relocations of the descriptor section: offset → (symbol or section name, addend).</summary>
    private static Dictionary<ulong, (string Target, long Addend)> Pointers(ElfFile f)
    {
        var data = f.FindSection(".rodata.livegraft")!;
        return f.RelocationsFor(data).SelectMany(r => r.Relocations)
            .ToDictionary(r => r.Offset, r => (r.Symbol!.IsSectionSymbol ? r.Symbol.Section!.Name : r.Symbol.Name, r.Addend));
    }

    private static string StringAt(ElfFile f, long offset) => ObjectString(f.FindSection(".rodata.livegraft.str")!.Data.Span[(int)offset..]);

    private static string ObjectString(ReadOnlySpan<byte> s) => System.Text.Encoding.UTF8.GetString(s[..s.IndexOf((byte)0)]);

    [Fact]
    public void DescribesObjectsFunctionsAndFlags()
    {
        var f = Build(Request(
            new KlpObjectSpec("vmlinux", [new KlpFunctionSpec("cmdline_proc_show", "__livegraft_new_0", 0)]),
            new KlpObjectSpec("nls-iso8859-1", [new KlpFunctionSpec("char2uni", "__livegraft_new_1", 2)])));
        var desc = Symbol(f, "livegraft_patch_desc");
        Assert.Equal(STB_GLOBAL, desc.Bind);
        Assert.Equal(40UL, desc.Size);
        var d = desc.Section!.Data.Span;
        Assert.Equal(0x4447464cu, System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(d));
        Assert.Equal(2u, System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(d[8..]));   // objects
        Assert.Equal(0u, System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(d[12..]));  // callbacks
        Assert.Equal(1u, System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(d[16..]));  // replace
        var p = Pointers(f);
        Assert.Equal((".rodata.livegraft", 40L), p[24]);      // objects follow the patch
        Assert.False(p.ContainsKey(32));                       // no callbacks
        Assert.False(p.ContainsKey(40));                       // vmlinux: name NULL
        Assert.Equal("nls_iso8859_1", StringAt(f, p[64].Addend));
        // Functions start after the two objects: cmdline_proc_show then char2uni (sympos 2).
        Assert.Equal("cmdline_proc_show", StringAt(f, p[88].Addend));
        Assert.Equal(("__livegraft_new_0", 0L), p[96]);
        Assert.Equal("char2uni", StringAt(f, p[112].Addend));
        Assert.Equal(("__livegraft_new_1", 0L), p[120]);
        Assert.Equal(2UL, System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(d[128..]));
        var info = ModuleInfo.Of(f);
        Assert.Equal("ab12", info.Get(LivegraftInfo.PatchSha256));
        Assert.Equal("6.1.0-56-amd64", info.Get(LivegraftInfo.KernelRelease));
    }

    [Fact]
    public void CallbacksAreListedInOrderWithTheirKind()
    {
        var f = Build(Request(new KlpObjectSpec("vmlinux", [new KlpFunctionSpec("f", "g", 0)], ["pre_a", "pre_b"], ["post_a"], [], ["pu_a"])) with { Replace = false });
        var bytes = Symbol(f, "livegraft_patch_desc").Section!.Data.ToArray();
        var d = bytes.AsSpan();
        Assert.Equal(4u, System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(d[12..]));
        Assert.Equal(0u, System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(d[16..]));
        var p = Pointers(f);
        var callbacks = (int)p[32].Addend;
        Assert.Equal(40 + 24 + 24, callbacks);
        var kinds = Enumerable.Range(0, 4).Select(i => (System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(callbacks + 16 * i + 4)), p[(ulong)(callbacks + 16 * i + 8)].Target)).ToList();
        Assert.Equal([(0u, "pre_a"), (0u, "pre_b"), (1u, "post_a"), (3u, "pu_a")], kinds);
    }

    [Fact]
    public void VerificationTableAndItsLivepatchRelocations()
    {
        var request = Request(new KlpObjectSpec("vmlinux", [new KlpFunctionSpec("cmdline_proc_show", "__livegraft_new_0", 0)])) with
        {
            Verification = [new("vmlinux", "cmdline_proc_show", 0, ExpectationRole.Replaced, [0xc3], [0xff]), new("vmlinux", "seq_puts", 0, ExpectationRole.Referenced, [0x90], [0xff])],
        };
        var f = Build(request);
        var blob = Symbol(f, VerifyTable.BlobSymbol);
        var entries = VerifyTable.Decode(blob.Section!.Data.Span.Slice((int)blob.Value, (int)blob.Size));
        Assert.Equal(["cmdline_proc_show", "seq_puts"], entries.Select(e => e.Name));
        var addresses = Symbol(f, VerifyTable.AddressSymbol);
        Assert.Equal(16UL, addresses.Size);
        Assert.True(addresses.Section!.Data.Span.IndexOfAnyExcept((byte)0) < 0, "the address array must start zeroed");
        var klp = KlpRelocationTable.Read(f).Where(e => e.Section.Name == ".data..livegraft_verify").ToList();
        Assert.Equal([("vmlinux", 0UL, ".klp.sym.vmlinux.cmdline_proc_show,0"), ("vmlinux", 8UL, ".klp.sym.vmlinux.seq_puts,0")],
            klp.Select(e => (e.Object, e.Offset, e.SymbolName)));
        Assert.All(klp, e => Assert.Equal(R_X86_64_64, e.Type));
    }

    [Fact]
    public void KernelFunctionsTheGlueNeedsAreThunksWithVmlinuxRelocations()
    {
        var f = Build(Request(new KlpObjectSpec("ext4", [new KlpFunctionSpec("ext4_sync_fs", "__livegraft_new_0", 0)])) with { ClearRelocationsOnModuleRemoval = true });
        var kernel = KlpRelocationTable.Read(f).Where(e => e.Section.Name.EndsWith("livegraft_kernel", StringComparison.Ordinal)).ToList();
        Assert.Equal([("vmlinux", ".text.livegraft_kernel", 1UL, R_X86_64_PC32, ".klp.sym.vmlinux.text_poke,0", -4L),
                ("vmlinux", ".text.livegraft_kernel", 17UL, R_X86_64_PC32, ".klp.sym.vmlinux.text_poke_sync,0", -4L),
                ("vmlinux", ".data..livegraft_kernel", 0UL, R_X86_64_64, ".klp.sym.vmlinux.text_mutex,0", 0L)],
            kernel.Select(e => (e.Object, e.Section.Name, e.Offset, e.Type, e.SymbolName, e.Addend)));
        Assert.Equal(0xe9, Symbol(f, "livegraft_text_poke").Section!.Data.Span[0]);
        var desc = Symbol(f, "livegraft_patch_desc");
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(desc.Section!.Data.Span[((int)desc.Value + 20)..]));
    }

    [Fact]
    public void KbuildAndNames()
    {
        Assert.Equal("# Generated by Livegraft.\nobj-m := livepatch-fix-1.o\nlivepatch-fix-1-y := livepatch.o diff0.o\n",
            LivepatchModule.GenerateKbuild("fix-1", ["livepatch.o", "diff0.o"]));
        Assert.Equal("livepatch_fix_1", LivepatchModule.ModuleName("fix-1"));
        Assert.Equal(["livegraft_module.h", "livegraft_relocs.c", "livegraft_verify.c", "livepatch.c"], ModuleGlue.Files.Select(f => f.Key));
    }

    public static TheoryData<string, KlpObjectSpec[]> Invalid => new()
    {
        { "bad name!", [new KlpObjectSpec("vmlinux", [new KlpFunctionSpec("f", "g", 0)])] },
        { new string('x', 60), [new KlpObjectSpec("vmlinux", [new KlpFunctionSpec("f", "g", 0)])] },
        { "ok", [] },
        { "ok", [new KlpObjectSpec("vmlinux", [new KlpFunctionSpec("f", "not-an-identifier", 0)])] },
        { "ok", [new KlpObjectSpec("vmlinux", [new KlpFunctionSpec("f", "g", -1)])] },
        { "ok", [new KlpObjectSpec("vmlinux", [new KlpFunctionSpec("f", "g", 0), new KlpFunctionSpec("f", "h", 0)])] },
        { "ok", [new KlpObjectSpec("vmlinux", [new KlpFunctionSpec("f", "g", 0)]), new KlpObjectSpec("vmlinux", [new KlpFunctionSpec("x", "y", 0)])] },
        { "ok", [new KlpObjectSpec("a-b", [new KlpFunctionSpec("f", "g", 0)]), new KlpObjectSpec("a_b", [new KlpFunctionSpec("x", "y", 0)])] },
        { "ok", [new KlpObjectSpec("vmlinux", [])] },
        { "ok", [new KlpObjectSpec("vmlinux", [new KlpFunctionSpec("f", "g", 0)], ["bad cb"], [], [], [])] },
        { "ok", [new KlpObjectSpec("vmlinux", [new KlpFunctionSpec("f", "g", 0)]) { DiffObjects = ["/nonexistent/diff.o"] }] },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void InvalidRequestsAreRefused(string name, KlpObjectSpec[] objects)
    {
        var e = Assert.Throws<LivegraftException>(() => LivepatchModule.Validate(new LivepatchModuleRequest(name, KernelTarget.Reference, objects)));
        Assert.Equal(KernelErrors.ModuleSpecInvalid, e.Diagnostics[0].Id);
        Assert.Equal(ExitCode.InvalidInput, e.ExitCode);
    }

    [Fact]
    public void HeadersAreEmbedded()
    {
        Assert.Equal(["kpatch-macros.h", "kpatch-syscall.h", "linux/livepatch_helpers.h", "livegraft.h"], AuthorHeaders.Names);
        var root = Directory.CreateTempSubdirectory("lg-inc-").FullName;
        try
        {
            var dir = AuthorHeaders.Extract(root);
            Assert.True(File.Exists(Path.Combine(dir, "linux", "livepatch_helpers.h")));
            Assert.Equal(dir, AuthorHeaders.Extract(root));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
