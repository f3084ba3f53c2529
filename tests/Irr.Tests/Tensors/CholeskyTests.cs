using Irr.Tensors;

namespace Irr.Tests.Tensors;

public class CholeskyTests
{
    private const double U = 1.0 / (1 << 24); // unit roundoff of float32

    // Tolerances. Worst-case rounding-error bounds grow like n·u (u = 2⁻²⁴) and are ~1000× above
    // what float32 actually shows at these sizes, so they would let real bugs through. We use the
    // probabilistic bounds of Higham & Mary (SIAM J. Sci. Comput. 41(5), 2019): with rounding errors
    // modelled as independent, a length-n computation's error is below λ·√n·u (times the usual
    // magnitude) with probability ≥ 1 − 2n·exp(−λ²/2); λ = 6 makes a false alarm < 1e−5 even at
    // n = 512. The magnitudes are the classical ones:
    //   factor:   |L·Lᵀ − A| ≤ γ·|L|·|Lᵀ|                      (Higham, Accuracy and Stability, Thm 10.3)
    //   inverse:  ‖A·X − I‖ ≤ γ·κ₂(A)·√n, and ‖UᵀU − A⁻¹‖ ≤ γ·κ₂(A)·‖A⁻¹‖   (Higham §14.3)
    // κ₂ is computed in double. An indexing, blocking or sign error shows up as an O(1) residual.
    private static double Gamma(int n) => 6 * Math.Sqrt(Math.Max(n, 1)) * U;

    public static TheoryData<int> Sizes() => new() { 1, 2, 3, 17, 63, 64, 65, 100, 129, 200, 257, 512 };

    [Theory]
    [MemberData(nameof(Sizes))]
    public void FactorReproducesTheMatrix(int n)
    {
        var (a, af) = Spd(n, seed: n);
        var l = (float[])af.Clone();
        var r = Cholesky.Factor(l, n);
        Assert.True(r.Success, r.ToString());
        for (int i = 0; i < n; i++)
        {
            Assert.True(l[i * n + i] > 0, $"L[{i},{i}] = {l[i * n + i]}");
            for (int j = i + 1; j < n; j++) Assert.True(l[i * n + j] == 0f, $"L[{i},{j}] above the diagonal is {l[i * n + j]}");
        }
        var ld = Reference.ToDouble(l);
        var llt = Reference.MatMul(ld, Reference.Transposed(ld, n), n);
        var abs = Array.ConvertAll(ld, Math.Abs);
        double magnitude = Reference.Norm(Reference.MatMul(abs, Reference.Transposed(abs, n), n));
        double residual = Reference.Norm(Sub(llt, a));
        Assert.True(residual <= Gamma(n) * magnitude, $"n={n}: ‖LLᵀ − A‖ = {residual:E2} > {Gamma(n) * magnitude:E2}");
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void InverseFromFactorInvertsTheMatrix(int n)
    {
        var (a, af) = Spd(n, seed: 100 + n);
        var x = (float[])af.Clone();
        Assert.True(Cholesky.Factor(x, n).Success);
        var r = Cholesky.InverseFromFactor(x, n);
        Assert.True(r.Success, r.ToString());
        var xd = Reference.ToDouble(x);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < i; j++) Assert.True(x[i * n + j] == x[j * n + i], $"inverse not symmetric at [{i},{j}]");
        double kappa = Kappa2(a, n);
        var ax = Reference.MatMul(a, xd, n);
        for (int i = 0; i < n; i++) ax[i * n + i] -= 1;
        double residual = Reference.Norm(ax);
        double bound = Gamma(n) * kappa * Math.Sqrt(n);
        Assert.True(residual <= bound, $"n={n}: ‖A·A⁻¹ − I‖ = {residual:E2} > {bound:E2} (κ₂ = {kappa:F1})");
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void InverseUpperFactorIsTheUpperFactorOfTheInverse(int n)
    {
        var (a, af) = Spd(n, seed: 200 + n);
        var u = (float[])af.Clone();
        var r = Cholesky.InverseUpperFactor(u, n);
        Assert.True(r.Success, r.ToString());
        for (int i = 0; i < n; i++)
        {
            Assert.True(u[i * n + i] > 0, $"U[{i},{i}] = {u[i * n + i]}");
            for (int j = 0; j < i; j++) Assert.True(u[i * n + j] == 0f, $"U[{i},{j}] below the diagonal is {u[i * n + j]}");
        }
        var ud = Reference.ToDouble(u);
        var utu = Reference.MatMul(Reference.Transposed(ud, n), ud, n);
        var inverse = InverseDouble(a, n);
        double error = Reference.Norm(Sub(utu, inverse)) / Reference.Norm(inverse);
        double bound = Gamma(n) * Kappa2(a, n);
        Assert.True(error <= bound, $"n={n}: ‖UᵀU − A⁻¹‖/‖A⁻¹‖ = {error:E2} > {bound:E2}");
    }

    [Fact]
    public void UpperFactorIsTheTransposeOfTheLowerOne()
    {
        int n = 150;
        var (_, af) = Spd(n, seed: 5);
        var l = (float[])af.Clone();
        var u = (float[])af.Clone();
        Assert.True(Cholesky.Factor(l, n).Success);
        Assert.True(Cholesky.UpperFactor(u, n).Success);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) Assert.Equal(l[i * n + j], u[j * n + i]);
    }

