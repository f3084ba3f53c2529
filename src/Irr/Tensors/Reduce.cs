using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Irr.Tensors;

/// <summary>
/// Sums, dot products and sums of squares of float spans, added up in one order on every CPU: two 8-lane partial sums
/// over blocks of 16, then the 8 lanes pairwise ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)), then the tail in order.
/// <c>TensorPrimitives.Sum</c>/<c>Dot</c>/<c>SumOfSquares</c> use the widest vector the CPU has (16 lanes with AVX-512,
/// 8 with AVX2), so their results differ between CPUs in the last bits; these do not, which keeps training, scoring and
/// generation bit-identical on AVX2 and AVX-512 machines (the matrix products are, see <see cref="Gemm"/>).
/// </summary>
public static class Reduce
{
    /// <summary>Σ x[i].</summary>
    public static float Sum(ReadOnlySpan<float> x)
    {
        ref float p = ref MemoryMarshal.GetReference(x);
        int n = x.Length, i = 0;
        Vector256<float> a0 = Vector256<float>.Zero, a1 = Vector256<float>.Zero;
        for (; i + 16 <= n; i += 16)
        {
            a0 += Vector256.LoadUnsafe(ref p, (nuint)i);
            a1 += Vector256.LoadUnsafe(ref p, (nuint)(i + 8));
        }
        if (i + 8 <= n)
        {
            a0 += Vector256.LoadUnsafe(ref p, (nuint)i);
            i += 8;
        }
        float s = Lanes(a0 + a1);
        for (; i < n; i++) s += x[i];
        return s;
    }

    /// <summary>Σ a[i]·b[i] (fused multiply-adds); the spans must have the same length.</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"Dot of spans of {a.Length} and {b.Length} elements.", nameof(b));
        ref float pa = ref MemoryMarshal.GetReference(a);
        ref float pb = ref MemoryMarshal.GetReference(b);
        int n = a.Length, i = 0;
        Vector256<float> a0 = Vector256<float>.Zero, a1 = Vector256<float>.Zero;
        for (; i + 16 <= n; i += 16)
        {
            a0 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref pa, (nuint)i), Vector256.LoadUnsafe(ref pb, (nuint)i), a0);
            a1 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref pa, (nuint)(i + 8)), Vector256.LoadUnsafe(ref pb, (nuint)(i + 8)), a1);
        }
        if (i + 8 <= n)
        {
            a0 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref pa, (nuint)i), Vector256.LoadUnsafe(ref pb, (nuint)i), a0);
            i += 8;
        }
        float s = Lanes(a0 + a1);
        for (; i < n; i++) s = MathF.FusedMultiplyAdd(a[i], b[i], s);
        return s;
    }

    /// <summary>Σ x[i]².</summary>
    public static float SumOfSquares(ReadOnlySpan<float> x) => Dot(x, x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Lanes(Vector256<float> v) =>
        ((v.GetElement(0) + v.GetElement(1)) + (v.GetElement(2) + v.GetElement(3))) +
        ((v.GetElement(4) + v.GetElement(5)) + (v.GetElement(6) + v.GetElement(7)));
}
