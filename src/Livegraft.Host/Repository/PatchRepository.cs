using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace Livegraft.Host.Repository;

/// <summary>What <c>repo add</c> publishes, beyond the module itself.</summary>
/// <param name="ModulePath">The livepatch module.</param>
/// <param name="KeyPath">The repository's private signing key (PEM).</param>
public sealed record PublishRequest(string ModulePath, string KeyPath)
{
    /// <summary>Version for its kernel; default: one more than the newest published.</summary>
    public int? Version { get; init; }

    /// <summary>CVE ids it fixes.</summary>
    public IReadOnlyList<string> Cves { get; init; } = [];

    /// <summary>Free-text notes.</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];

    /// <summary>Functions it fixes; default: those its verification table says it replaces.</summary>
    public IReadOnlyList<string>? Functions { get; init; }

    /// <summary>The kernel's GNU build id; default: recorded in the module, else read from the kernel image.</summary>
    public string? KernelBuildId { get; init; }

    /// <summary>Declares the module a stacking (non-replace) patch when it does not record that itself.</summary>
    public bool? Cumulative { get; init; }

    /// <summary>Reads a release's kernel build id from its image (build side; the CLI wires the Kernel library's reader).</summary>
    public Func<string, string?>? KernelBuildIdOf { get; init; }

    /// <summary>Reads the functions a module replaces (build side; the CLI wires the verification table reader).</summary>
    public Func<string, IReadOnlyList<string>>? PatchedFunctionsOf { get; init; }

    /// <summary>Progress lines.</summary>
    public Action<string>? Progress { get; init; }
}

/// <summary>A repository as <c>repo list</c> shows it.</summary>
/// <param name="Location">Path or URL.</param>
/// <param name="Index">The index.</param>
/// <param name="SignedBy">Id of the key that signed it.</param>
/// <param name="SignatureValid">True when the signature verifies under the repository's own <c>key.pem</c>.</param>
/// <param name="Diagnostics">Why it does not, if so.</param>
public sealed record RepositoryListing(string Location, PatchIndex Index, string? SignedBy, bool SignatureValid, IReadOnlyList<Diagnostic> Diagnostics);

/// <summary>
/// The build side of a patch repository (docs/fleet.md): a directory that any static web server can
/// serve as it is, holding <c>index.json</c> and <c>index.json.sig</c>, the repository's public key
/// <c>key.pem</c>, and <c>patches/&lt;release&gt;/&lt;build id&gt;/&lt;name&gt;.ko</c> each with its <c>.sig</c>.
/// Every file is written to a temporary name and renamed, the index last.
/// </summary>
public static class PatchRepository
{
    /// <summary>The repository's public key, for operators to copy into <c>/etc/livegraft/keys/</c>.</summary>
    public const string PublicKeyFile = "key.pem";

    private static readonly Regex CveId = new(@"^CVE-\d{4}-\d{4,}$", RegexOptions.CultureInvariant);