    [Fact]
    public void TwoByTwoWorkedByHand()
    {
        // A = [[4, 2], [2, 5]] = L·Lᵀ with L = [[2, 0], [1, 2]];  A⁻¹ = [[5, −2], [−2, 4]] / 16.
        float[] a = [4, 2, 2, 5];
        Assert.True(Cholesky.Factor(a, 2).Success);
        Assert.Equal([2f, 0f, 1f, 2f], a);
        Assert.True(Cholesky.InverseFromFactor(a, 2).Success);
        Assert.Equal([5f / 16, -2f / 16, -2f / 16, 4f / 16], a);
        // A⁻¹ = UᵀU with U = [[u11, u12], [0, u22]]: u11² = 5/16, u11·u12 = −2/16, u12² + u22² = 4/16,
        // so U = [[√5/4, −1/(2√5)], [0, 1/√5]].
        Assert.True(Cholesky.UpperFactor(a, 2).Success);
        Assert.Equal(Math.Sqrt(5) / 4, a[0], 6);
        Assert.Equal(-1 / (2 * Math.Sqrt(5)), a[1], 6);
        Assert.Equal(0f, a[2]);
        Assert.Equal(1 / Math.Sqrt(5), a[3], 6);
    }

    [Theory]
    [InlineData(2, 1)]
    [InlineData(70, 0)]
    [InlineData(400, 300)]
    [InlineData(400, 399)]
    public void NotPositiveDefiniteIsReportedWithTheColumn(int n, int bad)
    {
        var (_, af) = Spd(n, seed: 9);
        // Make the leading minor of order bad+1 indefinite: pivot bad becomes A_bb − Σ L_bp² < 0.
        af[bad * n + bad] = -1f;
        var r = Cholesky.Factor((float[])af.Clone(), n);
        Assert.False(r.Success);
        Assert.Equal(bad, r.Column);
        Assert.Equal(CholeskyStage.Factor, r.Stage);
        Assert.True(r.Pivot < 0);
        Assert.Contains("not positive definite", r.ToString());

        var chain = Cholesky.InverseUpperFactor((float[])af.Clone(), n);
        Assert.False(chain.Success);
        Assert.Equal(bad, chain.Column);
    }

