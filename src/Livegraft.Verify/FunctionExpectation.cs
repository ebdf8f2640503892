using Livegraft.Diff;
using Livegraft.Elf;
using static Livegraft.Elf.ElfNative;

namespace Livegraft.Verify;

/// <summary>Why a function is checked.</summary>
public enum ExpectationRole
{
    /// <summary>The patch replaces it (a <c>klp_func</c>; includes callers changed by inlining).</summary>
    Replaced,
    /// <summary>The patch's new code calls or references it through a livepatch relocation.</summary>
    Referenced,
}

/// <summary>
/// The code a patch expects to find in the running kernel for one function: the bytes of the
/// original (unpatched) object and a mask of the bytes the link and boot legitimately change.
/// </summary>
/// <param name="Object">klp object: <c>vmlinux</c> or the module name.</param>
/// <param name="Name">Function name as kallsyms shows it.</param>
/// <param name="Sympos">klp <c>sympos</c> (0 = unique).</param>
/// <param name="Role">Replaced or referenced.</param>
/// <param name="Expected">The function's bytes in the original object (masked bytes zeroed).</param>
/// <param name="Mask">One byte per byte: 0xff compare, 0 ignore.</param>
public sealed record FunctionExpectation(string Object, string Name, int Sympos, ExpectationRole Role, byte[] Expected, byte[] Mask)
{
    /// <summary>Function size in bytes.</summary>
    public int Size => Expected.Length;

    /// <summary>Bytes not compared.</summary>
    public int MaskedBytes => Mask.Count(m => m == 0);

    /// <summary>The <c>.klp.sym.&lt;obj&gt;.&lt;name&gt;,&lt;sympos&gt;</c> name that resolves the function.</summary>
    public string KlpSymbol => $".klp.sym.{Object}.{Name},{Sympos}";

    /// <summary><c>name</c> or <c>name,sympos</c> for messages.</summary>
    public string Display => Sympos == 0 ? Name : $"{Name},{Sympos}";

    /// <summary>The first offset whose unmasked byte differs from <paramref name="actual"/>, or -1.
    /// A shorter <paramref name="actual"/> differs at its end.</summary>
    public int FirstDifference(ReadOnlySpan<byte> actual, ReadOnlySpan<byte> extraMask = default)
    {
        for (var i = 0; i < Expected.Length; i++)
        {
            if (Mask[i] == 0 || (!extraMask.IsEmpty && i < extraMask.Length && extraMask[i] == 0))
                continue;
            if (i >= actual.Length)
                return i;
            if (actual[i] != Expected[i])
                return i;
        }
        return -1;
    }
}

/// <summary>
/// Builds <see cref="FunctionExpectation"/>s from a relocatable object: what is compared and what is
/// masked. Masked: every relocated field (the link fills it), the fentry call (ftrace makes it a
/// 5-byte NOP at boot, or a call to a trampoline while traced), and every site the kernel rewrites
/// at boot or module load: <c>.altinstructions</c> instruction ranges (arch/x86/kernel/alternative.c
/// apply_alternatives), <c>.parainstructions</c> (apply_paravirt), <c>__jump_table</c> code sites
/// (5 bytes, arch_jump_label_transform), <c>.static_call_sites</c> (5 bytes), <c>.retpoline_sites</c>
/// and <c>.return_sites</c> (the call/jmp, 5 or 6 bytes: apply_retpolines, apply_returns) and
/// <c>.smp_locks</c> (the lock prefix, alternatives_smp_unlock): the sites of
/// <see cref="SpecialSections"/>, the one description of those sections the differ uses too.
/// </summary>
public static class ExpectationBuilder
{
    /// <summary>Masks for every function of <paramref name="file"/>, computed once per object, for a
    /// kernel whose special sections have <paramref name="sizes"/>.</summary>
    public static ObjectMasks Index(ElfFile file, SpecialSectionSizes sizes) => new(file, sizes);

    /// <summary>The expectation of <paramref name="function"/> (a defined STT_FUNC of <paramref name="masks"/>' object).</summary>
    public static FunctionExpectation Build(ObjectMasks masks, ElfSymbol function, string obj, int sympos, ExpectationRole role)
    {
        var data = function.Section is { Type: not SHT_NOBITS } s ? s.Data.Span : [];
        var start = (int)Math.Min(function.Value, (ulong)data.Length);
        var bytes = data.Slice(start, (int)Math.Min(function.Size, (ulong)(data.Length - start))).ToArray();
        var mask = masks.MaskOf(function);
        for (var i = 0; i < bytes.Length; i++)
            if (mask[i] == 0)
                bytes[i] = 0;
        return new FunctionExpectation(obj, function.Name, sympos, role, bytes, mask);
    }

    /// <summary>Per-section lists of masked ranges of one object.</summary>
    public sealed class ObjectMasks
    {
        private readonly Dictionary<ElfSection, List<(ulong Start, int Length)>> _ranges = new(ReferenceEqualityComparer.Instance);

