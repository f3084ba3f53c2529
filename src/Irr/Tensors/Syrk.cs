namespace Irr.Tensors;

/// <summary>
/// Symmetric rank-k update on row-major float32 matrices, the Hessian accumulation of OBS
/// (<c>H += (2/N)·XᵀX</c> over calibration tokens X). Only the lower triangle is computed, on the
/// GEMM driver (about half the flops of a GEMM), then mirrored into the upper one.
/// </summary>
public static unsafe class Syrk
{
    /// <summary>
    /// <c>C (n×n) = alpha · op(A)·op(A)ᵀ + beta · C</c> with op(A) = A (n×k) for
    /// <see cref="Transpose.No"/> (C = A·Aᵀ) or op(A) = Aᵀ, A stored k×n, for <see cref="Transpose.Yes"/> (C = Aᵀ·A).
    /// C must be symmetric on entry; only its lower triangle is read, and on return C is symmetric.
    /// </summary>
    public static void Update(Transpose trans, int n, int k, float alpha, ReadOnlySpan<float> a, int lda, float beta, Span<float> c, int ldc)
    {
        Gemm.CheckOperand(nameof(a), a.Length, trans == Transpose.No ? n : k, trans == Transpose.No ? k : n, lda);
        Gemm.CheckOperand(nameof(c), c.Length, n, n, ldc);
        fixed (float* pa = a, pc = c)
        {
            var other = trans == Transpose.No ? Transpose.Yes : Transpose.No;
            Gemm.Run(GemmKernels.Best, trans, other, n, n, k, alpha, pa, lda, pa, lda, beta, pc, ldc, lowerOnly: true, ThreadTeam.DefaultThreads);
            MirrorLowerToUpper(pc, n, ldc);
        }
    }

    /// <summary><c>H (cols×cols) += alpha · XᵀX</c> for X (rows×cols), both contiguous.</summary>
    public static void AddXtX(ReadOnlySpan<float> x, int rows, int cols, float alpha, Span<float> h)
        => Update(Transpose.Yes, cols, rows, alpha, x, Math.Max(1, cols), 1f, h, Math.Max(1, cols));

    /// <summary>Copies the strict lower triangle onto the upper one (C[j, i] = C[i, j] for i &gt; j), in cache-sized tiles.</summary>
    internal static void MirrorLowerToUpper(float* c, int n, nint ldc)
    {
        const int tile = 64;
        for (int i0 = 0; i0 < n; i0 += tile)
        {
            int i1 = Math.Min(i0 + tile, n);
            for (int j0 = 0; j0 <= i0; j0 += tile)
            {
                int j1 = Math.Min(j0 + tile, n);
                for (int i = i0; i < i1; i++)
                {
                    float* row = c + i * ldc;
                    int jEnd = Math.Min(j1, i);
                    for (int j = j0; j < jEnd; j++) c[j * ldc + i] = row[j];
                }
            }
        }
    }
}
