using System.Text;

namespace Livegraft.Host.Repository;

/// <summary>
/// A detached signature, <c>FILE.sig</c> beside the file it signs (docs/fleet.md, "Signatures"):
/// <code>
/// livegraft-signature 1
/// key 3f2a9c0d1e2b4a5c
/// sha256 &lt;64 hex digits of the signed file&gt;
/// ecdsa-p256-sha256 &lt;base64 of r ‖ s&gt;
/// </code>
/// The ECDSA signature covers the file's bytes; the <c>sha256</c> line only lets a mismatch say
/// "the file changed" rather than "bad signature".
/// </summary>
/// <param name="KeyId">Id of the signing key (<see cref="PublicKey.Id"/>).</param>
/// <param name="Sha256">SHA-256 of the signed file, lower-case hex.</param>
/// <param name="Signature">P1363 <c>r ‖ s</c>.</param>
public sealed record DetachedSignature(string KeyId, string Sha256, byte[] Signature)
{
    /// <summary>The suffix of signature files.</summary>
    public const string Suffix = ".sig";

    private const string Magic = "livegraft-signature 1";

    /// <summary>Signs <paramref name="data"/>.</summary>
    public static DetachedSignature Create(SigningKey key, ReadOnlySpan<byte> data) =>
        new(key.Public.Id, Sha256Hash.HashHex(data), key.Sign(data));

    /// <summary>The file's text.</summary>
    public string ToText() =>
        $"{Magic}\nkey {KeyId}\nsha256 {Sha256}\necdsa-p256-sha256 {Convert.ToBase64String(Signature)}\n";

    /// <summary>Parses a signature file's text (LG0602 when malformed).</summary>
    public static DetachedSignature Parse(string text, string? file)
    {
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (lines.Length < 4 || lines[0] != Magic)
            throw Malformed($"not a livegraft signature (first line must be '{Magic}')", file);
        string? key = null, sha = null, sig = null;
        foreach (var line in lines[1..])
        {
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            if (space <= 0)
                throw Malformed($"bad line '{line}'", file);
            var value = line[(space + 1)..].Trim();
            switch (line[..space])
            {
                case "key": key = value; break;
                case "sha256": sha = value.ToLowerInvariant(); break;
                case "ecdsa-p256-sha256": sig = value; break;
                default: break; // Later versions may add lines; the three above are what is checked.
            }
        }
        if (key is not { Length: 16 } || !IsHex(key) || sha is not { Length: 64 } || !IsHex(sha) || sig is null)
            throw Malformed("needs 'key' (16 hex digits), 'sha256' (64) and 'ecdsa-p256-sha256' lines", file);
        byte[] bytes;
        try
        {
            bytes = Convert.FromBase64String(sig);
        }
        catch (FormatException)
        {
            throw Malformed("the signature is not base64", file);
        }
        if (bytes.Length != 64)
            throw Malformed($"the signature has {bytes.Length} bytes; ECDSA P-256 in P1363 form has 64", file);
        return new DetachedSignature(key.ToLowerInvariant(), sha, bytes);
    }

    private static bool IsHex(string s) => s.All(char.IsAsciiHexDigit);

    private static LivegraftException Malformed(string why, string? file) =>
        new(ExitCode.VerificationFailed, FleetErrors.Unsigned, "malformed signature: " + why, file);
}

/// <summary>
/// The keys a host trusts: every <c>*.pem</c> public key in <c>/etc/livegraft/keys/</c>
/// (<see cref="HostPaths.Keys"/>). With at least one key, <c>load</c>, <c>install</c> and
/// <c>update</c> refuse a patch that is not signed by one of them.
/// </summary>
public sealed class TrustStore
{
    private TrustStore(string directory, IReadOnlyList<PublicKey> keys)
    {
        Directory = directory;
        Keys = keys;
    }

    /// <summary>Where the keys were read from.</summary>
    public string Directory { get; }

    /// <summary>The trusted keys.</summary>
    public IReadOnlyList<PublicKey> Keys { get; }

    /// <summary>True when signatures are required.</summary>
    public bool Enforcing => Keys.Count > 0;

    /// <summary>Reads the host's keys; a file that is not a P-256 public key is an error (LG0607), not skipped.</summary>
    public static TrustStore Read(HostPaths paths) => Read(paths.Keys);

