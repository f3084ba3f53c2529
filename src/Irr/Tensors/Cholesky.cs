using System.Runtime.InteropServices;

namespace Irr.Tensors;

/// <summary>Which step of the Cholesky chain a result refers to.</summary>
public enum CholeskyStage
{
    /// <summary><c>A = L·Lᵀ</c> of the input.</summary>
    Factor,
    /// <summary><c>A⁻¹</c> from the factor.</summary>
    Inverse,
    /// <summary><c>A⁻¹ = Uᵀ·U</c>, the upper factor of the inverse.</summary>
    InverseFactor,
}

/// <summary>
/// Outcome of a Cholesky-family routine. Failure is a value, not an exception: the caller (the OBS
/// recalibration) retries with more damping and reports which layer and module failed.
/// </summary>
/// <param name="Success">Whether the routine completed.</param>
/// <param name="Column">On failure, the 0-based column whose pivot was not positive (or not finite).</param>
/// <param name="Pivot">On failure, the offending pivot value (its square for a factorisation).</param>
/// <param name="Stage">On failure, the step of the chain that failed.</param>
public readonly record struct CholeskyResult(bool Success, int Column, double Pivot, CholeskyStage Stage)
{
    /// <summary>A successful result.</summary>
    public static CholeskyResult Ok => new(true, -1, double.NaN, CholeskyStage.Factor);

    internal static CholeskyResult Failed(int column, double pivot, CholeskyStage stage) => new(false, column, pivot, stage);

    /// <summary>A one-line description, e.g. "not positive definite: pivot 12 of the factor is -3.1E-05".</summary>
    public override string ToString() => Success
        ? "ok"
        : Stage == CholeskyStage.Inverse
            ? $"singular factor: diagonal entry {Column} is {Pivot:G6}"
            : $"not positive definite: pivot {Column} of the {(Stage == CholeskyStage.Factor ? "factor" : "inverse's factor")} is {Pivot:G6}";
}

/// <summary>
/// The Cholesky family on dense row-major float32 matrices, as SparseGPT/OBS needs it:
/// <see cref="Factor"/> (<c>torch.linalg.cholesky</c>), <see cref="InverseFromFactor"/>
/// (<c>torch.cholesky_inverse</c>), <see cref="UpperFactor"/> (<c>torch.linalg.cholesky(upper=True)</c>)
/// and the whole chain <see cref="InverseUpperFactor"/>.
/// </summary>
/// <remarks>
/// <para>
/// Every routine is recursive (Gustavson; Elmroth et al., SIAM Review 2004): a matrix is split in
/// halves, the halves are handled recursively and coupled by one large matrix product on the GEMM
/// driver, so almost all the flops run at GEMM speed and on all threads. Blocks of at most
/// <see cref="Nb"/> are done directly: factorisations and inverses of small blocks in double
/// precision, and triangular solves or products against them as a GEMM with the block's explicit
/// inverse (as MAGMA's trsm does).
/// </para>
/// <para>Only the lower triangle of the input is read. The matrices are n×n and contiguous.</para>
/// </remarks>
public static unsafe class Cholesky
{
    /// <summary>Largest block handled without recursion.</summary>
    internal const int Nb = 64;

    /// <summary>
    /// In place: <c>A = L·Lᵀ</c>, L lower triangular with a positive diagonal; the strict upper
    /// triangle is set to zero. On failure A holds partial results.
    /// </summary>
    public static CholeskyResult Factor(Span<float> a, int n)
    {
        Gemm.CheckOperand(nameof(a), a.Length, n, n, Math.Max(1, n));
        using var scratch = new Scratch(n);
        fixed (float* p = a)
        {
            var r = Potrf(p, n, n, scratch);
            if (r.Success) ZeroStrictUpper(p, n, n);
            return r;
        }
    }

    /// <summary>
    /// In place: from the lower factor L of A, the full symmetric inverse <c>A⁻¹ = L⁻ᵀ·L⁻¹</c>.
    /// Fails when a diagonal entry of L is not positive and finite.
    /// </summary>
    public static CholeskyResult InverseFromFactor(Span<float> l, int n)
    {
        Gemm.CheckOperand(nameof(l), l.Length, n, n, Math.Max(1, n));
        using var scratch = new Scratch(n);
        fixed (float* p = l)
        {
            for (int i = 0; i < n; i++)
            {
                float d = p[(nint)i * n + i];
                if (!(d > 0f) || !float.IsFinite(d)) return CholeskyResult.Failed(i, d, CholeskyStage.Inverse);
            }
            Trtri(p, n, n, scratch);
            Lauum(p, n, n, scratch);
            Syrk.MirrorLowerToUpper(p, n, n);
        }
        return CholeskyResult.Ok;
    }

