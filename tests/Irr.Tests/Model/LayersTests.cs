using Irr.Model;

namespace Irr.Tests.Model;

/// <summary>Each layer's backward against central finite differences of its forward, on tiny shapes.</summary>
public class LayersTests
{
    private static float[] R(Random rng, int n, float scale = 1f) => GradientCheck.Random(rng, n, scale);

    [Fact]
    public void RmsNormBackward()
    {
        var rng = new Random(1);
        int T = 3, C = 8;
        float eps = 1e-5f;
        float[] x = R(rng, T * C), w = R(rng, C), dout = R(rng, T * C);
        var output = new float[T * C];
        var rstd = new float[T];
        double Loss()
        {
            Layers.RmsNormForward(output, rstd, x, w, T, C, eps);
            return GradientCheck.Dot(output, dout);
        }
        Loss();
        float[] dx = new float[T * C], dw = new float[C];
        Layers.RmsNormBackward(dx, dw, dout, x, w, rstd, T, C);
        GradientCheck.Check("dx", x, dx, Loss, h: 1e-3f);
        GradientCheck.Check("dweight", w, dw, Loss, h: 1e-3f);
    }

    [Fact]
    public void RmsNormMatchesTheDefinition()
    {
        // x = [3, 4]: mean(x²) = 12.5, rstd = 1/√(12.5 + eps); weight [2, 0.5].
        float[] x = [3, 4], w = [2, 0.5f], y = new float[2], rstd = new float[1];
        Layers.RmsNormForward(y, rstd, x, w, 1, 2, 0f);
        Assert.Equal(3 / Math.Sqrt(12.5) * 2, y[0], 1e-6);
        Assert.Equal(4 / Math.Sqrt(12.5) * 0.5, y[1], 1e-6);
    }

    [Fact]
    public void LinearBackward()
    {
        var rng = new Random(2);
        int T = 4, C = 5, OC = 3;
        float[] x = R(rng, T * C), w = R(rng, OC * C), b = R(rng, OC), dout = R(rng, T * OC);
        var output = new float[T * OC];
        double Loss()
        {
            Layers.LinearForward(output, x, w, b, T, C, OC);
            return GradientCheck.Dot(output, dout);
        }
        float[] dx = new float[T * C], dw = new float[OC * C], db = new float[OC];
        Layers.LinearBackward(dx, dw, db, dout, x, w, T, C, OC);
        // Linear in each input: any step is exact up to rounding.
        GradientCheck.Check("dx", x, dx, Loss, h: 0.25f, relative: 1e-4, absolute: 1e-4);
        GradientCheck.Check("dweight", w, dw, Loss, h: 0.25f, relative: 1e-4, absolute: 1e-4);
        GradientCheck.Check("dbias", b, db, Loss, h: 0.25f, relative: 1e-4, absolute: 1e-4);
    }

    [Fact]
    public void SwiGluBackward()
    {
        var rng = new Random(3);
        int n = 12;
        float[] g = R(rng, n, 3), u = R(rng, n), dout = R(rng, n);
        var output = new float[n];
        double Loss()
        {
            Layers.SwiGluForward(output, g, u);
            return GradientCheck.Dot(output, dout);
        }
        float[] dg = new float[n], du = new float[n];
        Layers.SwiGluBackward(dg, du, dout, g, u);
        GradientCheck.Check("dgate", g, dg, Loss, h: 1e-3f);
        GradientCheck.Check("dup", u, du, Loss, h: 1e-3f);
    }

