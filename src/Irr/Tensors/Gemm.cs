using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Irr.Tensors;

/// <summary>Whether a GEMM operand is used as stored or transposed.</summary>
public enum Transpose
{
    /// <summary>Use the matrix as stored.</summary>
    No,
    /// <summary>Use the transpose of the stored matrix.</summary>
    Yes,
}

/// <summary>
/// Single-precision matrix multiplication on row-major spans:
/// <c>C (m×n) = alpha · op(A) (m×k) · op(B) (k×n) + beta · C</c>.
/// </summary>
/// <remarks>
/// <para>
/// The implementation follows the BLIS/GotoBLAS design: C is computed in blocks of
/// <c>MC × NC</c> with k split into slices of <c>KC</c>; each slice of B is packed once into NR-wide
/// panels that stay in L2/L3, each block of A into MR-high panels that stay in L2, and a
/// register-blocked FMA micro-kernel (<see cref="GemmKernels"/>) multiplies one MR × NR tile at a
/// time. Packing absorbs the transposes, so all four (op(A), op(B)) combinations run the same kernel.
/// </para>
/// <para>
/// Work is split over the <see cref="ThreadTeam"/> into independent bands of C (rows when C is
/// tall, columns when it is wide). The order of the k-summation does not depend on the split, so
/// the result is identical for any number of threads. C must not overlap A or B.
/// </para>
/// </remarks>
public static unsafe class Gemm
{
    // Block sizes, tuned on Zen 3 (32 KiB L1d, 512 KiB L2 per core, 32 MiB L3); see docs/PERFORMANCE.md.
    internal const int KcSlice = 256;       // k-slice: an NR-panel of B (KC·NR·4 bytes) is 16 KiB with AVX2, 32 KiB with AVX-512
    internal const int MC = 120;            // rows of packed A per block (MC·KC·4 = 120 KiB, in L2)
    internal const int NC = 4096;           // columns of packed B per block (KC·NC·4 = 4 MiB, in L3)

    /// <summary>
    /// The k-slice, 256 for both kernels. C accumulates one slice at a time (the kernel's sum over the slice, then
    /// added to C), so the slice boundaries are where the rounding of a long dot product happens: one slice length for
    /// every kernel makes the 6×16 (AVX2) and 6×32 (AVX-512) kernels give the same bits, and training, scoring and
    /// generation the same results on both kinds of CPU.
    /// </summary>
    internal static int KC(GemmKernel kernel) => KcSlice;

    /// <summary>
    /// Below this many flops per thread a product runs on fewer threads (waking the team costs more). Measured on the
    /// quick demo (hidden 64, 2 cores): 2·48³ 27.0 s, 2·96³ 24.3 s, 2·128³ 22.0 s, 2·256³ 21.7 s, one thread 23.9 s; same results.
    /// </summary>
    internal const double ParallelFlops = 2.0 * 128 * 128 * 128;

    /// <summary>C (m×n) = alpha · op(A) · op(B) + beta · C, all row-major with leading dimensions lda, ldb, ldc.</summary>
    /// <param name="transA">op(A) = A (m×k, stored m rows of lda) or Aᵀ (A stored k rows of lda).</param>
    /// <param name="transB">op(B) = B (k×n, stored k rows of ldb) or Bᵀ (B stored n rows of ldb).</param>
    /// <param name="m">Rows of C.</param>
    /// <param name="n">Columns of C.</param>
    /// <param name="k">The shared dimension.</param>
    /// <param name="alpha">Scale of the product.</param>
    /// <param name="a">A, row-major.</param>
    /// <param name="lda">Row stride of A as stored.</param>
    /// <param name="b">B, row-major.</param>
    /// <param name="ldb">Row stride of B as stored.</param>
    /// <param name="beta">Scale of the existing C; when 0, C is not read (it may hold NaN).</param>
    /// <param name="c">C, row-major.</param>
    /// <param name="ldc">Row stride of C.</param>
    public static void Compute(Transpose transA, Transpose transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc)
        => Checked(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, lowerOnly: false);

