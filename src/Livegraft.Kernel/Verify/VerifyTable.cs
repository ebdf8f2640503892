using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Livegraft.Elf;

namespace Livegraft.Kernel.Verify;

/// <summary>
/// The verification table a patch module carries (<c>livegraft_verify_blob</c>): the expected bytes
/// and masks of every function to check, read by the module's own pre-patch check and by
/// <c>livegraft verify</c>. Layout (little endian):
/// <code>
/// "LGVERIF1" u32 count u32 reserved
/// count × { u32 object-index, u32 sympos, u32 size, u16 name-len, u16 object-len, u8 role, u8[3] 0,
///           name, object, expected[size], mask[size], zero padding to 4 }
/// </code>
/// Entry i's running address is <c>livegraft_verify_addr[i]</c>, filled by a livepatch relocation
/// to <c>.klp.sym.&lt;obj&gt;.&lt;name&gt;,&lt;sympos&gt;</c> (vmlinux ones by the module loader,
/// module ones when klp initialises the object, both before its pre_patch callback runs:
/// kernel/module/main.c apply_relocations, kernel/livepatch/core.c klp_init_object_loaded).
/// </summary>
public static class VerifyTable
{
    /// <summary>Symbol of the table in the module.</summary>
    public const string BlobSymbol = "livegraft_verify_blob";
    /// <summary>Symbol of the address array.</summary>
    public const string AddressSymbol = "livegraft_verify_addr";
    /// <summary>Prefix of the per-object pre_patch check (suffix: object index).</summary>
    public const string CallbackPrefix = "livegraft_verify_pre_patch_";
    /// <summary>File name of the generated C source in the module directory.</summary>
    public const string SourceFile = "livegraft_verify.c";

    private static ReadOnlySpan<byte> Magic => "LGVERIF1"u8;
    private const int HeaderSize = 16;
    private const int EntryHeaderSize = 20;

