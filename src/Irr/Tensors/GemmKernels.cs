using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Irr.Tensors;

/// <summary>Which register-blocked micro-kernel the GEMM driver uses.</summary>
internal enum GemmKernel
{
    /// <summary>6 × 16 tile, twelve 256-bit accumulators (AVX2 + FMA; NEON via 2 × 128).</summary>
    V256,
    /// <summary>6 × 32 tile, twelve 512-bit accumulators (AVX-512F).</summary>
    V512,
}

/// <summary>
/// The GEMM micro-kernels: <c>C[MR×NR] = alpha·(Ap · Bp) + beta·C</c> for one register tile, where
/// <c>Ap</c> is an MR-row panel of A packed k-major (<c>Ap[k·MR + r]</c>) and <c>Bp</c> an NR-column
/// panel of B packed k-major (<c>Bp[k·NR + j]</c>). Each k-step broadcasts MR values of A and
/// multiplies them into two vectors of B with fused multiply-adds: 12 independent FMA chains, which
/// covers the FMA latency × throughput product of current x86 cores (4 cycles × 2 per cycle).
/// </summary>
/// <remarks>
/// The summation over k is sequential and independent of threading, so results are reproducible
/// bit for bit for a given shape. When beta is 0, C is not read (it may hold NaN).
/// The two kernels are written out rather than generic over the vector type: a generic kernel over
/// struct wrappers of Vector256/Vector512 compiled (.NET 10) to extra register moves and ran 15%
/// slower with both cores busy.
/// </remarks>
internal static unsafe class GemmKernels
{
    public const int MR = 6;

    /// <summary>The kernel this machine runs fastest.</summary>
    public static readonly GemmKernel Best =
        Vector512.IsHardwareAccelerated ? GemmKernel.V512 : GemmKernel.V256;

    public static int NR(GemmKernel kernel) => kernel == GemmKernel.V512 ? 32 : 16;

