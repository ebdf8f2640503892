using Livegraft.Kernel.Units;

namespace Livegraft.Kernel.Tests;

public class UnitsTests
{
    [Theory]
    // includer, quoted, include name, target, resolves
    [InlineData("fs/proc/base.c", true, "fd.h", "fs/proc/fd.h", true)]
    [InlineData("fs/proc/base.c", true, "../internal.h", "fs/internal.h", true)]
    [InlineData("fs/proc/base.c", false, "linux/seq_file.h", "include/linux/seq_file.h", true)]
    [InlineData("fs/proc/base.c", true, "linux/seq_file.h", "include/linux/seq_file.h", true)]
    [InlineData("arch/x86/kernel/cpu/bugs.c", false, "asm/spec-ctrl.h", "arch/x86/include/asm/spec-ctrl.h", true)]
    [InlineData("net/core/dev.c", false, "uapi/linux/if.h", "include/uapi/linux/if.h", true)]
    [InlineData("net/core/dev.c", false, "linux/if.h", "include/uapi/linux/if.h", true)]
    [InlineData("fs/ext4/inode.c", true, "fd.h", "fs/proc/fd.h", false)]
    [InlineData("fs/proc/base.c", false, "fd.h", "fs/proc/fd.h", false)]
    [InlineData("drivers/a/b.c", true, "drivers/a/c.h", "drivers/a/c.h", true)]
    public void IncludeResolution(string includer, bool quoted, string name, string target, bool expected) =>
        Assert.Equal(expected, AffectedUnits.Resolves(includer, quoted, name, target));

    [Fact]
    public void KbuildCommandTellsBuiltinFromModule()
    {
        var builtin = KbuildCommand.FromCommandLine("gcc-12 -Wp,-MMD,fs/proc/.cmdline.o.d -O2 -DKBUILD_MODFILE='\"fs/proc/proc\"' -DKBUILD_BASENAME='\"cmdline\"' -DKBUILD_MODNAME='\"proc\"' -D__KBUILD_MODNAME=kmod_proc -c -o fs/proc/cmdline.o fs/proc/cmdline.c");
        Assert.Equal(("vmlinux", "proc", "fs/proc/proc"), (builtin.Parent, builtin.ModName, builtin.ModFile));
        var module = KbuildCommand.FromCommandLine("gcc-12 -Wp,-MMD,fs/nls/.nls_iso8859-1.o.d -DMODULE -DKBUILD_BASENAME='\"nls_iso8859_1\"' -DKBUILD_MODNAME='\"nls_iso8859_1\"' -D__KBUILD_MODNAME=kmod_nls_iso8859_1 -c -o fs/nls/nls_iso8859-1.o fs/nls/nls_iso8859-1.c");
        Assert.True(module.IsModule);
        Assert.Equal("nls_iso8859_1", module.Parent);
        // -DMODULE_SOMETHING is not -DMODULE.
        Assert.False(KbuildCommand.FromCommandLine("gcc -DMODULE_SIG=1 -c -o a.o a.c").IsModule);
    }

    [Fact]
    public void CatalogFromDryRunLines()
    {
        string[] lines =
        [
            "  gcc-12 -Wp,-MMD,fs/proc/.cmdline.o.d -nostdinc -DKBUILD_MODFILE='\"fs/proc/proc\"' -DKBUILD_MODNAME='\"proc\"' -c -o fs/proc/cmdline.o fs/proc/cmdline.c  ; scripts/basic/fixdep fs/proc/.cmdline.o.d fs/proc/cmdline.o 'gcc-12 -Wp,-MMD,fs/proc/.cmdline.o.d -c -o fs/proc/cmdline.o fs/proc/cmdline.c' > fs/proc/.cmdline.o.cmd",
            "gcc-12 -Wp,-MMD,fs/nls/.nls_utf8.o.d -DMODULE -DKBUILD_MODFILE='\"fs/nls/nls_utf8\"' -DKBUILD_MODNAME='\"nls_utf8\"' -c -o fs/nls/nls_utf8.o fs/nls/nls_utf8.c",
            "gcc-12 -Wp,-MMD,arch/x86/entry/.entry_64.o.d -D__ASSEMBLY__ -DKBUILD_MODNAME='\"entry_64\"' -c -o arch/x86/entry/entry_64.o arch/x86/entry/entry_64.S",
            "gcc-12 -Wp,-MMD,scripts/mod/.empty.o.d -DKBUILD_MODNAME='\"empty\"' -c -o scripts/mod/empty.o scripts/mod/empty.c",
            "gcc-12 -Wp,-MMD,arch/x86/entry/vdso/.vma.o.d -c -o arch/x86/entry/vdso/vma.o arch/x86/entry/vdso/vma.c",
            "  LD      vmlinux.o",
        ];
        var catalog = UnitCatalog.FromDryRun(lines);
        Assert.Equal(3, catalog.Entries.Count);
        Assert.Equal("vmlinux", catalog.BySource("fs/proc/cmdline.c")!.Parent);
        Assert.Equal("nls_utf8", catalog.ByObject("fs/nls/nls_utf8.o")!.Parent);
        Assert.Equal("vmlinux", catalog.BySource("arch/x86/entry/entry_64.S")!.Parent);
        Assert.Null(catalog.BySource("scripts/mod/empty.c"));
        Assert.Null(catalog.BySource("arch/x86/entry/vdso/vma.c"));
    }

    [Fact]
    public void FindIncludersIsTransitive()
    {
        var root = Directory.CreateTempSubdirectory("lg-inc-").FullName;
        try
        {
            void W(string rel, string text)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(root, rel))!);
                File.WriteAllText(Path.Combine(root, rel), text);
            }
            W("include/linux/leaf.h", "#define LEAF 1\n");
            W("include/linux/mid.h", "#include <linux/leaf.h>\n");
            W("fs/a/a.c", "#include <linux/mid.h>\n");
            W("fs/a/local.h", "# include \"../../include/linux/leaf.h\"\n");
            W("fs/a/b.c", "#include \"local.h\"\n");
            W("fs/a/c.c", "#include <linux/other_leaf.h>\n/* linux/leaf.h */\n");
            W("Documentation/x.c", "#include <linux/leaf.h>\n");
            var found = AffectedUnits.FindIncluders(root, ["include/linux/leaf.h"]);
            Assert.Equal(["fs/a/a.c", "fs/a/b.c", "fs/a/local.h", "include/linux/mid.h"], found["include/linux/leaf.h"]);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void VermagicFromConfig()
    {
        if (!File.Exists(KernelTarget.Reference.HeadersConfigFile))
            Assert.Skip("headers package not installed");
        Assert.Equal("6.1.0-56-amd64 SMP preempt mod_unload modversions ", KernelTarget.Reference.ExpectedVermagic());
    }
}
