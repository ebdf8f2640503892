using System.Security.Cryptography;
using System.Text;
using Livegraft.Host.Repository;

namespace Livegraft.Host.Tests;

/// <summary>
/// The signed repository without a kernel: the managed P-256 verifier against .NET's own ECDSA,
/// signature refusals, publishing rules, and the refusals of update, load and install that happen
/// before anything could reach a kernel (over a temporary host tree). The VM half is FleetVmTests.
/// </summary>
public sealed class RepositoryTests
{
    // What Fixtures/lg-sample.c records as its kernel build id; the other fixtures record none.
    private const string BuildId = "00112233445566778899aabbccddeeff00112233";

    [Fact]
    public void ManagedVerifierAgreesWithDotNetEcdsa()
    {
        var rng = new Random(12);
        for (var i = 0; i < 40; i++)
        {
            using var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var key = PublicKey.FromDer(ecdsa.ExportSubjectPublicKeyInfo());
            var message = new byte[rng.Next(0, 300)];
            rng.NextBytes(message);
            var sig = ecdsa.SignData(message, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
            var digest = SHA256.HashData(message);
            Assert.True(key.Verify(digest, sig), $"case {i}: a valid signature was rejected");

            var bad = (byte[])sig.Clone();
            bad[rng.Next(64)] ^= (byte)(1 << rng.Next(8));
            Assert.Equal(ecdsa.VerifyHash(digest, bad, DSASignatureFormat.IeeeP1363FixedFieldConcatenation), key.Verify(digest, bad));
            var otherDigest = (byte[])digest.Clone();
            otherDigest[rng.Next(32)] ^= 1;
            Assert.False(key.Verify(otherDigest, sig), $"case {i}: a signature verified for another message");
        }
    }

    [Fact]
    public void VerifierRejectsOutOfRangeSignaturesAndOffCurveKeys()
    {
        using var key = SigningKey.Generate();
        var digest = SHA256.HashData("x"u8);
        var sig = key.Sign("x"u8);
        Assert.True(key.Public.Verify(digest, sig));
        var zeroR = (byte[])sig.Clone();
        Array.Clear(zeroR, 0, 32);
        Assert.False(key.Public.Verify(digest, zeroR));
        var bigS = (byte[])sig.Clone();
        Array.Fill(bigS, (byte)0xff, 32, 32); // s ≥ n
        Assert.False(key.Public.Verify(digest, bigS));
        Assert.False(key.Public.Verify(digest, sig.AsSpan(0, 63)));

        var der = (byte[])key.Public.Der.Clone();
        der[^1] ^= 1; // y no longer on the curve
        Assert.Equal(FleetErrors.BadKey, Assert.Throws<LivegraftException>(() => PublicKey.FromDer(der)).Diagnostics[0].Id);
        Assert.Equal(FleetErrors.BadKey, Assert.Throws<LivegraftException>(() => PublicKey.FromPem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")).Diagnostics[0].Id);
    }

    [Fact]
    public void DetachedSignaturesNameWhatFailed()
    {
        using var signer = SigningKey.Generate();
        using var stranger = SigningKey.Generate();
        var data = Encoding.ASCII.GetBytes("a live patch");
        var text = DetachedSignature.Create(signer, data).ToText();
        var trust = TrustStore.Of("/etc/livegraft/keys", signer.Public);
        Assert.Equal(signer.Public.Id, trust.Verify(data, text, "p.ko").Id);

        string Id(Action a) => Assert.Throws<LivegraftException>(a).Diagnostics[0].Id;
        Assert.Equal(FleetErrors.Unsigned, Id(() => trust.Verify(data, null, "p.ko")));
        Assert.Equal(FleetErrors.Unsigned, Id(() => trust.Verify(data, "not a signature\n", "p.ko")));
        Assert.Equal(FleetErrors.UntrustedKey, Id(() => trust.Verify(data, DetachedSignature.Create(stranger, data).ToText(), "p.ko")));
        var tampered = (byte[])data.Clone();
        tampered[0] ^= 1;
        Assert.Equal(FleetErrors.BadSignature, Id(() => trust.Verify(tampered, text, "p.ko")));
        // The hash line rewritten to match the tampered file: the ECDSA check still refuses it.
        var forged = text.Replace(Sha256Hash.HashHex(data), Sha256Hash.HashHex(tampered), StringComparison.Ordinal);
        Assert.Equal(FleetErrors.BadSignature, Id(() => trust.Verify(tampered, forged, "p.ko")));
    }

    [Fact]
    public void PublishingKeepsVersionsAndNamesApartAndSignsTheIndex()
    {
        var modules = BuiltModules.Get();
        using var tree = new TempTree();
        var (keyFile, pubFile, keyId) = PatchRepository.GenerateKey(Path.Combine(tree.Root, "fleet"));
        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));
        var repo = Path.Combine(tree.Root, "repo");
        PatchRepository.Init(repo, keyFile, "test");
        Assert.Equal(FleetErrors.RepositoryExists, Assert.Throws<LivegraftException>(() => PatchRepository.Init(repo, keyFile)).Diagnostics[0].Id);

        PublishRequest Request(string ko) => new(modules[ko], keyFile) { KernelBuildId = BuildId, Cves = ["CVE-2024-0001"], Notes = ["n"], Functions = ["cmdline_proc_show"] };
        var v1 = PatchRepository.Add(repo, Request("lg-sample.ko"));
        Assert.Equal(1, v1.Version);
        Assert.Equal(FleetErrors.AddRefused, Assert.Throws<LivegraftException>(() => PatchRepository.Add(repo, Request("lg-sample.ko"))).Diagnostics[0].Id);
        Assert.Equal(FleetErrors.AddRefused, Assert.Throws<LivegraftException>(() => PatchRepository.Add(repo, Request("lg-replace.ko") with { Version = 1 })).Diagnostics[0].Id);
        Assert.Equal(FleetErrors.BadPublishInput, Assert.Throws<LivegraftException>(() => PatchRepository.Add(repo, Request("lg-replace.ko") with { Cves = ["2024-1"] })).Diagnostics[0].Id);
        var v2 = PatchRepository.Add(repo, Request("lg-replace.ko"));
        var v3 = PatchRepository.Add(repo, Request("lg-second.ko") with { Cumulative = false });
        Assert.Equal((2, 3), (v2.Version, v3.Version));

        var listing = PatchRepository.List(repo);
        Assert.True(listing.SignatureValid, string.Join("; ", listing.Diagnostics));
        Assert.Equal(keyId, listing.SignedBy);
        Assert.Equal(4, listing.Index.Serial);
        var index = listing.Index;
        Assert.Equal(["lg_replace", "lg_second"], index.Chain(v3).Select(p => p.Name));
        Assert.Equal(["lg_replace"], index.Chain(v2).Select(p => p.Name));
        Assert.Equal(["CVE-2024-0001"], index.Patches[0].Fixes.Cves);

        // Another key cannot publish into it, and a changed index no longer verifies.
        var (otherKey, _, _) = PatchRepository.GenerateKey(Path.Combine(tree.Root, "other"));
        Assert.Equal(FleetErrors.NotARepository, Assert.Throws<LivegraftException>(() => PatchRepository.Add(repo, Request("lg-buildid.ko") with { KeyPath = otherKey })).Diagnostics[0].Id);
        File.AppendAllText(Path.Combine(repo, PatchIndex.FileName), " ");
        var changed = PatchRepository.List(repo);
        Assert.False(changed.SignatureValid);
        Assert.Equal(FleetErrors.BadSignature, changed.Diagnostics[0].Id);
        Assert.True(File.Exists(pubFile));
    }

    [Fact]
    public void IndexRejectsPathsOutsideTheRepository()
    {
        using var key = SigningKey.Generate();
        var entry = new IndexedPatch("p", 1, "6.1.0-56-amd64", BuildId, "../etc/passwd", new string('0', 64), 1, true, DateTimeOffset.UnixEpoch, PatchFixes.None);
        var json = new PatchIndex("r", "t", 1, DateTimeOffset.UnixEpoch, [entry]).ToJson();
        Assert.Equal(FleetErrors.BadIndex, Assert.Throws<LivegraftException>(() => PatchIndex.Parse(Encoding.UTF8.GetBytes(json), "index.json")).Diagnostics[0].Id);
        Assert.Equal(FleetErrors.BadIndex, Assert.Throws<LivegraftException>(() => PatchIndex.Parse("{\"format\": \"other/9\"}"u8, "index.json")).Diagnostics[0].Id);
    }

    [Fact]
    public void HealthMarksRoundTrip()
    {
        var mark = HealthMark.Parse("12.345678:45056");
        Assert.Equal(new HealthMark(12.345678m, 45056), mark);
        Assert.Equal("12.345678:45056", mark.ToString());
        Assert.Equal(FleetErrors.BadMark, Assert.Throws<LivegraftException>(() => HealthMark.Parse("yesterday")).Diagnostics[0].Id);
    }

    /// <summary>A fake host (procfs release, sysfs build id note, a trusted key) and a repository with one patch.</summary>
    private sealed class FakeHost : IDisposable
    {
        public FakeHost(bool trustKey = true)
        {
            Tree = VerifyAndStoreTests.Host(BuiltModules.Release, BuildId);
            Tree.Write("proc/modules", "");
            (KeyFile, var pub, _) = PatchRepository.GenerateKey(Path.Combine(Tree.Root, "fleet"));
            if (trustKey)
                Tree.Write("keys/fleet.pem", File.ReadAllText(pub));
            Repo = Path.Combine(Tree.Root, "repo");
            PatchRepository.Init(Repo, KeyFile);
            Patch = PatchRepository.Add(Repo, new PublishRequest(BuiltModules.Get()["lg-sample.ko"], KeyFile) { KernelBuildId = BuildId, Functions = [] });
        }

        public TempTree Tree { get; }

        public string KeyFile { get; }

        public string Repo { get; }

        public IndexedPatch Patch { get; }

        public HostPaths Paths => Tree.Paths with { Keys = Path.Combine(Tree.Root, "keys"), Cache = Path.Combine(Tree.Root, "cache") };

        public PatchUpdater Updater => new(Paths);

        public string Refusal(UpdateRequest request) => Assert.Throws<LivegraftException>(() => Updater.Update(request)).Diagnostics[0].Id;

        /// <summary>Nothing reached the cache, the store or the kernel side, and the failure was recorded.</summary>
        public void AssertNothingChanged(string expectedId)
        {
            Assert.False(Directory.Exists(Paths.Cache) && Directory.EnumerateFiles(Paths.Cache, "*.ko", SearchOption.AllDirectories).Any(), "a refused patch reached the cache");
            Assert.Empty(new PatchStore(Paths).List());
            var record = UpdateRecord.Read(Paths, out var warning);
            Assert.Null(warning);
            Assert.Equal("failed", record.LastCheck?.Action);
            Assert.Equal(expectedId, record.LastCheck!.Diagnostics[0].Id);
        }

        public void Dispose() => Tree.Dispose();
    }

    [Fact]
    public void UpdateRefusesWithoutTrustedKeys()
    {
        using var host = new FakeHost(trustKey: false);
        Assert.Equal(FleetErrors.NoTrustedKeys, host.Refusal(new UpdateRequest(host.Repo)));
        host.AssertNothingChanged(FleetErrors.NoTrustedKeys);
    }

    [Fact]
    public void UpdateRefusesATamperedPatchBeforeItReachesTheCache()
    {
        using var host = new FakeHost();
        var file = Path.Combine(host.Repo, host.Patch.File);
        var bytes = File.ReadAllBytes(file);
        bytes[bytes.Length / 2] ^= 0x01;
        File.WriteAllBytes(file, bytes);
        Assert.Equal(FleetErrors.HashMismatch, host.Refusal(new UpdateRequest(host.Repo)));
        host.AssertNothingChanged(FleetErrors.HashMismatch);
    }

    [Fact]
    public void UpdateRefusesAnIndexSignedByAnotherKeyAndAnOlderSerial()
    {
        using var host = new FakeHost();
        var index = Path.Combine(host.Repo, PatchIndex.FileName);
        var good = File.ReadAllBytes(index);
        var goodSig = File.ReadAllText(index + DetachedSignature.Suffix);
        using (var stranger = SigningKey.Generate())
            File.WriteAllText(index + DetachedSignature.Suffix, DetachedSignature.Create(stranger, good).ToText());
        Assert.Equal(FleetErrors.UntrustedKey, host.Refusal(new UpdateRequest(host.Repo)));
        host.AssertNothingChanged(FleetErrors.UntrustedKey);

        File.Delete(index + DetachedSignature.Suffix);
        Assert.Equal(FleetErrors.Unsigned, host.Refusal(new UpdateRequest(host.Repo)));

        // Having seen a newer serial, the host refuses the older (genuinely signed) index.
        File.WriteAllText(index + DetachedSignature.Suffix, goodSig);
        var repository = PatchIndex.Parse(good, index).Repository;
        (UpdateRecord.Read(host.Paths, out _) with { Serials = new Dictionary<string, long> { [repository] = 99 } }).Write(host.Paths);
        Assert.Equal(FleetErrors.StaleIndex, host.Refusal(new UpdateRequest(host.Repo)));
    }

    [Fact]
    public void UpdateNamesAVersionThatIsNotPublished()
    {
        using var host = new FakeHost();
        Assert.Equal(FleetErrors.NoSuchVersion, host.Refusal(new UpdateRequest(host.Repo) { Version = 7 }));
    }

    [Fact]
    public void LoadAndInstallRefuseUnsignedAndTamperedModulesWhenAKeyIsTrusted()
    {
        using var host = new FakeHost();
        var manager = new LivepatchManager(host.Paths);
        var store = new PatchStore(host.Paths) { RequireRoot = false };
        string Id(Action a) => Assert.Throws<LivegraftException>(a).Diagnostics[0].Id;

        var unsigned = host.Tree.Write("unsigned.ko", File.ReadAllBytes(BuiltModules.Get()["lg-sample.ko"]));
        Assert.Equal(FleetErrors.Unsigned, Id(() => manager.Load(unsigned, new TransitionOptions())));
        Assert.Equal(FleetErrors.Unsigned, Id(() => store.Install(unsigned)));

        var published = Path.Combine(host.Repo, host.Patch.File);
        var tampered = host.Tree.Write("tampered.ko", File.ReadAllBytes(published));
        File.Copy(published + DetachedSignature.Suffix, tampered + DetachedSignature.Suffix);
        using (var f = new FileStream(tampered, FileMode.Open))
        {
            f.Position = 100;
            var b = f.ReadByte();
            f.Position = 100;
            f.WriteByte((byte)(b ^ 0xff));
        }
        Assert.Equal(FleetErrors.BadSignature, Id(() => manager.Load(tampered, new TransitionOptions())));
        Assert.Equal(FleetErrors.BadSignature, Id(() => store.Install(tampered)));
        Assert.Empty(store.List());

        // The genuine file passes the signature check and goes on to the kernel checks (here: the fake
        // host's empty sysfs), and install keeps its signature beside the stored copy.
        var installed = store.Install(published);
        Assert.True(File.Exists(installed.Path + DetachedSignature.Suffix));
    }
}
