namespace Irr.Tests.Model;

/// <summary>
/// Central finite differences in float32 for a scalar loss L(inputs). The loss is summed in double,
/// so the only float32 noise is the layer's own; with step h the truncation error is O(h²) and the
/// rounding error O(u·|L|/h). Tolerances are set per test from those two terms.
/// </summary>
internal static class GradientCheck
{
    /// <summary>
    /// Compares <paramref name="analytic"/> (∂L/∂input) with (L(x + h) − L(x − h)) / 2h for every
    /// element of <paramref name="input"/>, which <paramref name="loss"/> reads.
    /// </summary>
    public static void Check(string what, float[] input, float[] analytic, Func<double> loss, float h = 1e-2f, double relative = 2e-2, double absolute = 2e-3)
    {
        Assert.Equal(input.Length, analytic.Length);
        double worst = 0;
        for (int i = 0; i < input.Length; i++)
        {
            float saved = input[i];
            input[i] = saved + h;
            double plus = loss();
            input[i] = saved - h;
            double minus = loss();
            input[i] = saved;
            double numeric = (plus - minus) / (2.0 * h);
            double error = Math.Abs(numeric - analytic[i]);
            double allowed = absolute + relative * Math.Max(Math.Abs(numeric), Math.Abs(analytic[i]));
            worst = Math.Max(worst, error / allowed);
            Assert.True(error <= allowed, $"{what}[{i}]: analytic {analytic[i]:G6}, finite difference {numeric:G6}");
        }
        Assert.True(worst >= 0);
    }

    /// <summary>Σ a·r in double: a loss whose gradient with respect to a is r.</summary>
    public static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> r)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += (double)a[i] * r[i];
        return s;
    }

    public static float[] Random(Random rng, int n, float scale = 1f)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return x;
    }
}
