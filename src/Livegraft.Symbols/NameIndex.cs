using System.Buffers;
using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace Livegraft.Symbols;

/// <summary>Where the names of an index's entries live, compared on demand.</summary>
internal interface INameSource
{
    /// <summary>True when entry <paramref name="entry"/> is called <paramref name="utf8Name"/>.</summary>
    bool NameEquals(int entry, ReadOnlySpan<byte> utf8Name);

    /// <summary>The name of entry <paramref name="entry"/>.</summary>
    string NameOf(int entry);
}

/// <summary>
/// Name → entries index holding ints only: a 32-bit hash per entry, an open-addressing bucket array
/// (linear probing) holding the first entry of each hash, and a "next entry with the same hash" array,
/// so a name's entries come out in entry order (kallsyms order for symbol tables, file order for
/// <c>Module.symvers</c>). Names are not kept: a lookup compares the few entries whose hash matches
/// with the name asked for, through <see cref="INameSource"/>, so equal hashes never merge two names.
/// </summary>
internal sealed class NameIndex
{
    private const int StackNameLimit = 256;

    private readonly INameSource _names;
    private readonly uint[] _hashes;
    private readonly int[] _buckets; // entry + 1 of the first entry with a hash; 0 = empty
    private readonly int[] _next;    // entry + 1 of the next entry with the same hash; 0 = last
    private readonly int _mask;