    /// <summary>Reads every <c>*.pem</c> in <paramref name="directory"/> (none when it does not exist).</summary>
    public static TrustStore Read(string directory)
    {
        if (!System.IO.Directory.Exists(directory))
            return new TrustStore(directory, []);
        var keys = System.IO.Directory.GetFiles(directory, "*.pem").Order(StringComparer.Ordinal).Select(PublicKey.Read).ToList();
        return new TrustStore(directory, keys);
    }

    /// <summary>A store over the given keys (tests, and <c>repo add</c> checking its own signature).</summary>
    public static TrustStore Of(string directory, params PublicKey[] keys) => new(directory, keys);

    /// <summary>
    /// Verifies <paramref name="data"/> against its detached signature text: the key must be trusted
    /// (LG0603), the recorded hash must match (LG0604) and so must the ECDSA signature (LG0604). Returns
    /// the key that signed it.
    /// </summary>
    public PublicKey Verify(ReadOnlySpan<byte> data, string? signatureText, string what)
    {
        if (signatureText is null)
            throw new LivegraftException(ExitCode.VerificationFailed, FleetErrors.Unsigned,
                $"unsigned: {Path.GetFileName(what)}{DetachedSignature.Suffix} is missing, and this host requires signatures ({Directory} holds {Keys.Count} trusted key(s))", what);
        var sig = DetachedSignature.Parse(signatureText, what + DetachedSignature.Suffix);
        var key = Keys.FirstOrDefault(k => k.Id == sig.KeyId)
            ?? throw new LivegraftException(ExitCode.VerificationFailed, FleetErrors.UntrustedKey,
                $"signed by key {sig.KeyId}, which is not trusted here (trusted: {(Keys.Count == 0 ? "none" : string.Join(", ", Keys.Select(k => k.Id)))} in {Directory})", what);
        var digest = Sha256Hash.Hash(data);
        var hex = Convert.ToHexStringLower(digest);
        if (hex != sig.Sha256)
            throw new LivegraftException(ExitCode.VerificationFailed, FleetErrors.BadSignature,
                $"tampered: the file's SHA-256 is {hex} but key {key.Id} signed {sig.Sha256}", what);
        if (!key.Verify(digest, sig.Signature))
            throw new LivegraftException(ExitCode.VerificationFailed, FleetErrors.BadSignature,
                $"bad signature: the ECDSA signature does not verify under key {key.Id}", what + DetachedSignature.Suffix);
        return key;
    }

    /// <summary>
    /// The check <c>load</c> and <c>install</c> run before anything else: when the host trusts keys,
    /// the patch file must carry a valid <c>.sig</c> beside it. Returns what was verified, or null
    /// when no key is configured (then nothing is required). Callers compare
    /// <see cref="SignedFile.Sha256"/> with the bytes they go on to use.
    /// </summary>
    public SignedFile? RequireSigned(string modulePath)
    {
        if (!Enforcing)
            return null;
        byte[] data;
        try
        {
            data = File.ReadAllBytes(modulePath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LivegraftException(ExitCode.InvalidInput, "LG0500", "cannot read module file: " + e.Message, modulePath);
        }
        var text = ReadSignature(modulePath);
        return new SignedFile(Verify(data, text, modulePath), Sha256Hash.HashHex(data), text!);
    }

    /// <summary>The text of <c>PATH.sig</c>, or null when there is none.</summary>
    public static string? ReadSignature(string path)
    {
        var sigPath = path + DetachedSignature.Suffix;
        try
        {
            return File.Exists(sigPath) ? File.ReadAllText(sigPath, Encoding.UTF8) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LivegraftException(ExitCode.VerificationFailed, FleetErrors.Unsigned, "cannot read the signature: " + e.Message, sigPath);
        }
    }
}

/// <summary>A file whose signature verified.</summary>
/// <param name="Key">The trusted key that signed it.</param>
/// <param name="Sha256">SHA-256 of the bytes that were verified.</param>
/// <param name="SignatureText">The <c>.sig</c> text, to keep beside a copy.</param>
public sealed record SignedFile(PublicKey Key, string Sha256, string SignatureText);
