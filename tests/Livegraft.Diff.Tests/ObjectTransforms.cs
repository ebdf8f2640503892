using Livegraft.Elf;
using static Livegraft.Elf.ElfNative;

namespace Livegraft.Diff.Tests;

/// <summary>
/// Rewrites a compiled fixture object the way other toolchains leave theirs, so the differ meets
/// objects this gcc does not write (cases.txt's <c>transform=</c> column):
/// <c>mnop</c> — fentry calls turned into 5-byte NOPs with <c>R_X86_64_NONE</c> relocations, as
/// recordmcount and objtool <c>--mnop</c> do; <c>pc32</c> — calls relocated <c>R_X86_64_PC32</c>
/// instead of <c>PLT32</c>, as binutils before 2.31 did; <c>eflags</c> — the patched object's
/// e_flags changed (not one unit compiled twice).
/// </summary>
public static class ObjectTransforms
{
    private static readonly byte[] Nop5 = [0x0f, 0x1f, 0x44, 0x00, 0x00];

    /// <summary>Applies <paramref name="transforms"/> to the object at <paramref name="path"/> in place.</summary>
    public static string Apply(string path, string variant, IReadOnlyList<string> transforms)
    {
        if (transforms.Count == 0)
            return path;
        var elf = ElfFile.Read(path);
        foreach (var t in transforms)
        {
            switch (t)
            {
                case "mnop":
                    foreach (var rela in elf.Sections.OfType<ElfRelocationSection>())
                    {
                        if (rela.Target is not { IsExecutable: true } text)
                            continue;
                        var bytes = text.Data.ToArray();
                        foreach (var r in rela.Relocations.Where(r => r.Symbol?.Name == "__fentry__"))
                        {
                            r.Type = R_X86_64_NONE;
                            Nop5.CopyTo(bytes.AsSpan((int)r.Offset - 1));
                        }
                        text.Data = bytes;
                    }
                    break;
                case "pc32":
                    foreach (var r in elf.Sections.OfType<ElfRelocationSection>().SelectMany(s => s.Relocations).Where(r => r.Type == R_X86_64_PLT32))
                        r.Type = R_X86_64_PC32;
                    break;
                case "eflags":
                    if (variant == "patched")
                        elf.Header.Flags = 1;
                    break;
                default:
                    throw new InvalidOperationException($"unknown transform '{t}'");
            }
        }
        var output = path + "." + string.Join('.', transforms) + ".o";
        elf.Write(output);
        return output;
    }
}