    /// <summary>In place: <c>A = Uᵀ·U</c>, U upper triangular with a positive diagonal; the strict lower triangle is set to zero.</summary>
    public static CholeskyResult UpperFactor(Span<float> a, int n)
    {
        var r = Factor(a, n);
        if (r.Success)
            fixed (float* p = a) TransposeLowerToUpper(p, n, n);
        return r;
    }

    /// <summary>
    /// In place: the upper Cholesky factor of the inverse, <c>A⁻¹ = Uᵀ·U</c>, by the chain SparseGPT
    /// uses: factor A, invert from the factor, factor the inverse (upper).
    /// </summary>
    public static CholeskyResult InverseUpperFactor(Span<float> a, int n)
    {
        var r = Factor(a, n);
        if (!r.Success) return r;
        r = InverseFromFactor(a, n);
        if (!r.Success) return r;
        r = UpperFactor(a, n);
        return r.Success ? r : r with { Stage = CholeskyStage.InverseFactor };
    }

    // Split point for the recursion: about half, a multiple of 16 so GEMM tiles line up.
    private static int Half(int n) => (n / 2 + 15) & ~15;

    // A (n×n, lower) = L·Lᵀ, in place.                          Recursion: A11 = L11·L11ᵀ
    //                                                                       L21 = A21·L11⁻ᵀ
    //                                                                       A22 − L21·L21ᵀ = L22·L22ᵀ
    private static CholeskyResult Potrf(float* a, int n, nint lda, Scratch s)
    {
        if (n <= Nb) return PotrfSmall(a, n, lda);
        int h = Half(n), n2 = n - h;
        float* a21 = a + h * lda, a22 = a21 + h;
        var r = Potrf(a, h, lda, s);
        if (!r.Success) return r;
        TrsmRightLowerT(a, h, lda, a21, n2, lda, s);
        Gemm.Run(GemmKernels.Best, Transpose.No, Transpose.Yes, n2, n2, h, -1f, a21, lda, a21, lda, 1f, a22, lda, lowerOnly: true, ThreadTeam.DefaultThreads);
        r = Potrf(a22, n2, lda, s);
        return r.Success ? r : r with { Column = r.Column + h };
    }

    // X (m×n) := X · L⁻ᵀ, L (n×n) lower.          [X1 X2]·[L11ᵀ L21ᵀ; 0 L22ᵀ] = [B1 B2]:
    //                                               X1 = B1·L11⁻ᵀ;  X2 = (B2 − X1·L21ᵀ)·L22⁻ᵀ
    private static void TrsmRightLowerT(float* l, int n, nint ldl, float* x, int m, nint ldx, Scratch s)
    {
        if (n <= Nb)
        {
            float* inv = s.SmallInverse(l, n, ldl);
            float* t = s.Copy(x, m, n, ldx);
            Gemm.Run(GemmKernels.Best, Transpose.No, Transpose.Yes, m, n, n, 1f, t, n, inv, Nb, 0f, x, ldx, false, ThreadTeam.DefaultThreads);
            return;
        }
        int h = Half(n);
        TrsmRightLowerT(l, h, ldl, x, m, ldx, s);
        Gemm.Run(GemmKernels.Best, Transpose.No, Transpose.Yes, m, n - h, h, -1f, x, ldx, l + h * ldl, ldl, 1f, x + h, ldx, false, ThreadTeam.DefaultThreads);
        TrsmRightLowerT(l + h * ldl + h, n - h, ldl, x + h, m, ldx, s);
    }

    // L (n×n, lower) := L⁻¹, in place.             inv([L11 0; L21 L22]) = [M11 0; −M22·L21·M11  M22]
    private static void Trtri(float* l, int n, nint ldl, Scratch s)
    {
        if (n <= Nb)
        {
            float* inv = s.SmallInverse(l, n, ldl);
            for (int i = 0; i < n; i++) new Span<float>(inv + i * Nb, i + 1).CopyTo(new Span<float>(l + i * ldl, i + 1));
            return;
        }
        int h = Half(n), n2 = n - h;
        float* l21 = l + h * ldl, l22 = l21 + h;
        Trtri(l, h, ldl, s);                          // M11
        TrmmRightLower(l, h, ldl, l21, n2, ldl, s);   // L21·M11
        TrsmLeftLower(l22, n2, ldl, l21, h, ldl, -1f, s); // −L22⁻¹·(L21·M11) = −M22·L21·M11
        Trtri(l22, n2, ldl, s);                       // M22
    }