    /// <summary>
    /// The lower triangle (diagonal included) of <c>C (n×n) = alpha · op(A) · op(B) + beta · C</c>, at
    /// about half the cost of <see cref="Compute"/>. Entries above the diagonal are left unspecified
    /// (tiles that cross the diagonal are computed whole): causal attention scores, for example.
    /// </summary>
    public static void ComputeLower(Transpose transA, Transpose transB, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc)
        => Checked(transA, transB, n, n, k, alpha, a, lda, b, ldb, beta, c, ldc, lowerOnly: true);

    // The operands' sizes checked against the shapes, then the blocked product on every thread.
    private static void Checked(Transpose transA, Transpose transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc, bool lowerOnly)
    {
        CheckOperand(nameof(a), a.Length, transA == Transpose.No ? m : k, transA == Transpose.No ? k : m, lda);
        CheckOperand(nameof(b), b.Length, transB == Transpose.No ? k : n, transB == Transpose.No ? n : k, ldb);
        CheckOperand(nameof(c), c.Length, m, n, ldc);
        fixed (float* pa = a, pb = b, pc = c)
            Run(GemmKernels.Best, transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc, lowerOnly, ThreadTeam.DefaultThreads);
    }

    /// <summary>
    /// The Linear layer <c>y = x · Wᵀ</c>: C (m×n) (+)= A (m×k) · Bᵀ where B is stored n×k, all contiguous.
    /// </summary>
    public static void MatMulTransposeB(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int n, int k, bool accumulate = false)
        => Compute(Transpose.No, Transpose.Yes, m, n, k, 1f, a, k, b, k, accumulate ? 1f : 0f, c, n);

    /// <summary>C (m×n) (+)= A (m×k) · B (k×n), all contiguous.</summary>
    public static void MatMul(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int n, int k, bool accumulate = false)
        => Compute(Transpose.No, Transpose.No, m, n, k, 1f, a, k, b, n, accumulate ? 1f : 0f, c, n);

    /// <summary>
    /// The weight gradient <c>dW = dyᵀ · x</c>: C (m×n) (+)= Aᵀ · B where A is stored k×m and B k×n, all contiguous.
    /// </summary>
    public static void MatMulTransposeA(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int n, int k, bool accumulate = false)
        => Compute(Transpose.Yes, Transpose.No, m, n, k, 1f, a, m, b, n, accumulate ? 1f : 0f, c, n);

    /// <summary>Checks that a row-major rows×cols operand with row stride ld fits in a span of the given length.</summary>
    internal static void CheckOperand(string name, int length, int rows, int cols, int ld)
    {
        if (rows < 0 || cols < 0)
            throw new ArgumentOutOfRangeException(name, $"Matrix {name} has a negative dimension ({rows}×{cols}).");
        if (ld < Math.Max(1, cols))
            throw new ArgumentOutOfRangeException(name, $"Leading dimension of {name} is {ld}, smaller than its {cols} columns.");
        long need = rows == 0 || cols == 0 ? 0 : (long)(rows - 1) * ld + cols;
        if (length < need)
            throw new ArgumentException($"Matrix {name} ({rows}×{cols}, leading dimension {ld}) needs {need} elements but the span holds {length}.", name);
    }

