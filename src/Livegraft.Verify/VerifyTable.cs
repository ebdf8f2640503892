using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Livegraft.Elf;

namespace Livegraft.Verify;

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
/// kernel/module/main.c apply_relocations, kernel/livepatch/core.c klp_init_object_loaded). The module
/// glue that reads it is src/Livegraft.Kernel/Module/glue/livegraft_verify.c.
/// </summary>
public static class VerifyTable
{
    /// <summary>Symbol of the table in the module.</summary>
    public const string BlobSymbol = "livegraft_verify_blob";
    /// <summary>Symbol of the address array.</summary>
    public const string AddressSymbol = "livegraft_verify_addr";

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
}