    [Fact]
    public void IndefiniteAndNonFiniteInputsFail()
    {
        float[] indefinite = [1, 2, 2, 1]; // eigenvalues 3 and −1
        var r = Cholesky.Factor(indefinite, 2);
        Assert.False(r.Success);
        Assert.Equal(1, r.Column);
        Assert.Equal(-3.0, r.Pivot, 6); // 1 − 2²

        Assert.False(Cholesky.Factor(new float[9], 3).Success);            // zero matrix: pivot 0
        Assert.False(Cholesky.Factor([float.NaN, 0, 0, 1], 2).Success);   // NaN pivot
        Assert.False(Cholesky.Factor([1, 0, 0, float.PositiveInfinity], 2).Success);

        var singular = new float[] { 1, 0, 0, 0 };
        var inv = Cholesky.InverseFromFactor(singular, 2);
        Assert.False(inv.Success);
        Assert.Equal(CholeskyStage.Inverse, inv.Stage);
        Assert.Equal(1, inv.Column);
    }

    [Fact]
    public void EmptyMatrixIsFine()
    {
        Assert.True(Cholesky.Factor([], 0).Success);
        Assert.True(Cholesky.InverseUpperFactor([], 0).Success);
    }

    private static (double[] A, float[] Af) Spd(int n, int seed)
    {
        var a = Reference.RandomSpd(new Random(seed), n, delta: 0.01);
        var af = Reference.ToFloat(a);
        // Use the float matrix as the exact input on both sides.
        return (Reference.ToDouble(af), af);
    }

    private static double[] Sub(double[] x, double[] y)
    {
        var d = new double[x.Length];
        for (int i = 0; i < d.Length; i++) d[i] = x[i] - y[i];
        return d;
    }

    // κ₂(A) = λmax(A)·λmax(A⁻¹) for symmetric positive definite A, by power iteration in double.
    private static double Kappa2(double[] a, int n) => LargestEigenvalue(a, n) * LargestEigenvalue(InverseDouble(a, n), n);

    private static double LargestEigenvalue(double[] a, int n)
    {
        var v = new double[n];
        var w = new double[n];
        Array.Fill(v, 1.0 / Math.Sqrt(n));
        double lambda = 0;
        for (int it = 0; it < 200; it++)
        {
            for (int i = 0; i < n; i++)
            {
                double s = 0;
                for (int j = 0; j < n; j++) s += a[i * n + j] * v[j];
                w[i] = s;
            }
            double norm = Math.Sqrt(w.Sum(x => x * x));
            if (norm == 0) return 0;
            for (int i = 0; i < n; i++) v[i] = w[i] / norm;
            if (Math.Abs(norm - lambda) <= 1e-9 * norm) return norm;
            lambda = norm;
        }
        return lambda * 1.01; // not converged: a slight overestimate keeps the bound on the safe side
    }

    // A⁻¹ in double by Gauss–Jordan elimination with partial pivoting (independent of Cholesky).
    private static double[] InverseDouble(double[] a, int n)
    {
        var m = (double[])a.Clone();
        var inv = new double[n * n];
        for (int i = 0; i < n; i++) inv[i * n + i] = 1;
        for (int c = 0; c < n; c++)
        {
            int p = c;
            for (int r = c + 1; r < n; r++) if (Math.Abs(m[r * n + c]) > Math.Abs(m[p * n + c])) p = r;
            if (p != c)
                for (int j = 0; j < n; j++)
                {
                    (m[c * n + j], m[p * n + j]) = (m[p * n + j], m[c * n + j]);
                    (inv[c * n + j], inv[p * n + j]) = (inv[p * n + j], inv[c * n + j]);
                }
            double d = m[c * n + c];
            for (int j = 0; j < n; j++) { m[c * n + j] /= d; inv[c * n + j] /= d; }
            for (int r = 0; r < n; r++)
            {
                if (r == c) continue;
                double f = m[r * n + c];
                if (f == 0) continue;
                for (int j = 0; j < n; j++) { m[r * n + j] -= f * m[c * n + j]; inv[r * n + j] -= f * inv[c * n + j]; }
            }
        }
        return inv;
    }
}