    /// <summary>
    /// The driver. With <paramref name="lowerOnly"/> (m = n), only tiles that meet the lower triangle
    /// of C (diagonal included) are computed; tiles crossing the diagonal are computed whole.
    /// </summary>
    /// <remarks>
    /// Threads get independent blocks of C: bands of rows when C is tall (each thread packs all of
    /// B it needs) or of columns when it is wide (each packs all of A), so they never wait on each
    /// other; the redundant packing is O(k·(m+n)) against O(m·n·k) of multiply-adds.
    /// </remarks>
    internal static void Run(GemmKernel kernel, Transpose ta, Transpose tb, int m, int n, int k,
        float alpha, float* a, nint lda, float* b, nint ldb, float beta, float* c, nint ldc, bool lowerOnly, int maxThreads)
    {
        if (m == 0 || n == 0) return;
        if (k == 0 || alpha == 0f)
        {
            ScaleC(m, n, beta, c, ldc, lowerOnly);
            return;
        }
        var team = ThreadTeam.Shared;
        int threads = Math.Min(maxThreads, team.Size);
        double flops = 2.0 * m * n * k * (lowerOnly ? 0.5 : 1.0);
        if (flops < ParallelFlops * threads) threads = Math.Max(1, Math.Min(threads, (int)(flops / ParallelFlops)));

        int mr = GemmKernels.MR, nr = GemmKernels.NR(kernel);
        var op = new Operands(kernel, ta, tb, k, alpha, a, lda, b, ldb, beta, c, ldc, lowerOnly);
        if (threads == 1)
        {
            op.Block(0, m, 0, n);
            return;
        }
        bool byRows = lowerOnly || m >= n;
        int units = byRows ? (m + mr - 1) / mr : (n + nr - 1) / nr;
        threads = Math.Min(threads, units);
        team.Run(threads, (tid, count) =>
        {
            if (!byRows)
            {
                var (qs, qe) = ThreadTeam.Split(units, count, tid);
                op.Block(0, m, qs * nr, Math.Min(qe * nr, n));
            }
            else
            {
                // Rows for a triangle are split at n·√(t/T), so every band holds the same area.
                int Edge(int t) => t == count ? m : lowerOnly
                    ? (int)(Math.Sqrt((double)t / count) * units)
                    : ThreadTeam.Split(units, count, t).Start;
                int i0 = Math.Min(Edge(tid) * mr, m), i1 = Math.Min(Edge(tid + 1) * mr, m);
                if (i0 < i1) op.Block(i0, i1, 0, lowerOnly ? Math.Min(i1, n) : n);
            }
        });
    }

    /// <summary>One product's operands; <see cref="Block"/> computes a block of C on the calling thread.</summary>
    private sealed class Operands(GemmKernel kernel, Transpose ta, Transpose tb, int k,
        float alpha, float* a, nint lda, float* b, nint ldb, float beta, float* c, nint ldc, bool lowerOnly)
    {
        private readonly int nr = GemmKernels.NR(kernel), kcMax = KC(kernel);

        // C[i0:i1, j0:j1] = alpha · op(A)[i0:i1, :] · op(B)[:, j0:j1] + beta · C[i0:i1, j0:j1]
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Block(int i0, int i1, int j0, int j1)
        {
            var packedA = PackBuffer.ForCurrentThread(ref PackBuffer.A, (nint)MC * kcMax + 8);
            var packedB = PackBuffer.ForCurrentThread(ref PackBuffer.B, (nint)kcMax * NC);
            float* ap = packedA.Pointer, bp = packedB.Pointer;
            for (int jc = j0; jc < j1; jc += NC)
            {
                int nc = Math.Min(NC, j1 - jc);
                for (int pc = 0; pc < k; pc += kcMax)
                {
                    int kc = Math.Min(kcMax, k - pc);
                    PackB(tb, b, ldb, pc, kc, jc, nc, nr, bp);
                    for (int ic = i0; ic < i1; ic += MC)
                    {
                        int mc = Math.Min(MC, i1 - ic);
                        if (lowerOnly && ic + mc - 1 < jc) continue; // block lies above the diagonal
                        PackA(ta, a, lda, ic, mc, pc, kc, ap);
                        Macro(ic, mc, jc, nc, kc, ap, bp, pc == 0 ? beta : 1f);
                    }
                }
            }
            GC.KeepAlive(packedA);
            GC.KeepAlive(packedB);
        }

        // C[ic:ic+mc, jc:jc+nc] = alpha · Ap · Bp + beta · C, tile by tile.
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Macro(int ic, int mc, int jc, int nc, int kc, float* ap, float* bp, float beta)
        {
            const int mr = GemmKernels.MR;
            for (int jp = 0; jp < nc; jp += nr)
            {
                int ncols = Math.Min(nr, nc - jp), col = jc + jp;
                float* bPanel = bp + (nint)jp * kc;
                for (int ir = 0; ir < mc; ir += mr)
                {
                    int row = ic + ir, nrows = Math.Min(mr, mc - ir);
                    if (lowerOnly && row + nrows - 1 < col) continue; // tile strictly above the diagonal
                    float* aPanel = ap + (nint)ir * kc;
                    float* ct = c + row * ldc + col;
                    if (nrows == mr && ncols == nr) GemmKernels.Full(kernel, kc, aPanel, bPanel, ct, ldc, alpha, beta);
                    else GemmKernels.Edge(kernel, kc, aPanel, bPanel, ct, ldc, nrows, ncols, alpha, beta);
                }
            }
        }
    }

