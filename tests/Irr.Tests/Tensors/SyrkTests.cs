using Irr.Tensors;

namespace Irr.Tests.Tensors;

public class SyrkTests
{
    // Same bound as the GEMM tests: a k-term float32 dot product with FMA is within
    // (k + 4)·u·Σ|terms| of the exact value (Higham §3.1), with u = 2⁻²⁴.
    private static double Bound(int k, double magnitude) => (k + 4) * Math.Pow(2, -24) * magnitude + 1e-30;

    [Theory]
    [InlineData(1, 1)]
    [InlineData(7, 3)]
    [InlineData(33, 100)]
    [InlineData(150, 17)]
    [InlineData(301, 260)]
    public void AddXtXMatchesTheNaiveSum(int cols, int rows)
    {
        var rng = new Random(cols * 1000 + rows);
        float[] x = Reference.Uniform(rng, rows * cols);
        // Start from a symmetric H.
        var h = new float[cols * cols];
        for (int i = 0; i < cols; i++)
            for (int j = 0; j <= i; j++) h[i * cols + j] = h[j * cols + i] = (float)rng.NextDouble();
        var (expected, magnitude) = Reference.Gemm(true, false, cols, cols, rows, 0.5f, x, cols, x, cols, 1f, h, cols);
        Syrk.AddXtX(x, rows, cols, 0.5f, h);
        for (int i = 0; i < cols; i++)
            for (int j = 0; j < cols; j++)
            {
                Assert.True(Math.Abs(h[i * cols + j] - expected[i * cols + j]) <= Bound(rows, magnitude[i * cols + j]),
                    $"H[{i},{j}] = {h[i * cols + j]}, expected {expected[i * cols + j]}");
                Assert.Equal(h[i * cols + j], h[j * cols + i]);
            }
    }

    [Theory]
    [InlineData(5, 9)]
    [InlineData(70, 40)]
    [InlineData(200, 300)]
    public void AATransposeFormWithBetaAndLeadingDimension(int n, int k)
    {
        var rng = new Random(n + k);
        int lda = k + 2, ldc = n + 1;
        float[] a = Reference.Uniform(rng, n * lda);
        var c = new float[n * ldc];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++) c[i * ldc + j] = c[j * ldc + i] = (float)rng.NextDouble();
        var (expected, magnitude) = Reference.Gemm(false, true, n, n, k, -1f, a, lda, a, lda, 2f, c, ldc);
        Syrk.Update(Transpose.No, n, k, -1f, a, lda, 2f, c, ldc);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                Assert.True(Math.Abs(c[i * ldc + j] - expected[i * n + j]) <= Bound(k, magnitude[i * n + j]),
                    $"C[{i},{j}] = {c[i * ldc + j]}, expected {expected[i * n + j]}");
    }
}