        internal ObjectMasks(ElfFile file, SpecialSectionSizes sizes)
        {
            var sites = SpecialSections.For(sizes).Where(s => s.SiteKind != SiteLength.None).ToDictionary(s => s.Name, StringComparer.Ordinal);
            File = file;
            foreach (var rs in file.Sections.OfType<ElfRelocationSection>())
            {
                if (rs.InfoSection is not { } target)
                    continue;
                if (target.IsExecutable)
                {
                    foreach (var r in rs.Relocations)
                    {
                        var width = X86_64RelocationSize(r.Type);
                        if (width == 0)
                            width = 8;
                        var start = r.Offset;
                        // GOTPCRELX relaxation may rewrite the opcode (psABI B.2); mask it too.
                        if (r.Type == R_X86_64_REX_GOTPCRELX && start >= 3) { start -= 3; width += 3; }
                        else if (r.Type == R_X86_64_GOTPCRELX && start >= 2) { start -= 2; width += 2; }
                        Add(target, start, width);
                        if (r.Symbol?.Name is "__fentry__" or "__mcount" && r.Offset >= 1)
                            Add(target, r.Offset - 1, 5);
                        else if (r.Symbol?.Name is { } callee && IsRewrittenBranchTarget(callee) && BranchAt(target.Data.Span, r.Offset) is (var at, > 0 and var length))
                            Add(target, at, length);
                    }
                }
                if (!sites.TryGetValue(target.Name, out var site))
                    continue;
                var data = target.Data.Span;
                foreach (var r in rs.Relocations)
                {
                    if ((int)(r.Offset % (ulong)site.EntrySize) != site.AnchorOffset || r.Symbol?.Section is not { } code || !code.IsExecutable)
                        continue;
                    var at = (long)(r.Symbol.IsSectionSymbol ? 0 : r.Symbol.Value) + r.Addend;
                    if (at < 0)
                        continue;
                    var entry = (int)r.Offset - site.AnchorOffset;
                    var length = site.SiteKind switch
                    {
                        SiteLength.Fixed => site.Site,
                        SiteLength.EntryField => entry + site.Site < data.Length ? data[entry + site.Site] : 0,
                        _ => SiteInstructionLength(code.Data.Span, (ulong)at),
                    };
                    Add(code, (ulong)at, length);
                }
            }
            foreach (var list in _ranges.Values)
                list.Sort((a, b) => a.Start.CompareTo(b.Start));
        }

        /// <summary>The object.</summary>
        public ElfFile File { get; }

        private void Add(ElfSection section, ulong start, int length)
        {
            if (length <= 0)
                return;
            if (!_ranges.TryGetValue(section, out var list))
                _ranges[section] = list = [];
            list.Add((start, length));
        }

        /// <summary>The mask of a function (0xff compare, 0 ignore).</summary>
        public byte[] MaskOf(ElfSymbol function)
        {
            var mask = new byte[(int)Math.Min(function.Size, function.Section is { Type: not SHT_NOBITS } sec ? (ulong)sec.Data.Length - Math.Min(function.Value, (ulong)sec.Data.Length) : 0)];
            Array.Fill(mask, (byte)0xff);
            // With indirect branch tracking a function starts with ENDBR64, which the kernel seals
            // (overwrites with a 4-byte NOP) where objtool found no indirect caller (.ibt_endbr_seal,
            // computed at the vmlinux link, apply_seal_endbr): the running bytes may be either.
            if (function.Section is { Type: not SHT_NOBITS } code && mask.Length >= 4
                && code.Data.Span[(int)function.Value..].StartsWith((ReadOnlySpan<byte>)[0xf3, 0x0f, 0x1e, 0xfa]))
                mask.AsSpan(0, 4).Clear();
            if (function.Section is { } s && _ranges.TryGetValue(s, out var list))
            {
                foreach (var (start, length) in list)
                {
                    for (var k = 0; k < length; k++)
                    {
                        var at = (long)start + k - (long)function.Value;
                        if (at >= 0 && at < mask.Length)
                            mask[at] = 0;
                    }
                }
            }
            return mask;
        }
    }

    /// <summary>
    /// Branch targets whose call sites the kernel rewrites at boot and module load: the return thunk
    /// (apply_returns), the retpoline thunks (apply_retpolines) and static call trampolines
    /// (<c>__SCT__*</c>, arch_static_call_transform). objtool lists these sites in
    /// <c>.return_sites</c>, <c>.retpoline_sites</c> and <c>.static_call_sites</c>, but when the
    /// kernel defers objtool to the vmlinux link (<c>CONFIG_X86_KERNEL_IBT</c>, 6.12) a unit object
    /// has none of those sections: the sites are recognised by their branch target instead.
    /// </summary>
    private static bool IsRewrittenBranchTarget(string name) =>
        name is "__x86_return_thunk"
        || name.StartsWith("__x86_indirect_thunk_", StringComparison.Ordinal)
        || name.StartsWith("__x86_indirect_jump_thunk_", StringComparison.Ordinal)
        || name.StartsWith("__x86_indirect_call_thunk_", StringComparison.Ordinal)
        || name.StartsWith("__SCT__", StringComparison.Ordinal);

    /// <summary>The call, jmp or Jcc whose rel32 is at <paramref name="field"/>: its start and length, or length 0.</summary>
    private static (ulong Start, int Length) BranchAt(ReadOnlySpan<byte> code, ulong field)
    {
        if (field >= 1 && field + 4 <= (ulong)code.Length && code[(int)field - 1] is 0xe8 or 0xe9)
            return (field - 1, 5);
        if (field >= 2 && field + 4 <= (ulong)code.Length && code[(int)field - 2] == 0x0f && (code[(int)field - 1] & 0xf0) == 0x80)
            return (field - 2, 6);
        return (0, 0);
    }

    /// <summary>Length of the call/jmp at a retpoline or return site: <c>e8/e9 rel32</c> is 5 bytes,
    /// <c>0f 8x rel32</c> (Jcc) is 6; anything else is masked for 6 bytes to be safe.</summary>
    private static int SiteInstructionLength(ReadOnlySpan<byte> code, ulong at)
    {
        if (at >= (ulong)code.Length)
            return 6;
        return code[(int)at] is 0xe8 or 0xe9 ? 5 : 6;
    }
}
