using System.Security.Cryptography;
using System.Text;

namespace Livegraft.Host.Repository;

/// <summary>
/// An ECDSA P-256 public key as a <c>-----BEGIN PUBLIC KEY-----</c> PEM file holds it
/// (SubjectPublicKeyInfo, RFC 5480, uncompressed point), parsed and used in managed code so a host
/// verifies without OpenSSL (<see cref="P256"/>).
/// </summary>
public sealed class PublicKey
{
    // SEQUENCE { SEQUENCE { OID id-ecPublicKey, OID prime256v1 }, BIT STRING (0 unused bits) 04 X Y }:
    // the fixed 27-byte DER prefix of every uncompressed P-256 SubjectPublicKeyInfo (RFC 5480 §2).
    private static readonly byte[] SpkiPrefix = Convert.FromHexString("3059301306072a8648ce3d020106082a8648ce3d03010703420004");

    private readonly byte[] _x;
    private readonly byte[] _y;

    private PublicKey(byte[] der, string? file)
    {
        Der = der;
        _x = der[SpkiPrefix.Length..(SpkiPrefix.Length + 32)];
        _y = der[(SpkiPrefix.Length + 32)..];
        Id = Sha256Hash.HashHex(der)[..16];
        File = file;
    }

    /// <summary>The key id: the first 16 hex digits of the SHA-256 of the SubjectPublicKeyInfo DER.</summary>
    public string Id { get; }

    /// <summary>The SubjectPublicKeyInfo DER.</summary>
    public byte[] Der { get; }

    /// <summary>The file the key came from, if any.</summary>
    public string? File { get; }

    /// <summary>Parses a SubjectPublicKeyInfo DER (LG0607 unless it is an uncompressed P-256 point on the curve).</summary>
    public static PublicKey FromDer(byte[] der, string? file = null)
    {
        if (der.Length != SpkiPrefix.Length + 64 || !der.AsSpan(0, SpkiPrefix.Length).SequenceEqual(SpkiPrefix))
            throw new LivegraftException(ExitCode.InvalidInput, FleetErrors.BadKey, "not an ECDSA P-256 public key (SubjectPublicKeyInfo with an uncompressed point)", file);
        var key = new PublicKey(der, file);
        if (!P256.IsOnCurve(key._x, key._y))
            throw new LivegraftException(ExitCode.InvalidInput, FleetErrors.BadKey, "the public key's point is not on the P-256 curve", file);
        return key;
    }

    /// <summary>Parses PEM text with one <c>PUBLIC KEY</c> block.</summary>
    public static PublicKey FromPem(string pem, string? file = null) => FromDer(Pem.Decode(pem, "PUBLIC KEY", file), file);

    /// <summary>Reads a PEM file.</summary>
    public static PublicKey Read(string path) => FromPem(Pem.ReadText(path), path);

    /// <summary>The key as PEM text.</summary>
    public string ToPem() => Pem.Encode("PUBLIC KEY", Der);

    /// <summary>True when <paramref name="signature"/> (P1363 <c>r ‖ s</c>) signs the SHA-256 <paramref name="digest"/>.</summary>
    public bool Verify(ReadOnlySpan<byte> digest, ReadOnlySpan<byte> signature) => P256.Verify(_x, _y, digest, signature);
}

/// <summary>
/// The operator's private signing key (PKCS#8 PEM), used on the build side only: key generation and
/// signing go through .NET's <see cref="ECDsa"/> (OpenSSL on Linux), which a build machine has.
/// </summary>
public sealed class SigningKey : IDisposable
{
    private readonly ECDsa _ecdsa;

    private SigningKey(ECDsa ecdsa, string? file)
    {
        _ecdsa = ecdsa;
        Public = PublicKey.FromDer(ecdsa.ExportSubjectPublicKeyInfo(), file);
        File = file;
    }

    /// <summary>The matching public key.</summary>
    public PublicKey Public { get; }

    /// <summary>The file the key came from, if any.</summary>
    public string? File { get; }

    /// <summary>A fresh P-256 key.</summary>
    public static SigningKey Generate() => new(ECDsa.Create(ECCurve.NamedCurves.nistP256), null);

    /// <summary>Reads an unencrypted PKCS#8 (or SEC 1) PEM private key (LG0607 when it is not P-256).</summary>
    public static SigningKey Read(string path)
    {
        var text = Pem.ReadText(path);
        var ecdsa = ECDsa.Create();
        try
        {
            ecdsa.ImportFromPem(text);
            if (ecdsa.ExportParameters(false).Curve.Oid.Value != "1.2.840.10045.3.1.7")
                throw new LivegraftException(ExitCode.InvalidInput, FleetErrors.BadKey, "the private key is not on the P-256 curve", path);
            return new SigningKey(ecdsa, path);
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException)
        {
            ecdsa.Dispose();
            throw new LivegraftException(ExitCode.InvalidInput, FleetErrors.BadKey, "not an unencrypted ECDSA private key in PEM: " + e.Message, path);
        }
        catch
        {
            ecdsa.Dispose();
            throw;
        }
    }

    /// <summary>Signs SHA-256(<paramref name="data"/>); returns <c>r ‖ s</c> (IEEE P1363, 64 bytes).</summary>
    public byte[] Sign(ReadOnlySpan<byte> data) => _ecdsa.SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);

    /// <summary>The private key as PKCS#8 PEM.</summary>
    public string ToPem() => _ecdsa.ExportPkcs8PrivateKeyPem();

    /// <inheritdoc/>
    public void Dispose() => _ecdsa.Dispose();
}

/// <summary>RFC 7468 text encoding: one labelled base64 block.</summary>
internal static class Pem
{
    public static string ReadText(string path)
    {
        try
        {
            return System.IO.File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LivegraftException(ExitCode.InvalidInput, FleetErrors.BadKey, "cannot read key file: " + e.Message, path);
        }
    }

    public static byte[] Decode(string pem, string label, string? file)
    {
        var begin = $"-----BEGIN {label}-----";
        var end = $"-----END {label}-----";
        var b = pem.IndexOf(begin, StringComparison.Ordinal);
        var e = b < 0 ? -1 : pem.IndexOf(end, b, StringComparison.Ordinal);
        if (b < 0 || e < 0)
            throw new LivegraftException(ExitCode.InvalidInput, FleetErrors.BadKey, $"no '{begin}' block", file);
        try
        {
            return Convert.FromBase64String(pem[(b + begin.Length)..e]);
        }
        catch (FormatException)
        {
            throw new LivegraftException(ExitCode.InvalidInput, FleetErrors.BadKey, $"the {label} block is not base64", file);
        }
    }

    public static string Encode(string label, byte[] der)
    {
        var sb = new StringBuilder().Append("-----BEGIN ").Append(label).Append("-----\n");
        var b64 = Convert.ToBase64String(der);
        for (var i = 0; i < b64.Length; i += 64)
            sb.Append(b64, i, Math.Min(64, b64.Length - i)).Append('\n');
        return sb.Append("-----END ").Append(label).Append("-----\n").ToString();
    }
}
