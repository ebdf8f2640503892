using System.Globalization;
using System.Numerics;

namespace Livegraft.Host.Repository;

/// <summary>
/// ECDSA signature verification over NIST P-256 with SHA-256 (FIPS 186-4 §6.4.2, curve parameters
/// from SEC 2 "secp256r1"), in managed code. .NET's <c>ECDsa</c> on Linux loads OpenSSL at run time,
/// and the host binary must verify patches where only libc exists (the reason <see cref="Sha256Hash"/>
/// exists). Verification handles public data only, so it need not be constant time. Signing stays
/// with .NET's own implementation on the build side (<see cref="SigningKey"/>).
/// </summary>
public static class P256
{
    private static readonly BigInteger P = Hex("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff");
    private static readonly BigInteger B = Hex("5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b");
    private static readonly BigInteger N = Hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    private static readonly BigInteger Gx = Hex("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296");
    private static readonly BigInteger Gy = Hex("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5");

    /// <summary>True when <paramref name="x"/>, <paramref name="y"/> (big-endian, 32 bytes each) is a point of the curve.</summary>
    public static bool IsOnCurve(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y)
    {
        if (x.Length != 32 || y.Length != 32)
            return false;
        var px = Unsigned(x);
        var py = Unsigned(y);
        if (px >= P || py >= P)
            return false;
        // y² = x³ − 3x + b (mod p)
        return Mod(py * py - (px * px * px - 3 * px + B)) == 0;
    }

    /// <summary>
    /// Verifies an IEEE P1363 signature (<c>r ‖ s</c>, 64 bytes) of a SHA-256 <paramref name="digest"/>
    /// under the public key (<paramref name="x"/>, <paramref name="y"/>).
    /// </summary>
    public static bool Verify(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, ReadOnlySpan<byte> digest, ReadOnlySpan<byte> signature)
    {
        if (signature.Length != 64 || digest.Length != 32 || !IsOnCurve(x, y))
            return false;
        var r = Unsigned(signature[..32]);
        var s = Unsigned(signature[32..]);
        if (r.IsZero || s.IsZero || r >= N || s >= N)
            return false;
        // The digest is exactly the bit length of n, so it is used whole (§6.4, step 3 with no truncation).
        var e = Unsigned(digest);
        var w = BigInteger.ModPow(s, N - 2, N);
        var u1 = e * w % N;
        var u2 = r * w % N;
        var point = ShamirSum(u1, new Jacobian(Gx, Gy, BigInteger.One), u2, new Jacobian(Unsigned(x), Unsigned(y), BigInteger.One));
        if (point.Z.IsZero)
            return false;
        var zInv = BigInteger.ModPow(point.Z, P - 2, P);
        var affineX = Mod(point.X * zInv * zInv);
        return affineX % N == r;
    }

    /// <summary>A point in Jacobian coordinates: (X/Z², Y/Z³); Z = 0 is the point at infinity.</summary>
    private readonly record struct Jacobian(BigInteger X, BigInteger Y, BigInteger Z)
    {
        public static Jacobian Infinity => new(BigInteger.One, BigInteger.One, BigInteger.Zero);
    }

    /// <summary><c>a·A + b·B</c> with one shared doubling chain (Shamir's trick).</summary>
    private static Jacobian ShamirSum(BigInteger a, Jacobian pa, BigInteger b, Jacobian pb)
    {
        var both = Add(pa, pb);
        var acc = Jacobian.Infinity;
        var bits = (int)Math.Max(a.GetBitLength(), b.GetBitLength());
        for (var i = bits - 1; i >= 0; i--)
        {
            acc = Double(acc);
            var bitA = !(a >> i).IsEven;
            var bitB = !(b >> i).IsEven;
            if (bitA && bitB)
                acc = Add(acc, both);
            else if (bitA)
                acc = Add(acc, pa);
            else if (bitB)
                acc = Add(acc, pb);
        }
        return acc;
    }

    /// <summary>Point doubling for a = −3 ("dbl-2001-b", Bernstein–Lange Explicit-Formulas Database).</summary>
    private static Jacobian Double(Jacobian p)
    {
        if (p.Z.IsZero || p.Y.IsZero)
            return Jacobian.Infinity;
        var delta = Mod(p.Z * p.Z);
        var gamma = Mod(p.Y * p.Y);
        var beta = Mod(p.X * gamma);
        var alpha = Mod(3 * (p.X - delta) * (p.X + delta));
        var x3 = Mod(alpha * alpha - 8 * beta);
        var z3 = Mod((p.Y + p.Z) * (p.Y + p.Z) - gamma - delta);
        var y3 = Mod(alpha * (4 * beta - x3) - 8 * gamma * gamma);
        return new Jacobian(x3, y3, z3);
    }

    /// <summary>General point addition ("add-2007-bl"), falling back to doubling for equal points.</summary>
    private static Jacobian Add(Jacobian p, Jacobian q)
    {
        if (p.Z.IsZero)
            return q;
        if (q.Z.IsZero)
            return p;
        var z1z1 = Mod(p.Z * p.Z);
        var z2z2 = Mod(q.Z * q.Z);
        var u1 = Mod(p.X * z2z2);
        var u2 = Mod(q.X * z1z1);
        var s1 = Mod(p.Y * q.Z * z2z2);
        var s2 = Mod(q.Y * p.Z * z1z1);
        if (u1 == u2)
            return s1 == s2 ? Double(p) : Jacobian.Infinity;
        var h = Mod(u2 - u1);
        var i = Mod(4 * h * h);
        var j = Mod(h * i);
        var r = Mod(2 * (s2 - s1));
        var v = Mod(u1 * i);
        var x3 = Mod(r * r - j - 2 * v);
        var y3 = Mod(r * (v - x3) - 2 * s1 * j);
        var z3 = Mod(((p.Z + q.Z) * (p.Z + q.Z) - z1z1 - z2z2) * h);
        return new Jacobian(x3, y3, z3);
    }

    private static BigInteger Mod(BigInteger v)
    {
        var m = v % P;
        return m.Sign < 0 ? m + P : m;
    }

    private static BigInteger Unsigned(ReadOnlySpan<byte> bigEndian) => new(bigEndian, isUnsigned: true, isBigEndian: true);

    private static BigInteger Hex(string hex) => BigInteger.Parse("0" + hex, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
}
