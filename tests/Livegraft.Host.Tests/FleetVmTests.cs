using System.Text.Json;
using Livegraft.Host.Repository;
using Livegraft.Kernel;
using Livegraft.Kernel.Build;
using Livegraft.Vm;

namespace Livegraft.Host.Tests;

/// <summary>
/// Three guests of the reference kernel (web1, web2, web3), booted once for the collection: each runs
/// Debian's dropbear reached only through a 127.0.0.1 port forward (user networking with
/// restrict=on), trusts one repository key in /etc/livegraft/keys and has the repository on a shared
/// read-only disk at /mnt/repo (web3 reads it over HTTP from its own loopback). The disk holds four
/// snapshots of one repository built with the real pipeline: v1 (tests/patches/01-cmdline-string.patch),
/// v2 (the same with another marker), tampered (v2 with one byte of its module changed) and untrusted
/// (v2's index signed by a key no guest trusts). ansible-playbook on this machine drives them.
/// For the kexec path each guest also has /boot with <see cref="NewRelease"/> (and its own kernel) and a
/// state disk at /var/lib/livegraft, and its init hook plays the boot units' part (load-installed, then
/// confirm-boot in the background), so that a kexec reboot comes back with its installed patches.
/// </summary>
public sealed class FleetVms : IDisposable
{
    public static readonly string[] Hosts = ["web1", "web2", "web3"];

    /// <summary>The kernel the kexec rollout boots.</summary>
    public const string NewRelease = "6.1.0-57-amd64";

    /// <summary>Healthy window of the guests' boot hook (short, so that the rollout sees confirm-boot act).</summary>
    public const int HealthySeconds = 5;

    private readonly List<VmSession> _vms = [];
    private readonly string _work;