    // PyTorch's gelu(approximate="tanh") in double: ½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
    private static double GeluTanh(double x) => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));

    [Fact]
    public void GeGluForwardIsPyTorchsTanhGeluTimesUp()
    {
        var rng = new Random(21);
        int n = 5000; // more than one chunk of the forward
        float[] g = R(rng, n, 6), u = R(rng, n, 2);
        var output = new float[n];
        Layers.GeGluForward(output, g, u);
        for (int i = 0; i < n; i++)
        {
            double expected = GeluTanh(g[i]) * u[i];
            Assert.True(Math.Abs(output[i] - expected) <= 1e-6 + 1e-5 * Math.Abs(expected), $"[{i}] gelu({g[i]})·{u[i]}: {output[i]}, naive {expected}");
        }
        // gelu(0) = 0, gelu(x) → x for large x, → 0 for very negative x
        Layers.GeGluForward(output.AsSpan(0, 3), [0f, 10f, -10f], [1f, 1f, 1f]);
        Assert.Equal([0f, 10f, 0f], output[..3]);
    }

    [Fact]
    public void GeGluBackward()
    {
        var rng = new Random(22);
        int n = 2100; // more than one chunk of the backward
        float[] g = R(rng, n, 3), u = R(rng, n), dout = R(rng, n);
        var output = new float[n];
        double Loss()
        {
            Layers.GeGluForward(output, g, u);
            return GradientCheck.Dot(output, dout);
        }
        float[] dg = new float[n], du = new float[n];
        Layers.GeGluBackward(dg, du, dout, g, u);
        GradientCheck.Check("dgate", g, dg, Loss, h: 1e-3f);
        GradientCheck.Check("dup", u, du, Loss, h: 1e-3f);
        // accumulates (+=) like the other backward passes
        float[] dg2 = (float[])dg.Clone(), du2 = (float[])du.Clone();
        Layers.GeGluBackward(dg2, du2, dout, g, u);
        for (int i = 0; i < n; i++) Assert.Equal(2 * dg[i], dg2[i], 1e-5);
    }

    [Fact]
    public void SoftcapIsCapTimesTanhOfXOverCapAndItsBackwardMatchesFiniteDifferences()
    {
        var rng = new Random(23);
        int n = 40;
        float cap = 2.5f;
        float[] x = R(rng, n, 8), dout = R(rng, n);
        var y = (float[])x.Clone();
        Layers.SoftcapForward(y, cap);
        for (int i = 0; i < n; i++) Assert.Equal(cap * Math.Tanh(x[i] / (double)cap), y[i], 1e-5);
        double Loss()
        {
            var z = (float[])x.Clone();
            Layers.SoftcapForward(z, cap);
            return GradientCheck.Dot(z, dout);
        }
        var dx = (float[])dout.Clone();
        Layers.SoftcapBackward(dx, y, cap);
        GradientCheck.Check("dx", x, dx, Loss, h: 1e-3f);
        // cap ≤ 0: no capping either way
        var same = (float[])x.Clone();
        Layers.SoftcapForward(same, 0f);
        Assert.Equal(x, same);
    }

    [Fact]
    public void SoftcapIsAccurateInFloat32ForScoresSmallBesideTheCap()
    {
        // PyTorch's float32 tanh is accurate to about an ulp: c·tanh(x/c) for |x| ≤ 1 is within a few ulps of x's size
        var rng = new Random(27);
        foreach (float cap in new[] { 30f, 50f, 1e4f, 1e9f })
        {
            float[] x = R(rng, 64);
            var y = (float[])x.Clone();
            Layers.SoftcapForward(y, cap);
            for (int i = 0; i < x.Length; i++)
            {
                double expected = cap * Math.Tanh(x[i] / (double)cap);
                Assert.True(Math.Abs(y[i] - expected) <= 4e-7 * Math.Abs(expected) + 1e-9, $"cap {cap}: {cap}·tanh({x[i]}/{cap}) = {y[i]}, double {expected}");
            }
        }
    }

    // The attention of one sequence in double, as transformers' eager_attention_forward with Gemma-2's soft-cap:
    // S = Q·Kᵀ·scale → c·tanh(S/c) → masked to i − W < j ≤ i → softmax → ·V
    private static double[] NaiveAttention(float[] q, float[] k, float[] v, int t0, int len, int heads, int kvHeads, int d, int window, double scale, double cap)
    {
        var o = new double[len * heads * d];
        for (int h = 0; h < heads; h++)
        {
            int kvh = h / (heads / kvHeads);
            for (int i = 0; i < len; i++)
            {
                var s = new double[len];
                double max = double.NegativeInfinity;
                for (int j = 0; j < len; j++)
                {
                    if (j > i || (window > 0 && j <= i - window)) { s[j] = double.NegativeInfinity; continue; }
                    double dot = 0;
                    for (int e = 0; e < d; e++) dot += (double)q[((t0 + i) * heads + h) * d + e] * k[((t0 + j) * kvHeads + kvh) * d + e];
                    dot *= scale;
                    if (cap > 0) dot = cap * Math.Tanh(dot / cap);
                    s[j] = dot;
                    max = Math.Max(max, dot);
                }
                double z = 0;
                for (int j = 0; j < len; j++) z += s[j] = Math.Exp(s[j] - max);
                for (int j = 0; j < len; j++)
                    for (int e = 0; e < d; e++) o[(i * heads + h) * d + e] += s[j] / z * v[((t0 + j) * kvHeads + kvh) * d + e];
            }
        }
        return o;
    }

    [Theory]
    [InlineData(0, 0.0, 0.0)]
    [InlineData(0, 0.7, 0.0)]   // Gemma's query_pre_attn_scalar^-½ instead of head_dim^-½
    [InlineData(0, 0.0, 1.5)]   // Gemma-2's attn_logit_softcapping
    [InlineData(2, 0.45, 1.2)]  // both, in a sliding window
    public void AttentionWithScaleAndSoftcapMatchesANaiveDoubleLoop(int window, double scale, double cap)
    {
        var rng = new Random(24);
        int H = 4, KVH = 2, D = 3, T = 7;
        int[] starts = [0, 3, 7];
        float[] q = R(rng, T * H * D, 3), k = R(rng, T * KVH * D, 3), v = R(rng, T * KVH * D);
        var output = new float[T * H * D];
        var probs = new float[Layers.AttentionProbsLength(starts, H)];
        Layers.AttentionForward(output, probs, q, k, v, starts, H, KVH, D, window, (float)scale, (float)cap);
        for (int s = 0; s + 1 < starts.Length; s++)
        {
            int t0 = starts[s], len = starts[s + 1] - t0;
            var expected = NaiveAttention(q, k, v, t0, len, H, KVH, D, window, scale > 0 ? scale : 1 / Math.Sqrt(D), cap);
            for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], output[t0 * H * D + i], 1e-5);
        }
    }

    [Theory]
    [InlineData(0, 0.0)]
    [InlineData(2, 0.6)]
    public void AttentionBackwardWithSoftcapMatchesFiniteDifferences(int window, double scale)
    {
        var rng = new Random(25);
        int H = 4, KVH = 2, D = 3, T = 7;
        int[] starts = [0, 3, 7];
        float cap = 1.3f;
        // scores around ±3 reach the cap's curved part (|S/c| ≈ 2)
        float[] q = R(rng, T * H * D, 2), k = R(rng, T * KVH * D, 2), v = R(rng, T * KVH * D), dout = R(rng, T * H * D);
        var output = new float[T * H * D];
        var probs = new float[Layers.AttentionProbsLength(starts, H)];
        double Loss()
        {
            Layers.AttentionForward(output, probs, q, k, v, starts, H, KVH, D, window, (float)scale, cap);
            return GradientCheck.Dot(output, dout);
        }
        Loss();
        float[] dq = new float[q.Length], dk = new float[k.Length], dv = new float[v.Length];
        Layers.AttentionBackward(dq, dk, dv, dout, probs, q, k, v, starts, H, KVH, D, (float)scale, cap);
        GradientCheck.Check("dq", q, dq, Loss, h: 1e-3f);
        GradientCheck.Check("dk", k, dk, Loss, h: 1e-3f);
        GradientCheck.Check("dv", v, dv, Loss, h: 1e-3f);
    }

    [Theory]
    [InlineData(0, 0.0, 0.0)]
    [InlineData(0, 0.6, 1.4)]
    [InlineData(3, 0.6, 1.4)]
    public void CachedAttentionWithScaleAndSoftcapEqualsTheFullAttention(int window, double scale, double cap)
    {
        var rng = new Random(26);
        int H = 4, KVH = 2, D = 4, T = 6, kvDim = KVH * D;
        float[] q = R(rng, T * H * D, 3), k = R(rng, T * kvDim, 3), v = R(rng, T * kvDim);
        var full = new float[T * H * D];
        Layers.AttentionForward(full, new float[Layers.AttentionProbsLength([0, T], H)], q, k, v, [0, T], H, KVH, D, window, (float)scale, (float)cap);
        // The first 4 tokens as a prompt, then 2 one at a time, through the cache of a one-layer model of these heads.
        var config = Irr.IO.ModelConfig.Parse(TransformerTests.Variant(TransformerTests.Tiny, o =>
        {
            o["num_hidden_layers"] = 1; o["num_attention_heads"] = H; o["num_key_value_heads"] = KVH; o["head_dim"] = D;
        }), "config.json");
        var cache = new KvCache(config, 1);
        var cached = new float[T * H * D];
        foreach (var (from, to) in new[] { (0, 4), (4, 5), (5, 6) })
        {
            for (int t = from; t < to; t++) cache.Store(0, 0, t, k.AsSpan(t * kvDim, kvDim), v.AsSpan(t * kvDim, kvDim));
            int[] positions = Enumerable.Range(from, to - from).ToArray();
            Layers.AttentionCachedForward(cached.AsSpan(from * H * D, (to - from) * H * D), q.AsSpan(from * H * D, (to - from) * H * D), cache, 0,
                new int[to - from], positions, H, KVH, D, window, (float)scale, (float)cap);
            cache.SetLength(0, to);
        }
        for (int i = 0; i < full.Length; i++) Assert.Equal(full[i], cached[i], 1e-5);
    }

    [Fact]
    public void RopeIsTheRotateHalfConventionWorkedByHand()
    {
        // One head of D = 4 at position 1 with invFreq = [1, 0.5]: angles 1 and 0.5 rad rotate the
        // pairs (x0, x2) and (x1, x3) — not the interleaved pairs (x0, x1), (x2, x3).
        float[] x = [1, 2, 3, 4];
        float[] cos = [1, 1, MathF.Cos(1), MathF.Cos(0.5f)], sin = [0, 0, MathF.Sin(1), MathF.Sin(0.5f)];
        Layers.RopeForward(x, [1], cos, sin, heads: 1, headDim: 4);
        Assert.Equal(1 * Math.Cos(1) - 3 * Math.Sin(1), x[0], 1e-5);
        Assert.Equal(2 * Math.Cos(0.5) - 4 * Math.Sin(0.5), x[1], 1e-5);
        Assert.Equal(3 * Math.Cos(1) + 1 * Math.Sin(1), x[2], 1e-5);
        Assert.Equal(4 * Math.Cos(0.5) + 2 * Math.Sin(0.5), x[3], 1e-5);
        // Position 0 is the identity.
        float[] y = [1, 2, 3, 4];
        Layers.RopeForward(y, [0], cos, sin, 1, 4);
        Assert.Equal([1f, 2f, 3f, 4f], y);
    }

    [Fact]
    public void RopeBackward()
    {
        var rng = new Random(4);
        int T = 3, H = 2, D = 6, maxPos = 5;
        var cos = new float[maxPos * D / 2];
        var sin = new float[maxPos * D / 2];
        for (int p = 0; p < maxPos; p++)
            for (int i = 0; i < D / 2; i++)
            {
                double a = p * Math.Pow(10000, -2.0 * i / D);
                cos[p * D / 2 + i] = (float)Math.Cos(a);
                sin[p * D / 2 + i] = (float)Math.Sin(a);
            }
        int[] positions = [4, 0, 2];
        float[] x = R(rng, T * H * D), dout = R(rng, T * H * D);
        double Loss()
        {
            var y = (float[])x.Clone();
            Layers.RopeForward(y, positions, cos, sin, H, D);
            return GradientCheck.Dot(y, dout);
        }
        var dx = (float[])dout.Clone();
        Layers.RopeBackward(dx, positions, cos, sin, H, D);
        GradientCheck.Check("dx", x, dx, Loss, h: 0.25f, relative: 1e-4, absolute: 1e-4);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)] // a sliding window shorter than both sequences
    public void AttentionBackwardWithGroupedHeadsAndTwoSequences(int window)
    {
        var rng = new Random(5);
        int H = 4, KVH = 2, D = 3;
        int[] starts = [0, 3, 7]; // sequences of 3 and 4 tokens
        int T = 7;
        float[] q = R(rng, T * H * D), k = R(rng, T * KVH * D), v = R(rng, T * KVH * D), dout = R(rng, T * H * D);
        var output = new float[T * H * D];
        var probs = new float[Layers.AttentionProbsLength(starts, H)];
        double Loss()
        {
            Layers.AttentionForward(output, probs, q, k, v, starts, H, KVH, D, window);
            return GradientCheck.Dot(output, dout);
        }
        Loss();
        float[] dq = new float[q.Length], dk = new float[k.Length], dv = new float[v.Length];
        Layers.AttentionBackward(dq, dk, dv, dout, probs, q, k, v, starts, H, KVH, D);
        GradientCheck.Check("dq", q, dq, Loss, h: 1e-3f);
        GradientCheck.Check("dk", k, dk, Loss, h: 1e-3f);
        GradientCheck.Check("dv", v, dv, Loss, h: 1e-3f);
    }

    [Fact]
    public void AttentionIsCausalAndMapsQueryHeadsToTheirKeyValueHead()
    {
        // H = 4 query heads over KVH = 2 key/value heads: heads 0, 1 read KV head 0; heads 2, 3 read
        // KV head 1 (Hugging Face's repeat_kv). With D = 1, q = 0 makes the softmax uniform, so the
        // output of token i is the mean of v over tokens 0..i of its own sequence.
        int H = 4, KVH = 2, D = 1;
        int[] starts = [0, 2, 5];
        float[] q = new float[5 * H];
        float[] k = new float[5 * KVH];
        float[] v = [1, 10, 2, 20, /* seq 2: */ 4, 40, 5, 50, 6, 60];
        var output = new float[5 * H];
        var probs = new float[Layers.AttentionProbsLength(starts, H)];
        Layers.AttentionForward(output, probs, q, k, v, starts, H, KVH, D);
        float[][] expected =
        [
            [1, 1, 10, 10], [1.5f, 1.5f, 15, 15],                       // sequence 1
            [4, 4, 40, 40], [4.5f, 4.5f, 45, 45], [5, 5, 50, 50],      // sequence 2 sees only its own tokens
        ];
        for (int t = 0; t < 5; t++)
            for (int h = 0; h < H; h++) Assert.Equal(expected[t][h], output[t * H + h], 1e-5);

        // With a sliding window of 2, token i averages tokens i − 1 and i of its sequence.
        Layers.AttentionForward(output, probs, q, k, v, starts, H, KVH, D, window: 2);
        expected[4] = [5.5f, 5.5f, 55, 55];
        for (int t = 0; t < 5; t++)
            for (int h = 0; h < H; h++) Assert.Equal(expected[t][h], output[t * H + h], 1e-5);
    }

    [Fact]
    public void CrossEntropyBackward()
    {
        var rng = new Random(6);
        int rows = 4, V = 7;
        float[] logits = R(rng, rows * V, 3);
        int[] targets = [2, -100, 6, 0];
        var losses = new float[rows];
        double Loss()
        {
            Array.Clear(losses);
            Layers.CrossEntropyForwardBackward(losses, [], logits, targets, V, 1f);
            return losses.Sum(x => (double)x);
        }
        var d = new float[rows * V];
        Assert.Equal(3, Layers.CrossEntropyForwardBackward(new float[rows], d, logits, targets, V, 1f));
        Assert.All(d.AsSpan(V, V).ToArray(), x => Assert.Equal(0f, x)); // unlabelled row
        GradientCheck.Check("dlogits", logits, d, Loss, h: 1e-3f);
        // −log softmax by hand for a uniform row: log V.
        var uniform = new float[V];
        var l = new float[1];
        Layers.CrossEntropyForwardBackward(l, [], uniform, [3], V, 1f);
        Assert.Equal(Math.Log(V), l[0], 1e-5);
    }

    [Fact]
    public void EmbeddingGathersAndScattersRows()
    {
        float[] wte = [0, 1, 10, 11, 20, 21]; // V = 3, C = 2
        var output = new float[6];
        Layers.EmbeddingForward(output, [2, 0, 2], wte, 2);
        Assert.Equal([20f, 21f, 0f, 1f, 20f, 21f], output);
        var d = new float[6];
        Layers.EmbeddingBackward(d, [1, 2, 3, 4, 5, 6], [2, 0, 2], 2);
        Assert.Equal([3f, 4f, 0f, 0f, 6f, 8f], d);
    }
}