    /// <summary>Writes a new key pair: <c>NAME.key</c> (private, mode 0600) and <c>NAME.pem</c> (public).</summary>
    public static (string PrivateKey, string PublicKey, string KeyId) GenerateKey(string stem)
    {
        var priv = stem + ".key";
        var pub = stem + ".pem";
        foreach (var f in new[] { priv, pub })
        {
            if (File.Exists(f))
                throw new LivegraftException(ExitCode.InvalidInput, FleetErrors.KeyExists, "already exists; not overwriting a key", f);
        }
        using var key = SigningKey.Generate();
        var dir = Path.GetDirectoryName(Path.GetFullPath(priv))!;
        Directory.CreateDirectory(dir);
        HostFiles.WriteAtomic(priv, Encoding.ASCII.GetBytes(key.ToPem()), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        HostFiles.WriteAtomic(pub, Encoding.ASCII.GetBytes(key.Public.ToPem()));
        return (priv, pub, key.Public.Id);
    }

    /// <summary>Creates an empty repository signed by <paramref name="keyPath"/>.</summary>
    public static PatchIndex Init(string directory, string keyPath, string? title = null)
    {
        if (Directory.Exists(directory) && Directory.EnumerateFileSystemEntries(directory).Any())
            throw new LivegraftException(ExitCode.InvalidInput, FleetErrors.RepositoryExists,
                File.Exists(Path.Combine(directory, PatchIndex.FileName)) ? "already a repository" : "the directory is not empty", directory);
        using var key = SigningKey.Read(keyPath);
        Directory.CreateDirectory(directory);
        var index = new PatchIndex(RandomNumberGenerator.GetHexString(16, lowercase: true), title ?? Path.GetFileName(Path.GetFullPath(directory)), 1, Now(), []);
        HostFiles.WriteAtomic(Path.Combine(directory, PublicKeyFile), Encoding.ASCII.GetBytes(key.Public.ToPem()));
        WriteIndex(directory, index, key);
        return index;
    }

    /// <summary>Publishes a module: copies and signs it, adds it to the index with a new serial, re-signs the index.</summary>
    public static IndexedPatch Add(string directory, PublishRequest request)
    {
        using var key = SigningKey.Read(request.KeyPath);
        var index = ReadOwnIndex(directory, key);
        var ko = KernelModuleFile.Read(request.ModulePath);
        if (!ko.HasThisModule || !ko.IsLivepatch)
            throw Refused("not a livepatch module (.modinfo has no livepatch=Y)", request.ModulePath);
        var release = ko.KernelRelease ?? throw Refused("the module has no vermagic; cannot tell which kernel it is for", request.ModulePath);
        if (!Regex.IsMatch(release, "^[A-Za-z0-9._+-]+$", RegexOptions.CultureInvariant))
            throw Refused($"kernel release '{release}' cannot name a directory", request.ModulePath);

        var recordedId = ko.RecordedKernelBuildId;
        var buildId = (request.KernelBuildId ?? recordedId ?? request.KernelBuildIdOf?.Invoke(release))?.ToLowerInvariant()
            ?? throw Refused($"the kernel build id of {release} is unknown: the module records none and no image was read; pass --kernel-build-id", request.ModulePath);
        if (buildId.Length is < 16 or > 128 || !buildId.All(char.IsAsciiHexDigit))
            throw new LivegraftException(ExitCode.InvalidInput, FleetErrors.BadPublishInput, $"kernel build id '{buildId}' is not hex", request.ModulePath);
        if (recordedId is not null && !string.Equals(recordedId, buildId, StringComparison.OrdinalIgnoreCase))
            throw Refused($"the module records kernel build id {recordedId}, not {buildId}", request.ModulePath);

        var cumulative = ko.Replace ?? request.Cumulative ?? true;
        if (ko.Replace is { } recorded && request.Cumulative is { } declared && recorded != declared)
            throw Refused($"the module is {(recorded ? "an atomic-replace (cumulative)" : "a stacking")} patch; it cannot be published as {(declared ? "cumulative" : "stacking")}", request.ModulePath);

        var earlier = index.For(release, buildId);
        if (earlier.FirstOrDefault(p => p.Name == ko.Name) is { } clash)
            throw Refused($"version {clash.Version} for this kernel already has the module name {ko.Name}: a host cannot load a module over one of the same name, " +
                "so each version needs its own (build it with --name NAME-vN)", request.ModulePath);
        var newest = earlier.Count == 0 ? 0 : earlier[^1].Version;
        var version = request.Version ?? newest + 1;
        if (version <= newest)
            throw Refused($"version {version} is not newer than the published version {newest} for {release}", request.ModulePath);
        if (earlier.Count == 0 && !cumulative && version != 1)
            throw Refused("the first version of a stacking patch must be 1: nothing earlier exists to stack on", request.ModulePath);
        foreach (var cve in request.Cves)
        {
            if (!CveId.IsMatch(cve))
                throw new LivegraftException(ExitCode.InvalidInput, FleetErrors.BadPublishInput, $"'{cve}' is not a CVE id (CVE-YYYY-NNNN)");
        }
        if (request.Notes.Any(n => n.Length > 4096))
            throw new LivegraftException(ExitCode.InvalidInput, FleetErrors.BadPublishInput, "a note is longer than 4096 characters");
        var functions = request.Functions ?? request.PatchedFunctionsOf?.Invoke(request.ModulePath) ?? [];

        var bytes = File.ReadAllBytes(request.ModulePath);
        var sha = Sha256Hash.HashHex(bytes);
        if (sha != ko.Sha256)
            throw Refused("the module changed while it was being published", request.ModulePath);
        var relative = $"patches/{release}/{buildId[..Math.Min(16, buildId.Length)]}/{ko.Name}.ko";
        var target = Path.Combine(directory, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        HostFiles.WriteAtomic(target + DetachedSignature.Suffix, Encoding.ASCII.GetBytes(DetachedSignature.Create(key, bytes).ToText()));
        HostFiles.WriteAtomic(target, bytes);
        var entry = new IndexedPatch(ko.Name, version, release, buildId, relative, sha, bytes.LongLength, cumulative, Now(),
            new PatchFixes(functions, request.Cves, request.Notes));
        request.Progress?.Invoke($"published {ko.Name} as version {version} for {release} (build id {buildId[..12]}…), {(cumulative ? "cumulative" : "stacking")}");
        WriteIndex(directory, index with { Serial = index.Serial + 1, Generated = Now(), Patches = [.. index.Patches, entry] }, key);
        return entry;
    }

    /// <summary>Reads a repository (path or URL) and checks its signature against its own <c>key.pem</c>.
    /// Whether a host trusts that key is the host's decision (<see cref="TrustStore"/>).</summary>
    public static RepositoryListing List(string location)
    {
        using var source = RepositorySource.Open(location);
        var bytes = source.Read(PatchIndex.FileName, PatchUpdater.MaxIndexBytes);
        var index = PatchIndex.Parse(bytes, source.Describe(PatchIndex.FileName));
        var sigText = source.TryRead(PatchIndex.FileName + DetachedSignature.Suffix, 4096) is { } s ? Encoding.UTF8.GetString(s) : null;
        var keyBytes = source.TryRead(PublicKeyFile, 4096);
        string? signer = null;
        try
        {
            signer = sigText is null ? null : DetachedSignature.Parse(sigText, source.Describe(PatchIndex.FileName + DetachedSignature.Suffix)).KeyId;
            if (keyBytes is null)
                throw new LivegraftException(ExitCode.VerificationFailed, FleetErrors.UntrustedKey, "the repository has no key.pem to check against", source.Describe(PublicKeyFile));
            var own = PublicKey.FromPem(Encoding.ASCII.GetString(keyBytes), source.Describe(PublicKeyFile));
            TrustStore.Of(source.Describe(PublicKeyFile), own).Verify(bytes, sigText, source.Describe(PatchIndex.FileName));
            return new RepositoryListing(location, index, signer, true, []);
        }
        catch (LivegraftException e)
        {
            return new RepositoryListing(location, index, signer, false, e.Diagnostics);
        }
    }

    /// <summary>The index of a local repository, which must be signed by <paramref name="key"/>.</summary>
    private static PatchIndex ReadOwnIndex(string directory, SigningKey key)
    {
        var path = Path.Combine(directory, PatchIndex.FileName);
        if (!File.Exists(path))
            throw new LivegraftException(ExitCode.InvalidInput, FleetErrors.NotARepository, "not a repository (no index.json; see 'livegraft repo init')", directory);
        var bytes = File.ReadAllBytes(path);
        var sig = TrustStore.ReadSignature(path);
        try
        {
            TrustStore.Of(directory, key.Public).Verify(bytes, sig, path);
        }
        catch (LivegraftException e)
        {
            throw new LivegraftException(ExitCode.InvalidInput, FleetErrors.NotARepository,
                $"the index is not signed by key {key.Public.Id} ({e.Diagnostics[0].Message}); publish with the repository's own key", path);
        }
        return PatchIndex.Parse(bytes, path);
    }

    private static void WriteIndex(string directory, PatchIndex index, SigningKey key)
    {
        var bytes = Encoding.UTF8.GetBytes(index.ToJson());
        var path = Path.Combine(directory, PatchIndex.FileName);
        // Index first, then its signature: a reader in between sees a mismatch and refuses, never an unsigned change.
        HostFiles.WriteAtomic(path, bytes);
        HostFiles.WriteAtomic(path + DetachedSignature.Suffix, Encoding.ASCII.GetBytes(DetachedSignature.Create(key, bytes).ToText()));
    }

    private static DateTimeOffset Now() => DateTimeOffset.UtcNow;

    private static LivegraftException Refused(string why, string file) => new(ExitCode.InvalidInput, FleetErrors.AddRefused, why, file);
}