    // X (m×n) := X · M, M (n×n) lower.             [X1 X2]·[M11 0; M21 M22] = [X1·M11 + X2·M21, X2·M22]
    private static void TrmmRightLower(float* mat, int n, nint ldm, float* x, int m, nint ldx, Scratch s)
    {
        if (n <= Nb)
        {
            float* dense = s.SmallLower(mat, n, ldm);
            float* t = s.Copy(x, m, n, ldx);
            Gemm.Run(GemmKernels.Best, Transpose.No, Transpose.No, m, n, n, 1f, t, n, dense, Nb, 0f, x, ldx, false, ThreadTeam.DefaultThreads);
            return;
        }
        int h = Half(n);
        TrmmRightLower(mat, h, ldm, x, m, ldx, s);
        Gemm.Run(GemmKernels.Best, Transpose.No, Transpose.No, m, h, n - h, 1f, x + h, ldx, mat + h * ldm, ldm, 1f, x, ldx, false, ThreadTeam.DefaultThreads);
        TrmmRightLower(mat + h * ldm + h, n - h, ldm, x + h, m, ldx, s);
    }

    // X (n×m) := alpha · L⁻¹ · X, L (n×n) lower.   Y1 = alpha·L11⁻¹·X1;  Y2 = L22⁻¹·(alpha·X2 − L21·Y1)
    private static void TrsmLeftLower(float* l, int n, nint ldl, float* x, int m, nint ldx, float alpha, Scratch s)
    {
        if (n <= Nb)
        {
            float* inv = s.SmallInverse(l, n, ldl);
            float* t = s.Copy(x, n, m, ldx);
            Gemm.Run(GemmKernels.Best, Transpose.No, Transpose.No, n, m, n, alpha, inv, Nb, t, m, 0f, x, ldx, false, ThreadTeam.DefaultThreads);
            return;
        }
        int h = Half(n), n2 = n - h;
        float* x2 = x + h * ldx;
        TrsmLeftLower(l, h, ldl, x, m, ldx, alpha, s);
        Gemm.Run(GemmKernels.Best, Transpose.No, Transpose.No, n2, m, h, -1f, l + h * ldl, ldl, x, ldx, alpha, x2, ldx, false, ThreadTeam.DefaultThreads);
        TrsmLeftLower(l + h * ldl + h, n2, ldl, x2, m, ldx, 1f, s);
    }

    // M (n×n, lower) := lower triangle of Mᵀ·M.   [M11 0; M21 M22]ᵀ·[M11 0; M21 M22] =
    //                                               [M11ᵀM11 + M21ᵀM21, ·; M22ᵀ·M21, M22ᵀM22]
    private static void Lauum(float* mat, int n, nint ldm, Scratch s)
    {
        if (n <= Nb)
        {
            LauumSmall(mat, n, ldm);
            return;
        }
        int h = Half(n), n2 = n - h;
        float* m21 = mat + h * ldm, m22 = m21 + h;
        Lauum(mat, h, ldm, s);
        Gemm.Run(GemmKernels.Best, Transpose.Yes, Transpose.No, h, h, n2, 1f, m21, ldm, m21, ldm, 1f, mat, ldm, lowerOnly: true, ThreadTeam.DefaultThreads);
        TrmmLeftLowerT(m22, n2, ldm, m21, h, ldm, s);
        Lauum(m22, n2, ldm, s);
    }

    // X (n×m) := Mᵀ · X, M (n×n) lower.            [M11ᵀ M21ᵀ; 0 M22ᵀ]·[X1; X2] = [M11ᵀ·X1 + M21ᵀ·X2; M22ᵀ·X2]
    private static void TrmmLeftLowerT(float* mat, int n, nint ldm, float* x, int m, nint ldx, Scratch s)
    {
        if (n <= Nb)
        {
            float* dense = s.SmallLower(mat, n, ldm);
            float* t = s.Copy(x, n, m, ldx);
            Gemm.Run(GemmKernels.Best, Transpose.Yes, Transpose.No, n, m, n, 1f, dense, Nb, t, m, 0f, x, ldx, false, ThreadTeam.DefaultThreads);
            return;
        }
        int h = Half(n), n2 = n - h;
        float* x2 = x + h * ldx;
        TrmmLeftLowerT(mat, h, ldm, x, m, ldx, s);
        Gemm.Run(GemmKernels.Best, Transpose.Yes, Transpose.No, h, m, n2, 1f, mat + h * ldm, ldm, x2, ldx, 1f, x, ldx, false, ThreadTeam.DefaultThreads);
        TrmmLeftLowerT(mat + h * ldm + h, n2, ldm, x2, m, ldx, s);
    }