    public FleetVms()
    {
        _work = Directory.CreateTempSubdirectory("livegraft-fleet-test-").FullName;
        var bin = TestPaths.NativeLivegraft;
        if (!File.Exists(bin))
        {
            Error = $"no NativeAOT livegraft at {bin} (run make publish or set LIVEGRAFT_BIN)";
            return;
        }
        try
        {
            KernelTarget.Reference.EnsureImage();
            new KernelTarget(NewRelease).EnsureImage();
            BuildRepository();
            var img = Path.Combine(_work, "repo.img");
            DiskImage.CreateExt4(img, 32, Path.Combine(_work, "disk"), "repo");
            var sshKey = Path.Combine(_work, "id_ed25519");
            var keygen = ProcessRunner.Run(new ProcessSpec("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", sshKey]));
            Assert.True(keygen.ExitCode == 0, "ssh-keygen failed (install openssh-client): " + keygen.Stderr);
            var ports = Hosts.Select(_ => GuestSsh.FreeLoopbackPort()).ToArray();
            // Booted side by side: each guest gets one CPU; the boot is mostly the kernel's own work.
            var boots = Hosts.Select((h, i) => Task.Run(() => Start(h, ports[i], bin, img, File.ReadAllText(sshKey + ".pub")))).ToArray();
            Task.WaitAll(boots);
            _vms.AddRange(boots.Select(b => b.Result));
            WriteAnsibleConfig(sshKey, ports);
        }
        catch (Exception e) when (e is LivegraftException or AggregateException)
        {
            Error = "cannot set up the fleet: " + e.Message;
        }
    }

    public string? Error { get; }

    /// <summary>The session of a host.</summary>
    public VmSession this[string host] => _vms.Count == Hosts.Length ? _vms[Array.IndexOf(Hosts, host)] : throw new InvalidOperationException(Error ?? "no fleet");

    /// <summary>The v1 and v2 patch module names.</summary>
    public string V1 { get; private set; } = "";

    public string V2 { get; private set; } = "";

    /// <summary>Where the ansible.cfg, inventory and summaries live.</summary>
    public string Work => _work;

    /// <summary>Runs a shell command on every guest at once (over the serial consoles) and returns their outputs.</summary>
    public string[] OnAll(string command) =>
        Task.WhenAll(Hosts.Select(h => Task.Run(() => this[h].RunChecked(command, TimeSpan.FromSeconds(180))))).GetAwaiter().GetResult();

    /// <summary>Every guest on the reference kernel (one still on <see cref="NewRelease"/> after a kexec case is
    /// kexec'd back, all at once), no patch loaded or installed, no update, kexec or boot safety record, no cache,
    /// no test markers.</summary>
    public void Reset()
    {
        // The test patches append " livegraft=NN" to /proc/cmdline; a kexec that reused it while one was loaded
        // left that in the real command line, which the next boot gets back here without it.
        var back = Hosts.Where(h => this[h].Run($"livegraft unload --all >/dev/null 2>&1; [ \"$(uname -r)\" = {KernelTarget.ReferenceRelease} ] && ! grep -q ' livegraft=' /proc/cmdline").ExitCode != 0).ToList();
        Task.WhenAll(back.Select(h => Task.Run(() =>
        {
            var r = this[h].RunRebooting($"livegraft reboot --kexec --kernel {KernelTarget.ReferenceRelease} {CleanCommandLine} >/tmp/lg-back.log 2>&1; cat /tmp/lg-back.log");
            Assert.True(r.Rebooted, $"{h}: no kexec back to {KernelTarget.ReferenceRelease} (exit {r.ExitCode}): {r.Output}");
        }))).GetAwaiter().GetResult();
        OnAll("while pidof livegraft >/dev/null; do sleep 0.2; done; livegraft unload --all >/dev/null 2>&1; " +
            "rm -rf /var/lib/livegraft/* /var/cache/livegraft /etc/systemd/system /run/lg-unhealthy; sync; true");
    }

    /// <summary><c>reboot --kexec</c> options that give the next boot the running command line without the test
    /// patches' marker: the cmdline patches change what /proc/cmdline prints, which a reused command line would
    /// carry into the next boot (a real fix leaves /proc/cmdline alone).</summary>
    public const string CleanCommandLine = "--append \"$(sed 's/ livegraft=[^ ]*//g' /proc/cmdline)\"";

    /// <summary>The end of the console of each guest whose QEMU has exited (a panic: the guests boot with panic=-1), or "".</summary>
    public string Stopped() => string.Concat(Hosts.Where(h => !this[h].IsRunning).Select(h =>
        $"\n--- {h} stopped; its console ends:\n{this[h].ConsoleLog[Math.Max(0, this[h].ConsoleLog.Length - 6000)..]}"));

    /// <summary>The running kernel release and boot id of a host.</summary>
    public (string Release, string BootId) Boot(string host)
    {
        var lines = this[host].RunChecked("uname -r; cat /proc/sys/kernel/random/boot_id").Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        return (lines[0], lines[1]);
    }

    /// <summary><c>livegraft status --json</c> of a host.</summary>
    public JsonElement Status(string host) => JsonDocument.Parse(this[host].RunChecked("livegraft status --json 2>/dev/null")).RootElement.Clone();

    /// <summary>The marker the cmdline patches append to /proc/cmdline, or "" for none.</summary>
    public string Marker(string host)
    {
        var cmdline = this[host].RunChecked("cat /proc/cmdline");
        var i = cmdline.IndexOf(" livegraft=", StringComparison.Ordinal);
        return i < 0 ? "" : cmdline[(i + " livegraft=".Length)..].Trim();
    }

    /// <summary>Runs <c>ansible-playbook</c> (or <c>ansible</c> with <paramref name="adHoc"/>) with this fleet's configuration.</summary>
    public ProcessResult Ansible(IReadOnlyList<string> args, bool adHoc = false)
    {
        // Ansible refuses to start unless the locale's encoding is UTF-8.
        var env = new Dictionary<string, string?> { ["ANSIBLE_CONFIG"] = Path.Combine(_work, "ansible.cfg"), ["ANSIBLE_FORCE_COLOR"] = null, ["LC_ALL"] = "C.UTF-8" };
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        return ProcessRunner.Run(new ProcessSpec(adHoc ? "ansible" : "ansible-playbook", args) { Environment = env, WorkingDirectory = _work, CLocale = false }, timeout.Token);
    }

    public void Dispose()
    {
        foreach (var vm in _vms)
            vm.Dispose();
        try
        {
            Directory.Delete(_work, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>Builds both patches, a repository signed by "fleet", and the four snapshots under disk/.</summary>
    private void BuildRepository()
    {
        var v1Patch = Path.Combine(TestPaths.RepoRoot, "tests", "patches", "01-cmdline-string.patch");
        var v2Patch = Path.Combine(_work, "cmdline-v2.patch");
        File.WriteAllText(v2Patch, File.ReadAllText(v1Patch).Replace("livegraft=01", "livegraft=02", StringComparison.Ordinal));
        var v1 = PatchBuilder.Build(new BuildRequest(v1Patch, KernelTarget.Reference) { Name = "fleet-v1", OutputPath = Path.Combine(_work, "livepatch-fleet-v1.ko") });
        var v2 = PatchBuilder.Build(new BuildRequest(v2Patch, KernelTarget.Reference) { Name = "fleet-v2", OutputPath = Path.Combine(_work, "livepatch-fleet-v2.ko") });
        (V1, V2) = (v1.ModuleName, v2.ModuleName);

        var (key, _, _) = PatchRepository.GenerateKey(Path.Combine(_work, "fleet"));
        var (strangerKey, _, _) = PatchRepository.GenerateKey(Path.Combine(_work, "stranger"));
        var repo = Path.Combine(_work, "repo");
        var disk = Path.Combine(_work, "disk");
        PatchRepository.Init(repo, key, "fleet test");
        PublishRequest Publish(string ko) => new(ko, key)
        {
            KernelBuildIdOf = PublishFacts.KernelBuildId,
            PatchedFunctionsOf = PublishFacts.PatchedFunctions,
            Notes = ["test marker in /proc/cmdline"],
        };
        PatchRepository.Add(repo, Publish(v1.ModulePath) with { Cves = ["CVE-2099-0001"] });
        CopyTree(repo, Path.Combine(disk, "v1"));
        var entry = PatchRepository.Add(repo, Publish(v2.ModulePath) with { Cves = ["CVE-2099-0002"] });
        CopyTree(repo, Path.Combine(disk, "v2"));

        CopyTree(repo, Path.Combine(disk, "tampered"));
        var module = Path.Combine(disk, "tampered", entry.File);
        var bytes = File.ReadAllBytes(module);
        bytes[bytes.Length / 2] ^= 0x01;
        File.WriteAllBytes(module, bytes);

        CopyTree(repo, Path.Combine(disk, "untrusted"));
        var index = Path.Combine(disk, "untrusted", PatchIndex.FileName);
        using (var stranger = SigningKey.Read(strangerKey))
            File.WriteAllText(index + DetachedSignature.Suffix, DetachedSignature.Create(stranger, File.ReadAllBytes(index)).ToText());
        File.Copy(Path.Combine(repo, PatchRepository.PublicKeyFile), Path.Combine(_work, "trusted.pem"));
    }

    private VmSession Start(string host, int port, string bin, string img, string publicKey)
    {
        var state = Path.Combine(_work, host + "-state.img");
        DiskImage.CreateExt4(state, 32);
        // Disks: the state disk (vda), /boot (vdb, from BootImages), the shared repository (vdc, read-only).
        var options = new VmOptions(KernelTarget.Reference)
        {
            LivegraftBinary = bin,
            Cpus = 1,
            MemoryMiB = 512,
            SshPort = port,
            CommandTimeout = TimeSpan.FromSeconds(180),
            BootTimeout = TimeSpan.FromSeconds(240),
            ConfigureInitramfs = b => b.AddInitHook("30-fleet", $"""
                hostname {host}
                mkdir -p /mnt/repo && mount -t ext4 -o ro /dev/vdc /mnt/repo
                busybox httpd -p 127.0.0.1:8080 -h /mnt/repo
                mkdir -p /var/lib/livegraft
                if mount -t ext4 /dev/vda /var/lib/livegraft; then
                    livegraft load-installed --healthy-after {HealthySeconds}s >/run/livegraft-boot.log 2>&1
                    livegraft confirm-boot >/run/livegraft-confirm.log 2>&1 &
                fi
                true

                """),
        };
        options.Disks.Add(state);
        options.BootImages.Add(new KernelTarget(NewRelease));
        options.AuthorizedKeys.Add(publicKey);
        options.ReadOnlyDisks.Add(img);
        options.Files.Add(new GuestFile(Path.Combine(_work, "trusted.pem"), "/etc/livegraft/keys/fleet.pem", 0x1A4));
        return VmSession.Start(options);
    }

    /// <summary>An ansible.cfg and inventory: the collection from ansible/ in this checkout, SSH to the forwards,
    /// files sent through ssh itself (dropbear has no sftp), and web3 reading the repository over HTTP.</summary>
    private void WriteAnsibleConfig(string sshKey, int[] ports)
    {
        var collections = Path.Combine(_work, "collections", "ansible_collections", "livegraft");
        Directory.CreateDirectory(collections);
        File.CreateSymbolicLink(Path.Combine(collections, "fleet"), Path.Combine(TestPaths.RepoRoot, "ansible"));
        Directory.CreateDirectory(Path.Combine(_work, "cp"));
        var hosts = string.Concat(Hosts.Select((h, i) => $"{h} ansible_port={ports[i]}" + (h == "web3" ? " livegraft_repo=\"http://127.0.0.1:8080/{{ livegraft_snapshot }}\"" : "") + "\n"));
        File.WriteAllText(Path.Combine(_work, "inventory.ini"), $"""
            [livegraft]
            {hosts}
            [livegraft:vars]
            ansible_host=127.0.0.1
            ansible_user=root
            ansible_ssh_private_key_file={sshKey}
            livegraft_repo="/mnt/repo/{"{{"} livegraft_snapshot {"}}"}"

            """);
        File.WriteAllText(Path.Combine(_work, "ansible.cfg"), $"""
            [defaults]
            collections_path = {Path.Combine(_work, "collections")}
            inventory = {Path.Combine(_work, "inventory.ini")}
            local_tmp = {Path.Combine(_work, "ansible-local")}
            host_key_checking = False
            retry_files_enabled = False
            [ssh_connection]
            ssh_args = -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ControlMaster=auto -o ControlPersist=120s
            control_path_dir = {Path.Combine(_work, "cp")}
            transfer_method = piped

            """);
    }

    private static void CopyTree(string from, string to)
    {
        foreach (var dir in Directory.GetDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, dir)));
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
            File.Copy(file, Path.Combine(to, Path.GetRelativePath(from, file)));
    }
}