    /// <summary>Serialises the table; <paramref name="objectIndex"/> maps a klp object name to its
    /// index in the patch's <c>klp_object</c> array.</summary>
    public static byte[] Encode(IReadOnlyList<FunctionExpectation> entries, Func<string, int> objectIndex)
    {
        var buf = new List<byte>(Magic.ToArray());
        void U32(uint v) { Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); buf.AddRange(b.ToArray()); }
        void U16(ushort v) { Span<byte> b = stackalloc byte[2]; BinaryPrimitives.WriteUInt16LittleEndian(b, v); buf.AddRange(b.ToArray()); }
        U32((uint)entries.Count);
        U32(0);
        foreach (var e in entries)
        {
            var name = Encoding.UTF8.GetBytes(e.Name);
            var obj = Encoding.UTF8.GetBytes(e.Object);
            U32((uint)objectIndex(e.Object));
            U32((uint)e.Sympos);
            U32((uint)e.Size);
            U16((ushort)name.Length);
            U16((ushort)obj.Length);
            buf.Add((byte)e.Role);
            buf.AddRange(new byte[3]);
            buf.AddRange(name);
            buf.AddRange(obj);
            buf.AddRange(e.Expected);
            buf.AddRange(e.Mask);
            while (buf.Count % 4 != 0)
                buf.Add(0);
        }
        return [.. buf];
    }

    /// <summary>Parses a table; throws LG0353 when malformed.</summary>
    public static List<FunctionExpectation> Decode(ReadOnlySpan<byte> blob, string? file = null)
    {
        LivegraftException Bad(string why) => new(ExitCode.InvalidInput, VerifyErrors.NoTable, $"malformed verification table: {why}", file, BlobSymbol);
        if (blob.Length < HeaderSize || !blob[..8].SequenceEqual(Magic))
            throw Bad("bad magic");
        var count = BinaryPrimitives.ReadUInt32LittleEndian(blob[8..]);
        var at = HeaderSize;
        var result = new List<FunctionExpectation>();
        for (var i = 0; i < count; i++)
        {
            if (at + EntryHeaderSize > blob.Length)
                throw Bad($"entry {i} truncated");
            var e = blob[at..];
            var sympos = (int)BinaryPrimitives.ReadUInt32LittleEndian(e[4..]);
            var size = (int)BinaryPrimitives.ReadUInt32LittleEndian(e[8..]);
            var nameLen = BinaryPrimitives.ReadUInt16LittleEndian(e[12..]);
            var objLen = BinaryPrimitives.ReadUInt16LittleEndian(e[14..]);
            var role = (ExpectationRole)e[16];
            var total = EntryHeaderSize + nameLen + objLen + 2L * size;
            if (size < 0 || at + total > blob.Length)
                throw Bad($"entry {i} truncated");
            var p = EntryHeaderSize;
            var name = Encoding.UTF8.GetString(e.Slice(p, nameLen));
            p += nameLen;
            var obj = Encoding.UTF8.GetString(e.Slice(p, objLen));
            p += objLen;
            var expected = e.Slice(p, size).ToArray();
            var mask = e.Slice(p + size, size).ToArray();
            result.Add(new FunctionExpectation(obj, name, sympos, role, expected, mask));
            at += (int)((total + 3) & ~3L);
        }
        return result;
    }

    /// <summary>Reads the table back from a built module (<c>livegraft verify</c>).</summary>
    public static List<FunctionExpectation> Read(string koPath)
    {
        var ko = ElfFile.Read(koPath);
        var sym = ko.SymbolTable?.Symbols.FirstOrDefault(s => s.Name == BlobSymbol && s.Section is not null)
            ?? throw new LivegraftException(ExitCode.InvalidInput, VerifyErrors.NoTable,
                "the module carries no verification table (built by an older Livegraft, or not a Livegraft patch)", koPath);
        var data = sym.Section!.Data.Span;
        if (sym.Value + sym.Size > (ulong)data.Length)
            throw new LivegraftException(ExitCode.InvalidInput, VerifyErrors.NoTable, "verification table lies outside its section", koPath);
        return Decode(data.Slice((int)sym.Value, (int)sym.Size), koPath);
    }

    /// <summary>
    /// Generates <c>livegraft_verify.c</c>: the table, the address array with one livepatch
    /// relocation per entry (in the differ's <c>.livegraft.klp_relocs</c> encoding, which
    /// <c>KlpPostLink</c> turns into <c>.klp.rela.&lt;obj&gt;.*</c>), and one pre_patch callback per
    /// object (<see cref="CallbackPrefix"/>N) returning -EINVAL on the first mismatch, so klp never
    /// enables the patch (livepatch.rst: a failing pre_patch callback stops the patch).
    /// </summary>
    public static string GenerateSource(IReadOnlyList<FunctionExpectation> entries, IReadOnlyList<string> objects)
    {
        var blob = Encode(entries, o => IndexOf(objects, o));
        var sb = new StringBuilder();
        sb.Append("// SPDX-License-Identifier: GPL-2.0\n");
        sb.Append("/* Generated by Livegraft: run-pre verification (docs/verify.md). Before klp enables the\n");
        sb.Append(" * patch for an object, compare the running code of every function the patch replaces or\n");
        sb.Append(" * reaches with the code it was built from, ignoring the bytes the link and boot rewrite. */\n");
        sb.Append("#include <linux/module.h>\n#include <linux/kernel.h>\n#include <linux/livepatch.h>\n#include <asm/unaligned.h>\n\n");
        var n = Math.Max(entries.Count, 1);
        sb.Append(CultureInfo.InvariantCulture, $"#define LIVEGRAFT_VERIFY_COUNT {entries.Count}\n\n");
        // Zero-initialised (x86 apply_relocate_add refuses to write over a non-zero place) and in its
        // own writable section, which the klp relocation section targets.
        sb.Append(CultureInfo.InvariantCulture, $"unsigned long {AddressSymbol}[{n}] __visible __section(\".data..livegraft_verify\") = {{ 0 }};\n");
        sb.Append(CultureInfo.InvariantCulture, $"const u8 {BlobSymbol}[{blob.Length}] __visible __aligned(8) = {{");
        for (var i = 0; i < blob.Length; i++)
        {
            if (i % 16 == 0)
                sb.Append("\n\t");
            sb.Append(CultureInfo.InvariantCulture, $"0x{blob[i]:x2},");
        }
        sb.Append("\n};\n\n");
        if (entries.Count > 0)
        {
            // One entry of .livegraft.klp_relocs per function: place, name, addend, type (R_X86_64_64).
            sb.Append("asm(\n");
            for (var i = 0; i < entries.Count; i++)
            {
                sb.Append("\t\".pushsection .livegraft.klp_relocs, \\\"\\\", @progbits\\n\\t.balign 8\\n\"\n");
                sb.Append(CultureInfo.InvariantCulture, $"\t\"\\t.quad {AddressSymbol} + {i * 8}\\n\\t.quad .Llivegraft_verify_name_{i}\\n\\t.quad 0\\n\\t.long 1\\n\\t.long 0\\n.popsection\\n\"\n");
                sb.Append("\t\".pushsection .livegraft.klp_strs, \\\"\\\", @progbits\\n\"\n");
                sb.Append(CultureInfo.InvariantCulture, $"\t\".Llivegraft_verify_name_{i}: .asciz \\\"{entries[i].KlpSymbol}\\\"\\n.popsection\\n\"\n");
            }
            sb.Append(");\n\n");
        }
        sb.Append("""
static int livegraft_verify_object(unsigned int objidx, const char *objname)
{
	const u8 *blob = livegraft_verify_blob;
	u32 count = get_unaligned_le32(blob + 8), i;
	size_t off = 16;
	int bad = 0, checked = 0;

	for (i = 0; i < count; i++) {
		const u8 *e = blob + off;
		u32 obj = get_unaligned_le32(e), sympos = get_unaligned_le32(e + 4);
		u32 size = get_unaligned_le32(e + 8), k;
		u16 nlen = get_unaligned_le16(e + 12), olen = get_unaligned_le16(e + 14);
		const char *name = (const char *)(e + 20);
		const u8 *expected = e + 20 + nlen + olen, *mask = expected + size;
		const u8 *text = (const u8 *)livegraft_verify_addr[i];

		off = ALIGN(off + 20 + nlen + olen + 2 * (size_t)size, 4);
		if (obj != objidx)
			continue;
		checked++;
		if (!text) {
			pr_err("livegraft: %s: %s: %.*s,%u was not resolved; refusing to patch\n",
			       THIS_MODULE->name, objname, nlen, name, sympos);
			bad = 1;
			continue;
		}
		for (k = 0; k < size; k++) {
			if (mask[k] && text[k] != expected[k]) {
				pr_err("livegraft: %s: %s: %.*s,%u+0x%x: running code differs from the code this patch was built from (expected %02x, found %02x); refusing to patch\n",
				       THIS_MODULE->name, objname, nlen, name, sympos, k, expected[k], text[k]);
				bad = 1;
				break;
			}
		}
	}
	if (bad)
		return -EINVAL;
	pr_info("livegraft: %s: %s: %d functions match the code the patch was built from\n",
		THIS_MODULE->name, objname, checked);
	return 0;
}


""");
        for (var i = 0; i < objects.Count; i++)
        {
            sb.Append(CultureInfo.InvariantCulture, $"int {CallbackPrefix}{i}(struct klp_object *obj);\n");
            sb.Append(CultureInfo.InvariantCulture, $"int {CallbackPrefix}{i}(struct klp_object *obj)\n{{\n\treturn livegraft_verify_object({i}, obj->name ? obj->name : \"vmlinux\");\n}}\n\n");
        }
        return sb.ToString();
    }

    private static int IndexOf(IReadOnlyList<string> objects, string obj)
    {
        for (var i = 0; i < objects.Count; i++)
            if (objects[i] == obj || LivepatchModule.KlpObjectName(objects[i]) == obj)
                return i;
        throw new ArgumentException($"object {obj} is not in the patch", nameof(obj));
    }
}