    // Unblocked Cholesky–Crout of a small block, sums in double:
    //   L_jj = √(A_jj − Σ_{p<j} L_jp²),  L_ij = (A_ij − Σ_{p<j} L_ip·L_jp) / L_jj  (i > j)
    private static CholeskyResult PotrfSmall(float* a, int n, nint lda)
    {
        for (int j = 0; j < n; j++)
        {
            float* rj = a + j * lda;
            double d = rj[j];
            for (int p = 0; p < j; p++) d -= (double)rj[p] * rj[p];
            if (!(d > 0) || !double.IsFinite(d)) return CholeskyResult.Failed(j, d, CholeskyStage.Factor);
            double ljj = Math.Sqrt(d);
            rj[j] = (float)ljj;
            for (int i = j + 1; i < n; i++)
            {
                float* ri = a + i * lda;
                double sum = ri[j];
                for (int p = 0; p < j; p++) sum -= (double)ri[p] * rj[p];
                ri[j] = (float)(sum / ljj);
            }
        }
        return CholeskyResult.Ok;
    }

    // Lower triangle of Mᵀ·M for a small lower M, in place, sums in double:
    //   (MᵀM)_ij = Σ_{p ≥ i} M_pi·M_pj  (i ≥ j); row i only needs rows p ≥ i, so go top-down.
    private static void LauumSmall(float* mat, int n, nint ldm)
    {
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++)
            {
                double sum = 0;
                for (int p = i; p < n; p++) sum += (double)mat[p * ldm + i] * mat[p * ldm + j];
                mat[i * ldm + j] = (float)sum;
            }
    }

    private static void ZeroStrictUpper(float* a, int n, nint lda)
    {
        for (int i = 0; i < n - 1; i++) new Span<float>(a + i * lda + i + 1, n - 1 - i).Clear();
    }

    // A := (lower triangle of A)ᵀ with zeros below the diagonal, in cache-sized tiles.
    private static void TransposeLowerToUpper(float* a, int n, nint lda)
    {
        Syrk.MirrorLowerToUpper(a, n, lda);
        for (int i = 1; i < n; i++) new Span<float>(a + i * lda, i).Clear();
    }

    /// <summary>Working memory of one top-level call: a copy of an Nb-wide strip, and small blocks.</summary>
    private sealed class Scratch : IDisposable
    {
        private readonly float* strip;   // Nb × n: a copy of the operand a base-case GEMM overwrites
        private readonly float* small;   // Nb × Nb, leading dimension Nb: a small inverse or dense triangle
        private readonly double* work;   // Nb × Nb in double for the small inverse

        public Scratch(int n)
        {
            strip = (float*)NativeMemory.AlignedAlloc((nuint)Math.Max(1, (long)Nb * n) * sizeof(float), 64);
            small = (float*)NativeMemory.AlignedAlloc(Nb * Nb * sizeof(float), 64);
            work = (double*)NativeMemory.AlignedAlloc(Nb * Nb * sizeof(double), 64);
        }

        public void Dispose()
        {
            NativeMemory.AlignedFree(strip);
            NativeMemory.AlignedFree(small);
            NativeMemory.AlignedFree(work);
        }

        /// <summary>Copies the rows×cols block at x into the strip (contiguous, leading dimension cols).</summary>
        public float* Copy(float* x, int rows, int cols, nint ldx)
        {
            for (int i = 0; i < rows; i++)
                new ReadOnlySpan<float>(x + i * ldx, cols).CopyTo(new Span<float>(strip + (nint)i * cols, cols));
            return strip;
        }

        /// <summary>The lower triangle of a small block as a dense Nb-strided matrix with explicit zeros above.</summary>
        public float* SmallLower(float* mat, int n, nint ldm)
        {
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++) small[i * Nb + j] = j <= i ? mat[i * ldm + j] : 0f;
            return small;
        }

        /// <summary>
        /// The inverse of a small lower-triangular block by forward substitution in double,
        /// <c>M_jj = 1/L_jj</c>, <c>M_ij = −(Σ_{j≤p&lt;i} L_ip·M_pj) / L_ii</c>, as a dense
        /// Nb-strided matrix with explicit zeros above the diagonal.
        /// </summary>
        public float* SmallInverse(float* l, int n, nint ldl)
        {
            for (int j = 0; j < n; j++)
            {
                work[j * Nb + j] = 1.0 / l[j * ldl + j];
                for (int i = j + 1; i < n; i++)
                {
                    double sum = 0;
                    for (int p = j; p < i; p++) sum += l[i * ldl + p] * work[p * Nb + j];
                    work[i * Nb + j] = -sum / l[i * ldl + i];
                }
            }
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++) small[i * Nb + j] = j <= i ? (float)work[i * Nb + j] : 0f;
            return small;
        }
    }
}
