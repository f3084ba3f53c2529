using Irr.Tensors;

namespace Irr.Tests.Tensors;

public unsafe class GemmTests
{
    // Tolerance. With fused multiply-adds each product enters the running sum with one rounding, so
    // a k-term dot product in float32 is within γ_k·Σ|a_ik·b_kj| of the exact value, γ_k = k·u/(1−k·u),
    // u = 2⁻²⁴ (Higham, Accuracy and Stability of Numerical Algorithms, §3.1). The alpha scaling, the
    // beta·C product and the final addition add at most three more roundings. The reference is exact
    // to ~1e−16 relative, so (k + 4)·u·magnitude is a worst-case bound the kernel may never exceed;
    // an indexing or packing error is of the order of the magnitude itself.
    private static double Bound(int k, double magnitude) => (k + 4) * Math.Pow(2, -24) * magnitude + 1e-30;

    public static TheoryData<int, int, int> Shapes() => new()
    {
        { 1, 1, 1 }, { 1, 1, 7 }, { 1, 17, 1 }, { 13, 1, 1 }, { 2, 3, 5 },
        { 6, 16, 8 }, { 6, 32, 8 }, { 7, 17, 13 }, { 5, 15, 3 }, { 12, 48, 1 },
        { 31, 37, 41 }, { 97, 89, 83 }, { 150, 33, 260 },
        { 1, 131, 257 }, { 3, 50, 513 }, { 127, 255, 64 }, { 200, 7, 19 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void AllTransposeCombinationsMatchTheNaiveLoop(int m, int n, int k)
    {
        var rng = new Random(HashCode.Combine(m, n, k, 1));
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
                Check(rng, ta, tb, m, n, k, alpha: 1f, beta: 0f, pad: 0, GemmKernels.Best, threads: 2);
    }

    [Theory]
    [InlineData(1f, 1f)]
    [InlineData(-0.5f, 2f)]
    [InlineData(3f, -1f)]
    [InlineData(0f, 0.5f)]
    public void AlphaBetaAndLeadingDimensionsAreHonoured(float alpha, float beta)
    {
        var rng = new Random(7);
        foreach (var (m, n, k) in new[] { (19, 23, 29), (64, 70, 300), (6, 16, 1) })
            foreach (bool ta in new[] { false, true })
                foreach (bool tb in new[] { false, true })
                    Check(rng, ta, tb, m, n, k, alpha, beta, pad: 3, GemmKernels.Best, threads: 2);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void RowAndDepthBlockBoundariesAreCrossed(bool avx512)
    {
        var kernel = avx512 ? GemmKernel.V512 : GemmKernel.V256;
        // m > MC and k > 2·KC exercise the row-block loop and the beta = 1 accumulation across k-slices.
        var rng = new Random(17);
        int m = Gemm.MC + 7, k = 2 * Gemm.KC(kernel) + 3;
        Check(rng, false, true, m, 45, k, 1f, 0.5f, pad: 2, kernel, threads: 2);
        Check(rng, true, false, m, 19, k, -1f, 0f, pad: 0, kernel, threads: 1);
    }

    [Fact]
    public void ColumnsBeyondOneBlockOfPackedB()
    {
        // n > NC exercises the outer column loop; small m and k keep it quick.
        var rng = new Random(11);
        Check(rng, false, true, 7, Gemm.NC + 37, 5, 1f, 1f, pad: 0, GemmKernels.Best, threads: 2);
        Check(rng, true, false, 13, Gemm.NC + 5, 3, 1f, 0f, pad: 0, GemmKernels.Best, threads: 1);
    }

    [Theory]
    [InlineData(7, 33, 9)]
    [InlineData(13, 64, 31)]
    [InlineData(1, 70, 5)]
    public void TheAvx512KernelIsCorrectEvenWhereItIsEmulated(int m, int n, int k)
    {
        var rng = new Random(13);
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
                Check(rng, ta, tb, m, n, k, 1.5f, 0.5f, pad: 1, GemmKernel.V512, threads: 2);
    }

    [Fact]
    public void ZeroBetaDoesNotReadC()
    {
        float[] a = [1, 2, 3, 4], b = [5, 6, 7, 8], c = [float.NaN, float.NaN, float.NaN, float.NaN];
        Gemm.MatMul(a, b, c, 2, 2, 2);
        // [[1,2],[3,4]]·[[5,6],[7,8]] worked by hand.
        Assert.Equal([19f, 22f, 43f, 50f], c);
    }

    [Fact]
    public void EmptyInnerDimensionScalesC()
    {
        float[] c = [1, 2, 3, 4, 5, 6];
        Gemm.Compute(Transpose.No, Transpose.No, 2, 3, 0, 1f, [], 1, [], 3, 2f, c, 3);
        Assert.Equal([2f, 4f, 6f, 8f, 10f, 12f], c);
        Gemm.Compute(Transpose.No, Transpose.No, 2, 3, 0, 1f, [], 1, [], 3, 0f, c, 3);
        Assert.All(c, v => Assert.Equal(0f, v));
    }

    [Fact]
    public void NamedFormsComputeTheirProducts()
    {
        // A (2×3), W (4×3): y = A·Wᵀ (2×4); A·B with B (3×4); Aᵀ·B with A (3×2), B (3×4).
        float[] a = [1, 2, 3, 4, 5, 6];
        float[] w = [1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1];
        var y = new float[8];
        Gemm.MatMulTransposeB(a, w, y, 2, 4, 3);
        Assert.Equal([1f, 2f, 3f, 6f, 4f, 5f, 6f, 15f], y);
        Gemm.MatMulTransposeB(a, w, y, 2, 4, 3, accumulate: true);
        Assert.Equal([2f, 4f, 6f, 12f, 8f, 10f, 12f, 30f], y);

        float[] b = [1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1];
        var ab = new float[8];
        Gemm.MatMul(a, b, ab, 2, 4, 3);
        Assert.Equal([1f, 2f, 3f, 6f, 4f, 5f, 6f, 15f], ab);

        var atb = new float[8];
        Gemm.MatMulTransposeA(a, b, atb, 2, 4, 3); // A read as 3×2: [[1,2],[3,4],[5,6]]
        Assert.Equal([1f, 3f, 5f, 9f, 2f, 4f, 6f, 12f], atb);
    }

    [Fact]
    public void ResultsDoNotDependOnTheThreadCount()
    {
        var rng = new Random(3);
        int m = 301, n = 157, k = 530;
        float[] a = Reference.Uniform(rng, m * k), b = Reference.Uniform(rng, n * k);
        var c1 = new float[m * n];
        var c2 = new float[m * n];
        fixed (float* pa = a, pb = b, p1 = c1, p2 = c2)
        {
            Gemm.Run(GemmKernels.Best, Transpose.No, Transpose.Yes, m, n, k, 1f, pa, k, pb, k, 0f, p1, n, false, 1);
            Gemm.Run(GemmKernels.Best, Transpose.No, Transpose.Yes, m, n, k, 1f, pa, k, pb, k, 0f, p2, n, false, 2);
        }
        Assert.Equal(c1, c2);
    }

    [Theory]
    [InlineData(false, true, 37, 45, 600, 1f, 0f)]
    [InlineData(true, false, 13, 70, 513, -0.5f, 2f)]
    [InlineData(false, false, 130, 33, 257, 1.5f, 1f)]
    [InlineData(true, true, 6, 16, 1, 1f, 0.5f)]
    public void BothKernelsGiveTheBitsOfOneScalarOrder(bool ta, bool tb, int m, int n, int k, float alpha, float beta)
    {
        // The documented order, as a plain loop: per k-slice of 256 a fused multiply-add chain from 0, then
        // C = fma(chain, alpha, C·beta) for the first slice and fma(chain, alpha, C) for the others (beta 0: chain·alpha).
        // Both kernels (AVX2's 6×16 and AVX-512's 6×32, emulated where the CPU lacks it) must give exactly these bits,
        // so that results are the same on every CPU.
        var rng = new Random(HashCode.Combine(m, n, k, 5));
        int lda = ta ? m : k, ldb = tb ? k : n;
        float[] a = Reference.Uniform(rng, m * k), b = Reference.Uniform(rng, n * k), c0 = Reference.Uniform(rng, m * n);
        var expected = (float[])c0.Clone();
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                float cij = expected[i * n + j];
                for (int p0 = 0; p0 < k; p0 += 256)
                {
                    float chain = 0f;
                    for (int p = p0; p < Math.Min(k, p0 + 256); p++)
                        chain = MathF.FusedMultiplyAdd(ta ? a[p * lda + i] : a[i * lda + p], tb ? b[j * ldb + p] : b[p * ldb + j], chain);
                    float scale = p0 == 0 ? beta : 1f;
                    cij = scale == 0f ? chain * alpha : MathF.FusedMultiplyAdd(chain, alpha, cij * scale);
                }
                expected[i * n + j] = cij;
            }
        foreach (var kernel in new[] { GemmKernel.V256, GemmKernel.V512 })
        {
            var c = (float[])c0.Clone();
            fixed (float* pa = a, pb = b, pc = c)
                Gemm.Run(kernel, ta ? Transpose.Yes : Transpose.No, tb ? Transpose.Yes : Transpose.No, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, n, false, 2);
            for (int x = 0; x < c.Length; x++)
                Assert.True(BitConverter.SingleToInt32Bits(c[x]) == BitConverter.SingleToInt32Bits(expected[x]),
                    $"{kernel}: C[{x / n},{x % n}] = {c[x]:R}, the scalar order gives {expected[x]:R}");
        }
    }

    [Fact]
    public void OperandsThatDoNotFitAreRejected()
    {
        var big = new float[100];
        var e = Assert.Throws<ArgumentException>(() => Gemm.MatMul(new float[5], big, big, 2, 3, 3));
        Assert.Contains("needs 6 elements", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.Compute(Transpose.No, Transpose.No, 2, 2, 3, 1f, big, 2, big, 2, 0f, big, 2));
    }

    private static void Check(Random rng, bool ta, bool tb, int m, int n, int k, float alpha, float beta, int pad, GemmKernel kernel, int threads)
    {
        int aRows = ta ? k : m, aCols = ta ? m : k, bRows = tb ? n : k, bCols = tb ? k : n;
        int lda = aCols + pad, ldb = bCols + pad, ldc = n + pad;
        float[] a = Reference.Uniform(rng, aRows * lda), b = Reference.Uniform(rng, bRows * ldb), c = Reference.Uniform(rng, m * ldc);
        var (expected, magnitude) = Reference.Gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        var before = (float[])c.Clone();
        fixed (float* pa = a, pb = b, pc = c)
            Gemm.Run(kernel, ta ? Transpose.Yes : Transpose.No, tb ? Transpose.Yes : Transpose.No, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc, false, threads);
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double err = Math.Abs(c[i * ldc + j] - expected[i * n + j]);
                Assert.True(err <= Bound(k, magnitude[i * n + j]),
                    $"{kernel} ta={ta} tb={tb} m={m} n={n} k={k}: C[{i},{j}] = {c[i * ldc + j]}, expected {expected[i * n + j]} (error {err:E2})");
            }
            for (int j = n; j < ldc; j++)
                Assert.True(before[i * ldc + j] == c[i * ldc + j], $"padding C[{i},{j}] was written");
        }
    }
}