    /// <summary>Indexes entries 0..<paramref name="count"/>-1 whose names hash to
    /// <paramref name="hashes"/> (<see cref="Hash(ReadOnlySpan{byte})"/>); the array may be longer than <paramref name="count"/>.</summary>
    public NameIndex(INameSource names, uint[] hashes, int count)
    {
        _names = names;
        _hashes = hashes;
        Count = count;
        // Load factor at most 3/4; the stored hash makes a probe one int compare.
        var size = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(16, count + count / 3));
        _mask = size - 1;
        _buckets = new int[size];
        _next = new int[count];
        // Backwards, prepending: each chain ends up in ascending entry order.
        for (var i = count - 1; i >= 0; i--)
        {
            var h = hashes[i];
            var b = (int)h & _mask;
            while (_buckets[b] != 0 && _hashes[_buckets[b] - 1] != h)
                b = (b + 1) & _mask;
            _next[i] = _buckets[b];
            _buckets[b] = i + 1;
        }
    }

    /// <summary>Number of entries.</summary>
    public int Count { get; }

    /// <summary>The name of entry <paramref name="entry"/>.</summary>
    public string NameOf(int entry)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)entry, (uint)Count, nameof(entry));
        return _names.NameOf(entry);
    }

    /// <summary>Entries called <paramref name="name"/>, in entry order.</summary>
    public int[] EntriesOf(string name)
    {
        var max = Encoding.UTF8.GetMaxByteCount(name.Length);
        if (max <= StackNameLimit)
        {
            Span<byte> buffer = stackalloc byte[StackNameLimit];
            return EntriesOf(buffer[..Encoding.UTF8.GetBytes(name, buffer)]);
        }
        var rented = ArrayPool<byte>.Shared.Rent(max);
        try
        {
            return EntriesOf(rented.AsSpan(0, Encoding.UTF8.GetBytes(name, rented)));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>Entries called <paramref name="utf8Name"/>, in entry order.</summary>
    public int[] EntriesOf(ReadOnlySpan<byte> utf8Name)
    {
        var h = Hash(utf8Name);
        var b = (int)h & _mask;
        while (_buckets[b] != 0 && _hashes[_buckets[b] - 1] != h)
            b = (b + 1) & _mask;
        var n = 0;
        for (var e = _buckets[b] - 1; e >= 0; e = _next[e] - 1)
            n++;
        if (n == 0)
            return [];
        var result = new int[n];
        n = 0;
        for (var e = _buckets[b] - 1; e >= 0; e = _next[e] - 1)
        {
            if (_names.NameEquals(e, utf8Name))
                result[n++] = e;
        }
        return n == result.Length ? result : result[..n];
    }

    /// <summary>klp <c>sympos</c> of <paramref name="entry"/>: 0 when its name is unique, else its
    /// 1-based position among the entries with that name.</summary>
    public int PositionOf(int entry)
    {
        var same = EntriesOf(NameOf(entry));
        return same.Length == 1 ? 0 : Array.IndexOf(same, entry) + 1;
    }

    /// <summary>Every entry's <see cref="PositionOf"/> at once, in one walk over the chains, with names
    /// the caller already holds in memory.</summary>
    public int[] AllPositions(Func<int, string> nameOf)
    {
        var positions = new int[Count];
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var head in _buckets)
        {
            if (head == 0 || _next[head - 1] == 0)
                continue; // a hash with one entry: a unique name
            seen.Clear();
            for (var e = head - 1; e >= 0; e = _next[e] - 1)
            {
                ref var count = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(seen, nameOf(e), out _);
                positions[e] = ++count;
            }
            for (var e = head - 1; e >= 0; e = _next[e] - 1)
            {
                if (seen[nameOf(e)] == 1)
                    positions[e] = 0;
            }
        }
        return positions;
    }

    /// <summary>64-bit multiply-xor over 8-byte words with a murmur3 finaliser, folded to 32 bits:
    /// buckets are taken from the low bits, so they must depend on every byte.</summary>
    public static uint Hash(ReadOnlySpan<byte> s)
    {
        const ulong k = 0x9E3779B97F4A7C15;
        var h = (ulong)s.Length * k;
        while (s.Length >= 8)
        {
            h = BitOperations.RotateLeft((h ^ BinaryPrimitives.ReadUInt64LittleEndian(s)) * k, 27);
            s = s[8..];
        }
        ulong tail = 0;
        for (var i = 0; i < s.Length; i++)
            tail |= (ulong)s[i] << (8 * i);
        h = (h ^ tail) * k;
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccd;
        h ^= h >> 33;
        return (uint)(h ^ (h >> 32));
    }

    /// <summary>Hash of a string's UTF-8 bytes.</summary>
    public static uint Hash(string name)
    {
        var max = Encoding.UTF8.GetMaxByteCount(name.Length);
        if (max <= StackNameLimit)
        {
            Span<byte> buffer = stackalloc byte[StackNameLimit];
            return Hash(buffer[..Encoding.UTF8.GetBytes(name, buffer)]);
        }
        return Hash(Encoding.UTF8.GetBytes(name));
    }

    /// <summary>Indexes in-memory names (<paramref name="nameOf"/> must stay valid).</summary>
    public static NameIndex Of(int count, Func<int, string> nameOf)
    {
        var hashes = new uint[count];
        for (var i = 0; i < count; i++)
            hashes[i] = Hash(nameOf(i));
        return new NameIndex(new StringNames(nameOf), hashes, count);
    }

    private sealed class StringNames(Func<int, string> nameOf) : INameSource
    {
        public bool NameEquals(int entry, ReadOnlySpan<byte> utf8Name)
        {
            var name = nameOf(entry);
            if (Encoding.UTF8.GetByteCount(name) != utf8Name.Length)
                return false;
            Span<byte> buffer = utf8Name.Length <= StackNameLimit ? stackalloc byte[utf8Name.Length] : new byte[utf8Name.Length];
            Encoding.UTF8.GetBytes(name, buffer);
            return buffer.SequenceEqual(utf8Name);
        }

        public string NameOf(int entry) => nameOf(entry);
    }
}

/// <summary>Names that are byte ranges of a <see cref="TextSource"/>: entry <c>i</c> is
/// <c>length[i]</c> bytes at <c>start[i]</c>.</summary>
internal sealed class TextNames(TextSource text, int[] start, int[] length) : INameSource
{
    /// <summary>Offset of entry <paramref name="entry"/>'s name.</summary>
    public int Start(int entry) => start[entry];

    public bool NameEquals(int entry, ReadOnlySpan<byte> utf8Name) =>
        length[entry] == utf8Name.Length && text.BytesEqual(start[entry], utf8Name);

    public string NameOf(int entry) => Encoding.UTF8.GetString(text.ReadBytes(start[entry], length[entry]));
}
