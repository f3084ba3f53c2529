using Irr.Tensors;

namespace Irr.Tests.Tensors;

public class ReduceTests
{
    // The documented order as a plain loop: lane l of partial sum 0 adds x[16q + l], of partial sum 1 x[16q + 8 + l];
    // a last block of 8 goes to partial sum 0; the lanes of (p0 + p1) are added pairwise; then the tail in order.
    private static float Ordered(float[] x, float[] y, bool dot)
    {
        float Term(int i) => x[i] * (dot ? y[i] : 1f);
        var p0 = new float[8];
        var p1 = new float[8];
        int n = x.Length, i = 0;
        for (; i + 16 <= n; i += 16)
            for (int l = 0; l < 8; l++)
            {
                p0[l] = dot ? MathF.FusedMultiplyAdd(x[i + l], y[i + l], p0[l]) : p0[l] + x[i + l];
                p1[l] = dot ? MathF.FusedMultiplyAdd(x[i + 8 + l], y[i + 8 + l], p1[l]) : p1[l] + x[i + 8 + l];
            }
        if (i + 8 <= n)
        {
            for (int l = 0; l < 8; l++) p0[l] = dot ? MathF.FusedMultiplyAdd(x[i + l], y[i + l], p0[l]) : p0[l] + x[i + l];
            i += 8;
        }
        var v = new float[8];
        for (int l = 0; l < 8; l++) v[l] = p0[l] + p1[l];
        float s = ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
        for (; i < n; i++) s = dot ? MathF.FusedMultiplyAdd(x[i], y[i], s) : s + Term(i);
        return s;
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(8)]
    [InlineData(15)]
    [InlineData(16)]
    [InlineData(24)]
    [InlineData(31)]
    [InlineData(128)]
    [InlineData(1001)]
    public void SumsInTheDocumentedOrderOnEveryCpu(int n)
    {
        var rng = new Random(n + 1);
        float[] x = Reference.Uniform(rng, n), y = Reference.Uniform(rng, n);
        Assert.Equal(BitConverter.SingleToInt32Bits(Ordered(x, y, dot: false)), BitConverter.SingleToInt32Bits(Reduce.Sum(x)));
        Assert.Equal(BitConverter.SingleToInt32Bits(Ordered(x, y, dot: true)), BitConverter.SingleToInt32Bits(Reduce.Dot(x, y)));
        Assert.Equal(BitConverter.SingleToInt32Bits(Ordered(x, x, dot: true)), BitConverter.SingleToInt32Bits(Reduce.SumOfSquares(x)));
        // And close to the exact value (double).
        double exact = 0, exactDot = 0;
        for (int i = 0; i < n; i++) { exact += x[i]; exactDot += (double)x[i] * y[i]; }
        Assert.True(Math.Abs(Reduce.Sum(x) - exact) <= 1e-5 * Math.Max(1, n));
        Assert.True(Math.Abs(Reduce.Dot(x, y) - exactDot) <= 1e-5 * Math.Max(1, n));
    }

    [Fact]
    public void DotRefusesSpansOfDifferentLengths() =>
        Assert.Throws<ArgumentException>(() => Reduce.Dot(new float[3], new float[4]));
}