[CollectionDefinition("fleet", DisableParallelization = true)]
public sealed class FleetCollection : ICollectionFixture<FleetVms>;

/// <summary>Acceptance of issue #12 on real guests: the rollout in waves with health checks and rollback,
/// and a tampered patch or an untrusted index refused on the host with nothing loaded.</summary>
[Collection("fleet")]
public sealed class FleetVmTests
{
    private readonly FleetVms _fleet;

    public FleetVmTests(FleetVms fleet)
    {
        Assert.True(fleet.Error is null, fleet.Error);
        _fleet = fleet;
        fleet.Reset();
    }

    private void AssertRan(ProcessResult r, bool success, string what) =>
        Assert.True((r.ExitCode == 0) == success, $"{what}: exit {r.ExitCode}, expected {(success ? "0" : "non-zero")}\n{Tail(r)}{_fleet.Stopped()}");

    private ProcessResult Rollout(string snapshot, string check, string summary) => _fleet.Ansible(
    [
        "livegraft.fleet.rollout", "-e", $"livegraft_snapshot={snapshot}", "-e", """{"livegraft_waves": [1, 1, 1]}""",
        "-e", ExtraVars(("livegraft_check_command", check), ("livegraft_summary_file", summary)),
    ]);

    /// <summary>The rollout's kexec path into <paramref name="kernel"/> (the repository snapshot v1 for the
    /// update once a host is back), in <paramref name="waves"/> (Ansible's serial) over <paramref name="hosts"/>; the
    /// reboot gets the command line through livegraft_kexec_options (<see cref="FleetVms.CleanCommandLine"/>).</summary>
    private ProcessResult KexecRollout(string kernel, string check, string summary, string waves = "[1, 1, 1]", string hosts = "livegraft") => _fleet.Ansible(
    [
        "livegraft.fleet.rollout", "-e", "livegraft_snapshot=v1", "-e", $$"""{"livegraft_waves": {{waves}}}""",
        "-e", ExtraVars(("livegraft_method", "kexec"), ("livegraft_kexec_kernel", kernel), ("livegraft_kexec_options", FleetVms.CleanCommandLine), ("livegraft_hosts", hosts),
            ("livegraft_check_command", check), ("livegraft_summary_file", summary)),
    ]);