    // Ap[panel][k·MR + r] = op(A)[i0 + panel·MR + r, p0 + k], zero beyond row mc.
    // The last 8×8 transpose of a panel may write 2 floats past it (see Transpose8x8); the buffer has slack.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackA(Transpose ta, float* a, nint lda, int i0, int mc, int p0, int kc, float* dst)
    {
        const int mr = GemmKernels.MR;
        for (int ip = 0; ip < mc; ip += mr, dst += (nint)mr * kc)
        {
            int rows = Math.Min(mr, mc - ip);
            if (ta == Transpose.No)
            {
                // op(A) = A (m×k): rows of A become columns of the panel, eight k at a time.
                float* src = a + (i0 + ip) * lda + p0;
                int p = 0;
                if (Avx.IsSupported)
                    for (; p + 8 <= kc; p += 8) Transpose8x8(src + p, lda, rows, dst + p * mr, mr);
                for (; p < kc; p++)
                    for (int r = 0; r < mr; r++) dst[p * mr + r] = r < rows ? src[r * lda + p] : 0f;
            }
            else
            {
                // op(A) = Aᵀ, A stored k×m: each k contributes MR contiguous values.
                float* src = a + p0 * lda + i0 + ip;
                for (int p = 0; p < kc; p++, src += lda)
                    for (int r = 0; r < mr; r++) dst[p * mr + r] = r < rows ? src[r] : 0f;
            }
        }
    }

    // Bp[panel][k·NR + j] = op(B)[p0 + k, j0 + panel·NR + j], zero beyond column nc.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackB(Transpose tb, float* b, nint ldb, int p0, int kc, int j0, int nc, int nr, float* bp)
    {
        int panels = (nc + nr - 1) / nr;
        if (tb == Transpose.No)
        {
            // op(B) = B (k×n): walk B row by row (sequential reads), scattering NR-wide pieces to the panels.
            for (int p = 0; p < kc; p++)
            {
                float* src = b + (p0 + p) * ldb + j0;
                for (int q = 0; q < panels; q++)
                {
                    float* dst = bp + ((nint)q * kc + p) * nr;
                    int jp = q * nr, cols = Math.Min(nr, nc - jp);
                    if (cols == nr)
                        for (int j = 0; j < nr; j += 8) Vector256.Store(Vector256.Load(src + jp + j), dst + j);
                    else
                        for (int j = 0; j < nr; j++) dst[j] = j < cols ? src[jp + j] : 0f;
                }
            }
            return;
        }
        // op(B) = Bᵀ, B stored n×k (a weight W[out, in]): eight rows of W at a time, transposed.
        for (int q = 0; q < panels; q++)
        {
            float* dst = bp + (nint)q * nr * kc;
            int jp = q * nr, cols = Math.Min(nr, nc - jp);
            for (int j8 = 0; j8 < nr; j8 += 8)
            {
                int rows = Math.Clamp(cols - j8, 0, 8);
                float* src = b + (j0 + jp + j8) * ldb + p0;
                int p = 0;
                if (Avx.IsSupported)
                    for (; p + 8 <= kc; p += 8) Transpose8x8(src + p, ldb, rows, dst + p * nr + j8, nr);
                for (; p < kc; p++)
                    for (int j = 0; j < 8; j++) dst[p * nr + j8 + j] = j < rows ? src[j * ldb + p] : 0f;
            }
        }
    }

