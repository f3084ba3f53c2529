namespace Irr.Tests.Tensors;

/// <summary>
/// Straightforward reference implementations with double accumulation: the independent side of
/// every numeric-core test. Row-major, no blocking, no SIMD, no threads.
/// </summary>
internal static class Reference
{
    /// <summary>Element (i, j) of op(X) for a row-major X with leading dimension ld.</summary>
    public static float At(float[] x, int ld, bool transposed, int i, int j) => transposed ? x[j * ld + i] : x[i * ld + j];

    /// <summary>
    /// C = alpha·op(A)·op(B) + beta·C in double, together with the magnitude
    /// |alpha|·Σ_k |op(A)_ik|·|op(B)_kj| + |beta·C_ij| that bounds the float32 rounding error.
    /// </summary>
    public static (double[] C, double[] Magnitude) Gemm(bool ta, bool tb, int m, int n, int k,
        float alpha, float[] a, int lda, float[] b, int ldb, float beta, float[] c, int ldc)
    {
        var r = new double[m * n];
        var mag = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0, s_abs = 0;
                for (int p = 0; p < k; p++)
                {
                    double x = At(a, lda, ta, i, p), y = At(b, ldb, tb, p, j);
                    s += x * y;
                    s_abs += Math.Abs(x * y);
                }
                double old = beta == 0 ? 0 : (double)beta * c[i * ldc + j];
                r[i * n + j] = alpha * s + old;
                mag[i * n + j] = Math.Abs(alpha) * s_abs + Math.Abs(old);
            }
        return (r, mag);
    }

    /// <summary>Random floats uniform in [−1, 1) from a seeded generator.</summary>
    public static float[] Uniform(Random rng, int count)
    {
        var x = new float[count];
        for (int i = 0; i < count; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        return x;
    }

    /// <summary>A = XᵀX/m + δI for X (m×n) standard-normal-ish: symmetric positive definite.</summary>
    public static double[] RandomSpd(Random rng, int n, double delta)
    {
        int m = 2 * n;
        var x = new double[m * n];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextDouble() * 2 - 1;
        var a = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++)
            {
                double s = 0;
                for (int p = 0; p < m; p++) s += x[p * n + i] * x[p * n + j];
                a[i * n + j] = a[j * n + i] = s / m + (i == j ? delta : 0);
            }
        return a;
    }

    /// <summary>Frobenius norm.</summary>
    public static double Norm(double[] x)
    {
        double s = 0;
        foreach (double v in x) s += v * v;
        return Math.Sqrt(s);
    }

    /// <summary>C = A·B for square n×n double matrices.</summary>
    public static double[] MatMul(double[] a, double[] b, int n)
    {
        var c = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int p = 0; p < n; p++)
            {
                double x = a[i * n + p];
                if (x == 0) continue;
                for (int j = 0; j < n; j++) c[i * n + j] += x * b[p * n + j];
            }
        return c;
    }

    /// <summary>Aᵀ for a square n×n double matrix.</summary>
    public static double[] Transposed(double[] a, int n)
    {
        var t = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) t[j * n + i] = a[i * n + j];
        return t;
    }

    public static double[] ToDouble(float[] x) => Array.ConvertAll(x, v => (double)v);
    public static float[] ToFloat(double[] x) => Array.ConvertAll(x, v => (float)v);
}