    /// <summary>An extra-vars JSON object of strings (no reflection: the values are escaped by hand).</summary>
    private static string ExtraVars(params (string Key, string Value)[] pairs) =>
        "{" + string.Join(", ", pairs.Select(p => $"\"{p.Key}\": \"{JsonEncodedText.Encode(p.Value)}\"")) + "}";

    private static Dictionary<string, JsonElement> Summary(string file, ProcessResult run)
    {
        Assert.True(File.Exists(file), $"no summary written; ansible-playbook exited {run.ExitCode}:\n{Tail(run)}");
        return JsonDocument.Parse(File.ReadAllText(file)).RootElement.EnumerateArray().ToDictionary(e => e.GetProperty("host").GetString()!, e => e.Clone());
    }

    private static string Tail(ProcessResult r) => $"{r.Stdout[Math.Max(0, r.Stdout.Length - 12000)..]}\n{r.Stderr}";

    private static string Result(Dictionary<string, JsonElement> summary, string host) => summary[host].GetProperty("result").GetString()!;

    [Fact]
    public void RolloutPatchesEveryHostWhenHealthy()
    {
        var summaryFile = Path.Combine(_fleet.Work, "summary-healthy.json");
        var run = Rollout("v1", "grep -q 'livegraft=01' /proc/cmdline", summaryFile);
        AssertRan(run, success: true, "rollout of v1");
        var summary = Summary(summaryFile, run);
        foreach (var host in FleetVms.Hosts)
        {
            Assert.Equal("patched", Result(summary, host));
            Assert.Equal("01", _fleet.Marker(host));
            var status = _fleet.Status(host);
            Assert.Equal(1, status.GetProperty("repositoryVersion").GetInt32());
            var patch = Assert.Single(status.GetProperty("patches").EnumerateArray());
            Assert.Equal(_fleet.V1, patch.GetProperty("name").GetString());
            var origin = patch.GetProperty("repository");
            Assert.Equal(["cmdline_proc_show"], origin.GetProperty("fixes").GetProperty("functions").EnumerateArray().Select(f => f.GetString()));
            Assert.Equal(["CVE-2099-0001"], origin.GetProperty("fixes").GetProperty("cves").EnumerateArray().Select(f => f.GetString()));
            Assert.Equal("updated", status.GetProperty("lastUpdate").GetProperty("action").GetString());
            Assert.Contains(_fleet.V1, _fleet[host].RunChecked("ls /var/lib/livegraft/6.1.0-56-amd64/"), StringComparison.Ordinal);
        }
        // web3 followed the same repository over HTTP from its own loopback.
        Assert.StartsWith("http://127.0.0.1:8080/", _fleet.Status("web3").GetProperty("lastUpdate").GetProperty("source").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void RolloutStopsAtTheFailingWaveRollsItBackAndLeavesLaterWavesUntouched()
    {
        // Every host at v1 first (directly, not through Ansible), then v2 rolled out with web2 unhealthy.
        _fleet.OnAll("livegraft update --repo /mnt/repo/v1 >/dev/null 2>&1");
        var web3Before = _fleet.Status("web3").GetProperty("lastUpdate").GetProperty("time").GetString();
        _fleet["web2"].RunChecked("touch /run/lg-unhealthy");
        var summaryFile = Path.Combine(_fleet.Work, "summary-failing.json");
        var run = Rollout("v2", "grep -q 'livegraft=02' /proc/cmdline && test ! -e /run/lg-unhealthy", summaryFile);
        AssertRan(run, success: false, "rollout of v2 with web2 unhealthy");
        var summary = Summary(summaryFile, run);

        Assert.Equal("patched", Result(summary, "web1"));
        Assert.Equal("02", _fleet.Marker("web1"));

        Assert.StartsWith("failed", Result(summary, "web2"), StringComparison.Ordinal);
        Assert.Contains("check command exited 1", summary["web2"].GetProperty("problem").GetString(), StringComparison.Ordinal);
        Assert.Equal("01", _fleet.Marker("web2"));
        var web2 = _fleet.Status("web2");
        Assert.Equal(1, web2.GetProperty("repositoryVersion").GetInt32());
        Assert.Equal([_fleet.V1], web2.GetProperty("patches").EnumerateArray().Select(p => p.GetProperty("name").GetString()));
        Assert.Equal("rolled-back", web2.GetProperty("lastRollback").GetProperty("action").GetString());
        var stored = _fleet["web2"].RunChecked("ls /var/lib/livegraft/6.1.0-56-amd64/");
        Assert.Contains(_fleet.V1, stored, StringComparison.Ordinal);
        Assert.DoesNotContain(_fleet.V2, stored, StringComparison.Ordinal);

        Assert.Equal("untouched", Result(summary, "web3"));
        Assert.Equal("01", _fleet.Marker("web3"));
        Assert.Equal(web3Before, _fleet.Status("web3").GetProperty("lastUpdate").GetProperty("time").GetString());
        Assert.Contains("the rollout stopped: web2", run.Stdout, StringComparison.Ordinal);

        // The rollback playbook takes the canary back to v1 too.
        var back = _fleet.Ansible(["livegraft.fleet.rollback", "-e", "livegraft_hosts=web1"]);
        AssertRan(back, success: true, "rollback playbook on web1");
        Assert.Equal("01", _fleet.Marker("web1"));
        Assert.Equal(1, _fleet.Status("web1").GetProperty("repositoryVersion").GetInt32());
    }

    /// <summary>A module on web1 through ad-hoc Ansible: ansible's exit code and the module's result as the
    /// tree callback saves it (without the "failed" key, which Ansible keeps for itself).</summary>
    private (int Exit, JsonElement Result) Module(string module, string args)
    {
        var tree = Path.Combine(_fleet.Work, "tree");
        if (Directory.Exists(tree))
            Directory.Delete(tree, recursive: true);
        var r = _fleet.Ansible(["web1", "-m", module, "-a", args, "--tree", tree], adHoc: true);
        var result = Path.Combine(tree, "web1");
        Assert.True(File.Exists(result), $"ansible -m {module} saved no result (exit {r.ExitCode}):\n{Tail(r)}");
        return (r.ExitCode, JsonDocument.Parse(File.ReadAllText(result)).RootElement.Clone());
    }

    [Fact]
    public void TamperedPatchAndUntrustedIndexAreRefusedWithNothingLoaded()
    {
        var web1 = _fleet["web1"];
        web1.RunChecked("livegraft update --repo /mnt/repo/v1 >/dev/null 2>&1");
        var modulesBefore = web1.RunChecked("cut -d' ' -f1 /proc/modules | sort");

        foreach (var (snapshot, id) in new[] { ("tampered", FleetErrors.HashMismatch), ("untrusted", FleetErrors.UntrustedKey) })
        {
            var (exit, result) = Module("livegraft.fleet.livepatch", $"state=updated repo=/mnt/repo/{snapshot}");
            Assert.True(exit == 2, $"{snapshot}: ansible exited {exit}, expected 2 (a failed host): {result}");
            Assert.Equal(4, result.GetProperty("rc").GetInt32());
            Assert.Equal(id, result.GetProperty("diagnostic").GetString());
            Assert.False(result.GetProperty("changed").GetBoolean());
            Assert.Equal(1, result.GetProperty("status").GetProperty("repositoryVersion").GetInt32());
            Assert.Equal("failed", result.GetProperty("status").GetProperty("lastUpdate").GetProperty("action").GetString());
            // The patch in force is as it was; v2 reached neither the kernel nor the cache nor the store.
            Assert.Equal("01", _fleet.Marker("web1"));
            Assert.Equal(modulesBefore, web1.RunChecked("cut -d' ' -f1 /proc/modules | sort"));
            Assert.Equal("", web1.RunChecked($"ls /var/cache/livegraft/*/ /var/lib/livegraft/*/ | grep {_fleet.V2} || true").Trim());
        }

        // The tampered module loaded or installed by hand: refused by its signature before the kernel sees it.
        var tampered = web1.RunChecked($"ls /mnt/repo/tampered/patches/*/*/{_fleet.V2}.ko").Trim();
        foreach (var verb in new[] { "load", "install" })
        {
            var r = web1.Run($"livegraft {verb} {tampered} --json 2>/dev/null");
            Assert.Equal(4, r.ExitCode);
            Assert.Equal(FleetErrors.BadSignature, JsonDocument.Parse(r.Output).RootElement.GetProperty("diagnostics")[0].GetProperty("id").GetString());
        }
        var unsigned = web1.Run($"cp {tampered.Replace("tampered", "v2", StringComparison.Ordinal)} /tmp/unsigned.ko && livegraft load /tmp/unsigned.ko --json 2>/dev/null");
        Assert.Equal(4, unsigned.ExitCode);
        Assert.Equal(FleetErrors.Unsigned, JsonDocument.Parse(unsigned.Output).RootElement.GetProperty("diagnostics")[0].GetProperty("id").GetString());
        Assert.Equal(modulesBefore, web1.RunChecked("cut -d' ' -f1 /proc/modules | sort"));
        Assert.Equal("01", _fleet.Marker("web1"));
    }

    [Fact]
    public void HealthCheckSeesNewKernelWarningsAndTaint()
    {
        var web1 = _fleet["web1"];
        web1.RunChecked("livegraft update --repo /mnt/repo/v1 >/dev/null 2>&1");
        var (_, baseline) = Module("livegraft.fleet.livepatch_info", "");
        Assert.True(baseline.GetProperty("healthy").GetBoolean(), baseline.ToString());
        var mark = baseline.GetProperty("mark").GetString();
        var (_, healthy) = Module("livegraft.fleet.livepatch_info", $"since={mark} expect={_fleet.V1}");
        Assert.True(healthy.GetProperty("healthy").GetBoolean(), healthy.ToString());

        web1.RunChecked("echo 'WARNING: CPU: 0 PID: 1 at lib/fleet-test.c:1 injected by FleetVmTests' > /dev/kmsg; echo 64 > /proc/sys/kernel/tainted");
        var (exit, sick) = Module("livegraft.fleet.livepatch_info", $"since={mark} expect={_fleet.V1},livepatch_absent");
        Assert.Equal(0, exit); // an info module reports; the rollout decides
        Assert.False(sick.GetProperty("healthy").GetBoolean());
        var failed = sick.GetProperty("health").GetProperty("checks").EnumerateArray().Where(c => !c.GetProperty("ok").GetBoolean())
            .Select(c => c.GetProperty("name").GetString()).ToList();
        Assert.Equal(["in-force", "kernel-log", "taint"], failed);
        var ids = sick.GetProperty("health").GetProperty("diagnostics").EnumerateArray().Select(d => d.GetProperty("id").GetString()).ToList();
        Assert.Equal([FleetErrors.NotInForce, FleetErrors.KernelLogError, FleetErrors.NewTaint], ids);
        Assert.Contains("injected by FleetVmTests", sick.GetProperty("problems").ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void ModuleStatesLoadedInstalledAndAbsent()
    {
        var web1 = _fleet["web1"];
        string Stored() => web1.RunChecked("ls /var/lib/livegraft/6.1.0-56-amd64/ 2>/dev/null | grep '\\.ko$' || true").Trim();
        (int Exit, JsonElement Result) Apply(string args)
        {
            var r = Module("livegraft.fleet.livepatch", args);
            Assert.True(r.Exit == 0, $"{args}: ansible exited {r.Exit}: {r.Result}");
            return r;
        }

        var loaded = Apply("state=loaded repo=/mnt/repo/v1");
        Assert.True(loaded.Result.GetProperty("changed").GetBoolean());
        Assert.Equal("01", _fleet.Marker("web1"));
        Assert.Equal("", Stored()); // loaded only, not kept for boot

        // installed without a pin keeps the repository patch in force (no upgrade) ...
        Assert.False(Apply("state=installed repo=/mnt/repo/v2").Result.GetProperty("changed").GetBoolean());
        Assert.Equal("01", _fleet.Marker("web1"));
        // ... and with one it moves there, in force and stored.
        Assert.True(Apply("state=installed repo=/mnt/repo/v2 version=2").Result.GetProperty("changed").GetBoolean());
        Assert.Equal("02", _fleet.Marker("web1"));
        Assert.Contains(_fleet.V2, Stored(), StringComparison.Ordinal);

        var absent = Apply("state=absent");
        Assert.True(absent.Result.GetProperty("changed").GetBoolean());
        Assert.Equal("", _fleet.Marker("web1"));
        Assert.Equal("", Stored());
        Assert.Equal("none", absent.Result.GetProperty("status").GetProperty("verdict").GetString());
        Assert.False(Apply("state=absent").Result.GetProperty("changed").GetBoolean());
    }

    [Fact]
    public void KexecRolloutRebootsTheFleetIntoTheNewKernelWaveByWave()
    {
        var left = FleetVms.Hosts.ToDictionary(h => h, _fleet.Boot);
        Assert.All(left.Values, b => Assert.Equal(KernelTarget.ReferenceRelease, b.Release));

        // A kernel that is not installed: the canary's dry run fails with the diagnostic id, nothing reboots,
        // and the rollout stops before the other hosts.
        var missingFile = Path.Combine(_fleet.Work, "summary-kexec-missing.json");
        var missing = KexecRollout("6.1.0-99-amd64", "", missingFile);
        AssertRan(missing, success: false, "kexec rollout into a kernel that is not installed");
        var refused = Summary(missingFile, missing);
        Assert.Equal("failed", Result(refused, "web1"));
        Assert.StartsWith("LG0640: ", refused["web1"].GetProperty("problem").GetString(), StringComparison.Ordinal);
        Assert.Equal(("untouched", "untouched"), (Result(refused, "web2"), Result(refused, "web3")));
        Assert.All(FleetVms.Hosts, h => Assert.Equal(left[h], _fleet.Boot(h)));

        // The canary, then the two others together; each wave is checked (the operator's check included)
        // before the next one reboots.
        var summaryFile = Path.Combine(_fleet.Work, "summary-kexec.json");
        var run = KexecRollout(FleetVms.NewRelease, $"test \"$(uname -r)\" = {FleetVms.NewRelease}", summaryFile, waves: """[1, "100%"]""");
        AssertRan(run, success: true, "kexec rollout into " + FleetVms.NewRelease);
        var summary = Summary(summaryFile, run);
        foreach (var host in FleetVms.Hosts)
        {
            Assert.Equal("rebooted", Result(summary, host));
            Assert.StartsWith(FleetVms.NewRelease, summary[host].GetProperty("after").GetString(), StringComparison.Ordinal);
            var (release, bootId) = _fleet.Boot(host);
            Assert.Equal(FleetVms.NewRelease, release);
            Assert.NotEqual(left[host].BootId, bootId);
            var status = _fleet.Status(host);
            var last = status.GetProperty("kexec").GetProperty("lastReboot");
            Assert.Equal((KernelTarget.ReferenceRelease, FleetVms.NewRelease, left[host].BootId, true),
                (last.GetProperty("fromRelease").GetString(), last.GetProperty("toRelease").GetString(), last.GetProperty("fromBootId").GetString(), last.GetProperty("arrived").GetBoolean()));
            Assert.Empty(status.GetProperty("bootSafety").GetProperty("quarantined").EnumerateArray());
            // Back on the new kernel, the host asked the repository for its patches: there are none for it yet.
            Assert.Equal("no-patch", status.GetProperty("lastUpdate").GetProperty("action").GetString());
        }
        // Wave by wave: web1 was back (and checked) before the second wave's reboots were started.
        var web1Back = WaveTaskIndex(run, "wait for the host to come back", "web1");
        Assert.True(web1Back < WaveTaskIndex(run, "reboot into", "web2") && web1Back < WaveTaskIndex(run, "reboot into", "web3"), Tail(run));

        // A second run finds every host on the new kernel already: nothing reboots.
        var againFile = Path.Combine(_fleet.Work, "summary-kexec-again.json");
        var again = KexecRollout(FleetVms.NewRelease, "", againFile, waves: """["100%"]""");
        AssertRan(again, success: true, "kexec rollout again");
        var unchanged = Summary(againFile, again);
        foreach (var host in FleetVms.Hosts)
        {
            Assert.Equal("unchanged", Result(unchanged, host));
            Assert.Equal(summary[host].GetProperty("after").GetString(), unchanged[host].GetProperty("after").GetString());
        }
    }

    [Fact]
    public void KexecRolloutStopsAtTheFailingWaveAndLeavesTheThirdHostOnTheOldKernel()
    {
        // Every host runs v1, installed for the reference kernel; web2 fails the operator's check.
        _fleet.OnAll("livegraft update --repo /mnt/repo/v1 >/dev/null 2>&1");
        var left = FleetVms.Hosts.ToDictionary(h => h, _fleet.Boot);
        var summaryFile = Path.Combine(_fleet.Work, "summary-kexec-failing.json");
        var run = KexecRollout(FleetVms.NewRelease, $"test \"$(uname -r)\" = {FleetVms.NewRelease} && [ \"$(hostname)\" != web2 ]", summaryFile);
        AssertRan(run, success: false, "kexec rollout with web2 failing its check");
        var summary = Summary(summaryFile, run);

        Assert.Equal("rebooted", Result(summary, "web1"));
        Assert.Equal(FleetVms.NewRelease, _fleet.Boot("web1").Release);

        // web2 rebooted and failed its check: reported, not rolled back, with the way back.
        Assert.Equal("failed, not rolled back", Result(summary, "web2"));
        Assert.Contains("check command exited 1", summary["web2"].GetProperty("problem").GetString(), StringComparison.Ordinal);
        Assert.Equal($"livegraft reboot --kexec --kernel {KernelTarget.ReferenceRelease}", summary["web2"].GetProperty("rollback").GetString());
        var web2 = _fleet.Boot("web2");
        Assert.Equal(FleetVms.NewRelease, web2.Release);
        Assert.NotEqual(left["web2"].BootId, web2.BootId);
        Assert.Contains("the rollout stopped: web2", run.Stdout, StringComparison.Ordinal);
        Assert.Contains("A kexec reboot is not rolled back", run.Stdout, StringComparison.Ordinal);

        // web3 was never touched: the same boot of the old kernel, v1 still in force.
        Assert.Equal("untouched", Result(summary, "web3"));
        Assert.Equal(left["web3"], _fleet.Boot("web3"));
        Assert.Equal("01", _fleet.Marker("web3"));

        // The way back is the same path: a kexec rollout into the old kernel, which is still installed, for
        // the two hosts at once. Their boot loads v1 from the store again, and the health check expects it
        // in force (list --json's atBoot) and waits for boot safety to confirm it.
        var backFile = Path.Combine(_fleet.Work, "summary-kexec-back.json");
        var back = KexecRollout(KernelTarget.ReferenceRelease, $"test \"$(uname -r)\" = {KernelTarget.ReferenceRelease} && grep -q ' livegraft=01$' /proc/cmdline", backFile, waves: """["100%"]""", hosts: "web1:web2");
        AssertRan(back, success: true, "kexec rollout back to " + KernelTarget.ReferenceRelease);
        var backSummary = Summary(backFile, back);
        foreach (var host in new[] { "web1", "web2" })
        {
            Assert.Equal("rebooted", Result(backSummary, host));
            Assert.Equal(KernelTarget.ReferenceRelease, _fleet.Boot(host).Release);
            Assert.Equal("01", _fleet.Marker(host));
            var status = _fleet.Status(host);
            Assert.Equal([_fleet.V1], status.GetProperty("patches").EnumerateArray().Select(p => p.GetProperty("name").GetString()));
            Assert.Empty(status.GetProperty("bootSafety").GetProperty("pending").EnumerateArray());
            Assert.Equal([_fleet.V1], backSummary[host].GetProperty("expected").EnumerateArray().Select(e => e.GetString()));
        }
    }

    /// <summary>Where ansible-playbook's output reports <paramref name="host"/> for the task whose name contains <paramref name="task"/>.</summary>
    private static int WaveTaskIndex(ProcessResult run, string task, string host)
    {
        var t = run.Stdout.IndexOf(task, StringComparison.Ordinal);
        while (t >= 0)
        {
            var next = run.Stdout.IndexOf("TASK [", t, StringComparison.Ordinal);
            var h = run.Stdout.IndexOf($"[{host}]", t, StringComparison.Ordinal);
            if (h >= 0 && (next < 0 || h < next))
                return h;
            t = run.Stdout.IndexOf(task, t + task.Length, StringComparison.Ordinal);
        }
        Assert.Fail($"no '{task}' result for {host} in the output:\n{Tail(run)}");
        return -1;
    }
}