    // C (6,16) = alpha · Ap (kc,6)ᵀ · Bp (kc,16) + beta · C
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel6x16(nint kc, float* ap, float* bp, float* c, nint ldc, float alpha, float beta)
    {
        PrefetchTile(c, ldc, 16);
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (nint p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Vector256.Load(bp), b1 = Vector256.Load(bp + 8), a;
            a = Vector256.Create(ap[0]); c00 = Vector256.FusedMultiplyAdd(a, b0, c00); c01 = Vector256.FusedMultiplyAdd(a, b1, c01);
            a = Vector256.Create(ap[1]); c10 = Vector256.FusedMultiplyAdd(a, b0, c10); c11 = Vector256.FusedMultiplyAdd(a, b1, c11);
            a = Vector256.Create(ap[2]); c20 = Vector256.FusedMultiplyAdd(a, b0, c20); c21 = Vector256.FusedMultiplyAdd(a, b1, c21);
            a = Vector256.Create(ap[3]); c30 = Vector256.FusedMultiplyAdd(a, b0, c30); c31 = Vector256.FusedMultiplyAdd(a, b1, c31);
            a = Vector256.Create(ap[4]); c40 = Vector256.FusedMultiplyAdd(a, b0, c40); c41 = Vector256.FusedMultiplyAdd(a, b1, c41);
            a = Vector256.Create(ap[5]); c50 = Vector256.FusedMultiplyAdd(a, b0, c50); c51 = Vector256.FusedMultiplyAdd(a, b1, c51);
            ap += MR;
            bp += 16;
        }
        Store256(c, c00, c01, alpha, beta);
        Store256(c + ldc, c10, c11, alpha, beta);
        Store256(c + 2 * ldc, c20, c21, alpha, beta);
        Store256(c + 3 * ldc, c30, c31, alpha, beta);
        Store256(c + 4 * ldc, c40, c41, alpha, beta);
        Store256(c + 5 * ldc, c50, c51, alpha, beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store256(float* c, Vector256<float> lo, Vector256<float> hi, float alpha, float beta)
    {
        var va = Vector256.Create(alpha);
        if (beta == 0f)
        {
            Vector256.Store(lo * va, c);
            Vector256.Store(hi * va, c + 8);
        }
        else
        {
            var vb = Vector256.Create(beta);
            Vector256.Store(Vector256.FusedMultiplyAdd(lo, va, Vector256.Load(c) * vb), c);
            Vector256.Store(Vector256.FusedMultiplyAdd(hi, va, Vector256.Load(c + 8) * vb), c + 8);
        }
    }

    // C (6,32) = alpha · Ap (kc,6)ᵀ · Bp (kc,32) + beta · C
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel6x32(nint kc, float* ap, float* bp, float* c, nint ldc, float alpha, float beta)
    {
        PrefetchTile(c, ldc, 32);
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (nint p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(bp), b1 = Vector512.Load(bp + 16), a;
            a = Vector512.Create(ap[0]); c00 = Vector512.FusedMultiplyAdd(a, b0, c00); c01 = Vector512.FusedMultiplyAdd(a, b1, c01);
            a = Vector512.Create(ap[1]); c10 = Vector512.FusedMultiplyAdd(a, b0, c10); c11 = Vector512.FusedMultiplyAdd(a, b1, c11);
            a = Vector512.Create(ap[2]); c20 = Vector512.FusedMultiplyAdd(a, b0, c20); c21 = Vector512.FusedMultiplyAdd(a, b1, c21);
            a = Vector512.Create(ap[3]); c30 = Vector512.FusedMultiplyAdd(a, b0, c30); c31 = Vector512.FusedMultiplyAdd(a, b1, c31);
            a = Vector512.Create(ap[4]); c40 = Vector512.FusedMultiplyAdd(a, b0, c40); c41 = Vector512.FusedMultiplyAdd(a, b1, c41);
            a = Vector512.Create(ap[5]); c50 = Vector512.FusedMultiplyAdd(a, b0, c50); c51 = Vector512.FusedMultiplyAdd(a, b1, c51);
            ap += MR;
            bp += 32;
        }
        Store512(c, c00, c01, alpha, beta);
        Store512(c + ldc, c10, c11, alpha, beta);
        Store512(c + 2 * ldc, c20, c21, alpha, beta);
        Store512(c + 3 * ldc, c30, c31, alpha, beta);
        Store512(c + 4 * ldc, c40, c41, alpha, beta);
        Store512(c + 5 * ldc, c50, c51, alpha, beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store512(float* c, Vector512<float> lo, Vector512<float> hi, float alpha, float beta)
    {
        var va = Vector512.Create(alpha);
        if (beta == 0f)
        {
            Vector512.Store(lo * va, c);
            Vector512.Store(hi * va, c + 16);
        }
        else
        {
            var vb = Vector512.Create(beta);
            Vector512.Store(Vector512.FusedMultiplyAdd(lo, va, Vector512.Load(c) * vb), c);
            Vector512.Store(Vector512.FusedMultiplyAdd(hi, va, Vector512.Load(c + 16) * vb), c + 16);
        }
    }

    /// <summary>
    /// Asks for the C tile while the k-loop runs: C is written once per k-slice and usually sits
    /// in L3 or memory, and a miss at the store would stall the kernel for hundreds of cycles.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchTile(float* c, nint ldc, int nr)
    {
        if (!Sse.IsSupported) return;
        for (int r = 0; r < MR; r++, c += ldc)
        {
            Sse.Prefetch0(c);
            Sse.Prefetch0(c + nr - 1);
        }
    }

    /// <summary>Runs the kernel on a full tile.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Full(GemmKernel kernel, nint kc, float* ap, float* bp, float* c, nint ldc, float alpha, float beta)
    {
        if (kernel == GemmKernel.V512) Kernel6x32(kc, ap, bp, c, ldc, alpha, beta);
        else Kernel6x16(kc, ap, bp, c, ldc, alpha, beta);
    }

    /// <summary>
    /// Runs the kernel on a partial tile (<paramref name="mr"/> ≤ MR rows, <paramref name="nr"/> ≤ NR
    /// columns) through a scratch tile, with the same arithmetic as the full tile.
    /// </summary>
    public static void Edge(GemmKernel kernel, nint kc, float* ap, float* bp, float* c, nint ldc, int mr, int nr, float alpha, float beta)
    {
        int nrFull = NR(kernel);
        float* tile = stackalloc float[MR * 32];
        Full(kernel, kc, ap, bp, tile, nrFull, 1f, 0f);
        for (int r = 0; r < mr; r++)
        {
            float* crow = c + r * ldc, trow = tile + r * nrFull;
            if (beta == 0f)
                for (int j = 0; j < nr; j++) crow[j] = trow[j] * alpha;
            else
                for (int j = 0; j < nr; j++) crow[j] = MathF.FusedMultiplyAdd(trow[j], alpha, crow[j] * beta);
        }
    }
}