    /// <summary>
    /// Reads an 8-column strip of <paramref name="rows"/> ≤ 8 rows (missing rows read as zero) and
    /// writes its transpose: column t goes to <c>dst + t·dstStride</c> as 8 floats. With a stride
    /// below 8 the stores overlap, later ones overwriting the zero lanes of earlier ones, and the
    /// last store reaches <c>8 − dstStride</c> floats past <c>dst + 8·dstStride</c>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8(float* src, nint srcStride, int rows, float* dst, nint dstStride)
    {
        Vector256<float> r0 = Row(0), r1 = Row(1), r2 = Row(2), r3 = Row(3), r4 = Row(4), r5 = Row(5), r6 = Row(6), r7 = Row(7);
        // Interleave pairs of rows, then pairs of pairs, then swap 128-bit halves.
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var s0 = Avx.Shuffle(t0, t2, 0x44); var s1 = Avx.Shuffle(t0, t2, 0xEE);
        var s2 = Avx.Shuffle(t1, t3, 0x44); var s3 = Avx.Shuffle(t1, t3, 0xEE);
        var s4 = Avx.Shuffle(t4, t6, 0x44); var s5 = Avx.Shuffle(t4, t6, 0xEE);
        var s6 = Avx.Shuffle(t5, t7, 0x44); var s7 = Avx.Shuffle(t5, t7, 0xEE);
        Vector256.Store(Avx.Permute2x128(s0, s4, 0x20), dst);
        Vector256.Store(Avx.Permute2x128(s1, s5, 0x20), dst + dstStride);
        Vector256.Store(Avx.Permute2x128(s2, s6, 0x20), dst + 2 * dstStride);
        Vector256.Store(Avx.Permute2x128(s3, s7, 0x20), dst + 3 * dstStride);
        Vector256.Store(Avx.Permute2x128(s0, s4, 0x31), dst + 4 * dstStride);
        Vector256.Store(Avx.Permute2x128(s1, s5, 0x31), dst + 5 * dstStride);
        Vector256.Store(Avx.Permute2x128(s2, s6, 0x31), dst + 6 * dstStride);
        Vector256.Store(Avx.Permute2x128(s3, s7, 0x31), dst + 7 * dstStride);

        Vector256<float> Row(int r) => r < rows ? Vector256.Load(src + r * srcStride) : Vector256<float>.Zero;
    }

    // C = beta · C (the whole of C, or its lower triangle); beta = 0 writes zeros without reading.
    private static void ScaleC(int m, int n, float beta, float* c, nint ldc, bool lowerOnly)
    {
        for (int i = 0; i < m; i++)
        {
            var row = new Span<float>(c + i * ldc, lowerOnly ? Math.Min(i + 1, n) : n);
            if (beta == 0f) row.Clear();
            else if (beta != 1f) System.Numerics.Tensors.TensorPrimitives.Multiply(row, beta, row);
        }
    }

    /// <summary>A 64-byte aligned scratch buffer owned by one thread, freed when the thread's reference is collected.</summary>
    internal sealed class PackBuffer
    {
        [ThreadStatic] internal static PackBuffer? A;
        [ThreadStatic] internal static PackBuffer? B;

        public float* Pointer { get; }
        private readonly nint length;

        private PackBuffer(nint length)
        {
            this.length = length;
            Pointer = (float*)NativeMemory.AlignedAlloc((nuint)(length * sizeof(float)), 64);
        }

        ~PackBuffer() => NativeMemory.AlignedFree(Pointer);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static PackBuffer ForCurrentThread(ref PackBuffer? slot, nint length)
        {
            var buffer = slot;
            if (buffer is null || buffer.length < length) slot = buffer = new PackBuffer(length);
            return buffer;
        }
    }
}
