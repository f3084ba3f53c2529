using System.Numerics.Tensors;
using Irr.Tensors;

namespace Irr.Model;

/// <summary>
/// The layers of a Llama-family decoder as <c>XxxForward</c>/<c>XxxBackward</c> pairs with the same
/// argument order (after llm.c), matching Hugging Face's float32 computation. Tokens of all the
/// sequences in a batch are packed into one stream of T rows (no padding); shapes are in comments.
/// Backward functions accumulate (+=) into gradients, so a caller can sum over several uses; a
/// gradient it does not want is passed as an empty span and is not computed.
/// </summary>
internal static class Layers
{
    // ---- embedding ------------------------------------------------------------------------------

    // out (T,C) = wte (V,C)[tokens (T)]
    public static void EmbeddingForward(Span<float> output, ReadOnlySpan<int> tokens, ReadOnlySpan<float> wte, int channels)
    {
        for (int t = 0; t < tokens.Length; t++)
            wte.Slice(tokens[t] * channels, channels).CopyTo(output.Slice(t * channels, channels));
    }

    // dwte (V,C)[tokens[t]] += dout (T,C)[t]
    public static void EmbeddingBackward(Span<float> dwte, ReadOnlySpan<float> doutput, ReadOnlySpan<int> tokens, int channels)
    {
        for (int t = 0; t < tokens.Length; t++)
        {
            var row = dwte.Slice(tokens[t] * channels, channels);
            TensorPrimitives.Add(row, doutput.Slice(t * channels, channels), row);
        }
    }

    // ---- RMSNorm: y = x · rstd · w, rstd = 1/√(mean(x²) + eps) ----------------------------------

    // out (T,C), rstd (T) = RMSNorm(x (T,C)) · weight (C)
    public static void RmsNormForward(Span<float> output, Span<float> rstd, ReadOnlySpan<float> x, ReadOnlySpan<float> weight, int rows, int channels, float eps)
    {
        for (int t = 0; t < rows; t++)
        {
            var xt = x.Slice(t * channels, channels);
            var ot = output.Slice(t * channels, channels);
            float r = 1f / MathF.Sqrt(Reduce.SumOfSquares(xt) / channels + eps);
            rstd[t] = r;
            TensorPrimitives.Multiply(xt, r, ot);          // HF: hidden_states * rsqrt(variance + eps)
            TensorPrimitives.Multiply(ot, weight, ot);     //     then weight * hidden_states
        }
    }

    // dx (T,C) += ∂/∂x, dweight (C) += Σ_t dout·x·rstd, from dout (T,C), x, weight, rstd
    //   with n = x·rstd:  dx = rstd · (g − n · mean(g·n)),  g = dout·w
    public static void RmsNormBackward(Span<float> dx, Span<float> dweight, ReadOnlySpan<float> doutput, ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> rstd, int rows, int channels)
    {
        var g = new float[channels];
        var n = new float[channels];
        for (int t = 0; t < rows; t++)
        {
            var xt = x.Slice(t * channels, channels);
            var dt = doutput.Slice(t * channels, channels);
            float r = rstd[t];
            TensorPrimitives.Multiply(xt, r, n);
            if (!dweight.IsEmpty) TensorPrimitives.FusedMultiplyAdd(dt, n, dweight, dweight);
            if (dx.IsEmpty) continue;
            TensorPrimitives.Multiply(dt, weight, g);
            float mean = Reduce.Dot(g, n) / channels;
            var dxt = dx.Slice(t * channels, channels);
            // dx += r·g − r·mean·n
            TensorPrimitives.FusedMultiplyAdd(g, r, dxt, dxt);
            TensorPrimitives.FusedMultiplyAdd(n, -r * mean, dxt, dxt);
        }
    }

    // ---- linear: y = x·Wᵀ + b ---------------------------------------------------------------------

    // out (T,OC) = x (T,C) · weight (OC,C)ᵀ + bias (OC)
    public static void LinearForward(Span<float> output, ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, int rows, int channels, int outChannels)
    {
        Gemm.MatMulTransposeB(x, weight, output, rows, outChannels, channels);
        if (!bias.IsEmpty)
            for (int t = 0; t < rows; t++)
            {
                var ot = output.Slice(t * outChannels, outChannels);
                TensorPrimitives.Add(ot, bias, ot);
            }
    }

    // dx (T,C) += dout (T,OC) · weight (OC,C);  dweight (OC,C) += doutᵀ · x;  dbias (OC) += Σ_t dout
    public static void LinearBackward(Span<float> dx, Span<float> dweight, Span<float> dbias, ReadOnlySpan<float> doutput, ReadOnlySpan<float> x, ReadOnlySpan<float> weight, int rows, int channels, int outChannels)
    {
        if (!dx.IsEmpty) Gemm.MatMul(doutput, weight, dx, rows, channels, outChannels, accumulate: true);
        if (!dweight.IsEmpty) Gemm.MatMulTransposeA(doutput, x, dweight, outChannels, channels, rows, accumulate: true);
        if (!dbias.IsEmpty)
            for (int t = 0; t < rows; t++) TensorPrimitives.Add(dbias, doutput.Slice(t * outChannels, outChannels), dbias);
    }

    // ---- rotary embeddings, Hugging Face's rotate_half convention ---------------------------------
    //   for i < D/2, with angle a = pos · invFreq[i]:
    //     x'[i]       = x[i]·cos a − x[i + D/2]·sin a
    //     x'[i + D/2] = x[i + D/2]·cos a + x[i]·sin a

    // x (T, heads·D) rotated in place by the angles of positions (T); cos, sin (maxPos, D/2)
    public static void RopeForward(Span<float> x, ReadOnlySpan<int> positions, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, int heads, int headDim)
        => Rotate(x, positions, cos, sin, heads, headDim, 1f);

    // dx (T, heads·D) in place: the rotation is orthogonal, so the gradient rotates by the opposite angle
    public static void RopeBackward(Span<float> dx, ReadOnlySpan<int> positions, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, int heads, int headDim)
        => Rotate(dx, positions, cos, sin, heads, headDim, -1f);

    private static void Rotate(Span<float> x, ReadOnlySpan<int> positions, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, int heads, int headDim, float direction)
    {
        int half = headDim / 2;
        for (int t = 0; t < positions.Length; t++)
        {
            var c = cos.Slice(positions[t] * half, half);
            var s = sin.Slice(positions[t] * half, half);
            for (int h = 0; h < heads; h++)
            {
                var v = x.Slice((t * heads + h) * headDim, headDim);
                for (int i = 0; i < half; i++)
                {
                    float a = v[i], b = v[i + half], si = direction * s[i];
                    v[i] = a * c[i] - b * si;
                    v[i + half] = b * c[i] + a * si;
                }
            }
        }
    }

    // ---- SwiGLU: m = silu(g) · u, silu(g) = g·σ(g) -----------------------------------------------

    // out (T,I) = silu(gate (T,I)) · up (T,I)
    public static void SwiGluForward(Span<float> output, ReadOnlySpan<float> gate, ReadOnlySpan<float> up)
    {
        TensorPrimitives.Sigmoid(gate, output);
        TensorPrimitives.Multiply(output, gate, output);
        TensorPrimitives.Multiply(output, up, output);
    }

    // dgate += dout·u·σ(g)·(1 + g·(1 − σ(g))),  dup += dout·silu(g)
    public static void SwiGluBackward(Span<float> dgate, Span<float> dup, ReadOnlySpan<float> doutput, ReadOnlySpan<float> gate, ReadOnlySpan<float> up)
    {
        const int chunk = 4096;
        Span<float> s = stackalloc float[chunk], silu = stackalloc float[chunk], tmp = stackalloc float[chunk];
        for (int i0 = 0; i0 < doutput.Length; i0 += chunk)
        {
            int n = Math.Min(chunk, doutput.Length - i0);
            ReadOnlySpan<float> g = gate.Slice(i0, n), u = up.Slice(i0, n), d = doutput.Slice(i0, n);
            Span<float> sn = s[..n], siluN = silu[..n], t = tmp[..n];
            TensorPrimitives.Sigmoid(g, sn);
            TensorPrimitives.Multiply(g, sn, siluN);                   // silu(g) = g·σ
            TensorPrimitives.FusedMultiplyAdd(d, siluN, dup.Slice(i0, n), dup.Slice(i0, n));
            // σ·(1 + g·(1 − σ)) = σ + silu − silu·σ
            TensorPrimitives.Multiply(siluN, sn, t);
            TensorPrimitives.Subtract(siluN, t, t);
            TensorPrimitives.Add(t, sn, t);
            TensorPrimitives.Multiply(t, u, t);
            TensorPrimitives.FusedMultiplyAdd(d, t, dgate.Slice(i0, n), dgate.Slice(i0, n));
        }
    }

    // ---- GeGLU (Gemma): m = gelu_tanh(g) · u, gelu_tanh(g) = ½·g·(1 + tanh(k·(g + 0.044715·g³))), k = √(2/π) -----

    private const float GeluKappa = 0.044715f;
    private static readonly float GeluBeta = (float)(Math.Sqrt(2.0) * (2.0 / Math.Sqrt(Math.PI)) * 0.5); // PyTorch's M_SQRT2 · M_2_SQRTPI · ½

    // out (T,I) = gelu_tanh(gate (T,I)) · up (T,I), as PyTorch's gelu(approximate="tanh")
    public static void GeGluForward(Span<float> output, ReadOnlySpan<float> gate, ReadOnlySpan<float> up)
    {
        const int chunk = 4096;
        Span<float> tanh = stackalloc float[chunk];
        for (int i0 = 0; i0 < gate.Length; i0 += chunk)
        {
            int n = Math.Min(chunk, gate.Length - i0);
            ReadOnlySpan<float> g = gate.Slice(i0, n);
            Span<float> t = tanh[..n], o = output.Slice(i0, n);
            GeluTanh(g, t);                                    // t = tanh(k·(g + κg³))
            TensorPrimitives.Add(t, 1f, t);                    // 1 + t
            TensorPrimitives.Multiply(t, g, o);                // g·(1 + t)
            TensorPrimitives.Multiply(o, 0.5f, o);             // gelu = ½·g·(1 + t)
            TensorPrimitives.Multiply(o, up.Slice(i0, n), o);
        }
    }

    // dgate += dout·u·gelu'(g),  gelu'(g) = ½(1 + t) + ½·g·(1 − t²)·k·(1 + 3κg²);  dup += dout·gelu(g)
    public static void GeGluBackward(Span<float> dgate, Span<float> dup, ReadOnlySpan<float> doutput, ReadOnlySpan<float> gate, ReadOnlySpan<float> up)
    {
        const int chunk = 2048;
        Span<float> tanh = stackalloc float[chunk], gelu = stackalloc float[chunk], deriv = stackalloc float[chunk];
        for (int i0 = 0; i0 < doutput.Length; i0 += chunk)
        {
            int n = Math.Min(chunk, doutput.Length - i0);
            ReadOnlySpan<float> g = gate.Slice(i0, n), u = up.Slice(i0, n), d = doutput.Slice(i0, n);
            Span<float> t = tanh[..n], ge = gelu[..n], dv = deriv[..n];
            GeluTanh(g, t);
            for (int i = 0; i < n; i++)
            {
                float x = g[i], ti = t[i];
                ge[i] = 0.5f * x * (1f + ti);
                dv[i] = 0.5f * (1f + ti) + 0.5f * x * (1f - ti * ti) * GeluBeta * (1f + 3f * GeluKappa * x * x);
            }
            TensorPrimitives.FusedMultiplyAdd(d, ge, dup.Slice(i0, n), dup.Slice(i0, n));
            TensorPrimitives.Multiply(dv, u, dv);
            TensorPrimitives.FusedMultiplyAdd(d, dv, dgate.Slice(i0, n), dgate.Slice(i0, n));
        }
    }

    // t = tanh(k·(g + κ·g³))
    private static void GeluTanh(ReadOnlySpan<float> g, Span<float> t)
    {
        TensorPrimitives.Multiply(g, g, t);
        TensorPrimitives.Multiply(t, g, t);                    // g³
        TensorPrimitives.FusedMultiplyAdd(t, GeluKappa, g, t); // g + κg³
        TensorPrimitives.Multiply(t, GeluBeta, t);
        TensorPrimitives.Tanh(t, t);
    }

    // ---- logit soft-capping (Gemma-2): y = c·tanh(x/c) ---------------------------------------------

    // x (N) soft-capped in place; c ≤ 0 leaves it unchanged. MathF.Tanh, accurate to an ulp as PyTorch's float32 tanh
    // (TensorPrimitives.Tanh is off by ~6e-8 absolute near 0, i.e. c·6e-8 after the cap)
    public static void SoftcapForward(Span<float> x, float cap)
    {
        if (cap <= 0) return;
        for (int i = 0; i < x.Length; i++) x[i] = MathF.Tanh(x[i] / cap) * cap;
    }

    // dx (N) in place: ∂L/∂y → ∂L/∂x = ∂L/∂y · (1 − (y/c)²), from the capped output y
    public static void SoftcapBackward(Span<float> dx, ReadOnlySpan<float> capped, float cap)
    {
        if (cap <= 0) return;
        for (int i = 0; i < dx.Length; i++)
        {
            float t = capped[i] / cap;
            dx[i] *= 1f - t * t;
        }
    }

    // ---- causal grouped-query attention over packed sequences -------------------------------------
    //   head h reads key/value head h / (H / KVH); scores S = Q·Kᵀ·scale (scale 1/√D, or Gemma's query_pre_attn_scalar^-½),
    //   soft-capped to c·tanh(S/c) when softcap c > 0 (Gemma-2), masked to j ≤ i (and, with a sliding window W > 0, to
    //   i − W < j, as transformers' sliding_window_overlay); P = softmax(S); O = P·V

    // out (T, H·D), probs (Σ_s len_s², H) = attention of q (T, H·D), k, v (T, KVH·D); sequences [starts[s], starts[s+1]);
    // window 0 = full causal attention
    public static void AttentionForward(Span<float> output, Span<float> probs, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<int> starts, int heads, int kvHeads, int headDim, int window = 0, float scale = 0f, float softcap = 0f)
    {
        int qStride = heads * headDim, kvStride = kvHeads * headDim, group = heads / kvHeads;
        if (scale <= 0) scale = 1f / MathF.Sqrt(headDim);
        long probOffset = 0;
        for (int s = 0; s + 1 < starts.Length; s++)
        {
            int t0 = starts[s], len = starts[s + 1] - t0;
            for (int h = 0; h < heads; h++)
            {
                int kvh = h / group;
                var p = probs.Slice((int)(probOffset + (long)h * len * len), len * len);
                // S (len,len) = Q_h (len,D) · K_kvh (len,D)ᵀ · scale, lower triangle only
                Gemm.ComputeLower(Transpose.No, Transpose.Yes, len, headDim, scale, q.Slice(t0 * qStride + h * headDim), qStride,
                    k.Slice(t0 * kvStride + kvh * headDim), kvStride, 0f, p, len);
                if (softcap > 0)
                    for (int i = 0; i < len; i++) SoftcapForward(p.Slice(i * len, i + 1), softcap);
                CausalSoftmax(p, len, window);
                // O_h (len,D) = P (len,len) · V_kvh (len,D)
                Gemm.Compute(Transpose.No, Transpose.No, len, headDim, len, 1f, p, len, v.Slice(t0 * kvStride + kvh * headDim), kvStride, 0f, output.Slice(t0 * qStride + h * headDim), qStride);
            }
            probOffset += (long)heads * len * len;
        }
    }

    // dq, dk, dv (+=) from dout (T, H·D), with the probs the forward saved:
    //   dV_kvh += Pᵀ·dO_h;  dP = dO_h·V_kvhᵀ;  dS = P ∘ (dP − rowsum(dP ∘ P));  dQ_h += dS·K·scale;  dK_kvh += dSᵀ·Q·scale
    //   A sliding window needs nothing here: masked entries of P are exactly 0, so their dS is 0 too.
    //   With a soft-cap c, dS (of the capped scores) × (1 − tanh²(S_raw/c)), S_raw recomputed from Q and K.
    public static void AttentionBackward(Span<float> dq, Span<float> dk, Span<float> dv, ReadOnlySpan<float> doutput, ReadOnlySpan<float> probs,
        ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<int> starts, int heads, int kvHeads, int headDim,
        float scale = 0f, float softcap = 0f)
    {
        int qStride = heads * headDim, kvStride = kvHeads * headDim, group = heads / kvHeads;
        if (scale <= 0) scale = 1f / MathF.Sqrt(headDim);
        long probOffset = 0;
        float[] dp = [], capped = [];
        for (int s = 0; s + 1 < starts.Length; s++)
        {
            int t0 = starts[s], len = starts[s + 1] - t0;
            if (dp.Length < len * len) dp = new float[len * len];
            if (softcap > 0 && capped.Length < len * len) capped = new float[len * len];
            var dpS = dp.AsSpan(0, len * len);
            for (int h = 0; h < heads; h++)
            {
                int kvh = h / group;
                var p = probs.Slice((int)(probOffset + (long)h * len * len), len * len);
                var dO = doutput.Slice(t0 * qStride + h * headDim);
                var qh = q.Slice(t0 * qStride + h * headDim);
                var kh = k.Slice(t0 * kvStride + kvh * headDim);
                var vh = v.Slice(t0 * kvStride + kvh * headDim);
                // dV (len,D) += Pᵀ (len,len) · dO (len,D)
                Gemm.Compute(Transpose.Yes, Transpose.No, len, headDim, len, 1f, p, len, dO, qStride, 1f, dv.Slice(t0 * kvStride + kvh * headDim), kvStride);
                // dP (len,len) = dO (len,D) · V (len,D)ᵀ, lower triangle only (P is zero above it)
                Gemm.ComputeLower(Transpose.No, Transpose.Yes, len, headDim, 1f, dO, qStride, vh, kvStride, 0f, dpS, len);
                // dS = P ∘ (dP − Σ_j dP_ij P_ij), row by row (zero above the diagonal since P is)
                for (int i = 0; i < len; i++)
                {
                    var pi = p.Slice(i * len, i + 1);
                    var di = dpS.Slice(i * len, len);
                    float dot = Reduce.Dot(pi, di[..(i + 1)]);
                    TensorPrimitives.Subtract(di[..(i + 1)], dot, di[..(i + 1)]);
                    TensorPrimitives.Multiply(di[..(i + 1)], pi, di[..(i + 1)]);
                    di[(i + 1)..].Clear();
                }
                if (softcap > 0)
                {
                    // capped (len,len) = c·tanh(Q·Kᵀ·scale / c), lower triangle;  dS_raw = dS · (1 − (capped/c)²)
                    var cs = capped.AsSpan(0, len * len);
                    Gemm.ComputeLower(Transpose.No, Transpose.Yes, len, headDim, scale, qh, qStride, kh, kvStride, 0f, cs, len);
                    for (int i = 0; i < len; i++)
                    {
                        SoftcapForward(cs.Slice(i * len, i + 1), softcap);
                        SoftcapBackward(dpS.Slice(i * len, i + 1), cs.Slice(i * len, i + 1), softcap);
                    }
                }
                // dQ (len,D) += dS · K · scale;  dK (len,D) += dSᵀ · Q · scale
                Gemm.Compute(Transpose.No, Transpose.No, len, headDim, len, scale, dpS, len, kh, kvStride, 1f, dq.Slice(t0 * qStride + h * headDim), qStride);
                Gemm.Compute(Transpose.Yes, Transpose.No, len, headDim, len, scale, dpS, len, qh, qStride, 1f, dk.Slice(t0 * kvStride + kvh * headDim), kvStride);
            }
            probOffset += (long)heads * len * len;
        }
    }

    // out (T, H·D) = attention of each token's query q (T, H·D) over its own sequence's cached keys and
    // values at positions 0 … its position (the cache already holds this token's key and value); with a
    // sliding window W > 0 only positions > its position − W (the cache keeps all, the window masks)
    public static void AttentionCachedForward(Span<float> output, ReadOnlySpan<float> q, KvCache cache, int layer,
        ReadOnlySpan<int> cacheSequenceOfToken, ReadOnlySpan<int> positions, int heads, int kvHeads, int headDim, int window = 0,
        float scale = 0f, float softcap = 0f)
    {
        int qStride = heads * headDim, kvStride = kvHeads * headDim, group = heads / kvHeads;
        if (scale <= 0) scale = 1f / MathF.Sqrt(headDim);
        float[] scores = [];
        for (int t = 0; t < positions.Length; t++)
        {
            int end = positions[t] + 1, first = WindowStart(positions[t], window), len = end - first;
            if (scores.Length < len) scores = new float[Math.Max(len, 2 * scores.Length)];
            var sc = scores.AsSpan(0, len);
            var keys = cache.Keys(cacheSequenceOfToken[t], layer, end)[(first * kvStride)..];
            var values = cache.Values(cacheSequenceOfToken[t], layer, end)[(first * kvStride)..];
            for (int h = 0; h < heads; h++)
            {
                int kvh = h / group;
                var qh = q.Slice(t * qStride + h * headDim, headDim);
                for (int j = 0; j < len; j++) sc[j] = Reduce.Dot(qh, keys.Slice(j * kvStride + kvh * headDim, headDim)) * scale;
                SoftcapForward(sc, softcap);
                float max = TensorPrimitives.Max(sc);
                TensorPrimitives.Subtract(sc, max, sc);
                TensorPrimitives.Exp(sc, sc);
                TensorPrimitives.Divide(sc, Reduce.Sum(sc), sc);
                var o = output.Slice(t * qStride + h * headDim, headDim);
                o.Clear();
                for (int j = 0; j < len; j++) TensorPrimitives.FusedMultiplyAdd(values.Slice(j * kvStride + kvh * headDim, headDim), sc[j], o, o);
            }
        }
    }

    /// <summary>Number of floats <see cref="AttentionForward"/> saves for a batch: Σ_s len_s² · heads.</summary>
    public static long AttentionProbsLength(ReadOnlySpan<int> starts, int heads)
    {
        long n = 0;
        for (int s = 0; s + 1 < starts.Length; s++) n += (long)(starts[s + 1] - starts[s]) * (starts[s + 1] - starts[s]);
        return n * heads;
    }

    // The first key position a query at position i attends to: 0, or i − window + 1 with a sliding window.
    private static int WindowStart(int i, int window) => window > 0 ? Math.Max(0, i - window + 1) : 0;

    // Row-wise softmax of the lower triangle of p (len,len) in place, row i over columns
    // WindowStart(i) … i; every other entry becomes 0.
    private static void CausalSoftmax(Span<float> p, int len, int window)
    {
        for (int i = 0; i < len; i++)
        {
            int first = WindowStart(i, window);
            p.Slice(i * len, first).Clear();
            var row = p.Slice(i * len + first, i + 1 - first);
            float max = TensorPrimitives.Max(row);
            TensorPrimitives.Subtract(row, max, row);
            TensorPrimitives.Exp(row, row);
            TensorPrimitives.Divide(row, Reduce.Sum(row), row);
            p.Slice(i * len + i + 1, len - i - 1).Clear();
        }
    }

    // ---- cross-entropy with Hugging Face's shift ---------------------------------------------------
    //   position t predicts targets[t] (the caller has already shifted: targets[t] = labels[t + 1]
    //   within a sequence, −100 for the last token and for unlabelled ones)

    /// <summary>
    /// For rows of <paramref name="logits"/> (R,V) with a target ≠ −100: adds −log softmax(logits)[target]
    /// to <paramref name="losses"/> (R) and, if <paramref name="dlogits"/> is not empty, writes
    /// <c>(softmax − onehot) · gradScale</c> into it (0 for unlabelled rows). Returns the number of labelled rows.
    /// </summary>
    public static int CrossEntropyForwardBackward(Span<float> losses, Span<float> dlogits, ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, int vocab, float gradScale)
    {
        int labelled = 0;
        var e = new float[vocab];
        for (int r = 0; r < targets.Length; r++)
        {
            var row = logits.Slice(r * vocab, vocab);
            int y = targets[r];
            if (y == -100)
            {
                if (!dlogits.IsEmpty) dlogits.Slice(r * vocab, vocab).Clear();
                continue;
            }
            if ((uint)y >= (uint)vocab) throw new ArgumentOutOfRangeException(nameof(targets), $"Target {y} is outside the vocabulary of {vocab}.");
            labelled++;
            // log Σ exp(z) = max + log Σ exp(z − max), the exponentials in float (each ≤ 1), summed in pairs
            float max = TensorPrimitives.Max(row);
            TensorPrimitives.Subtract(row, max, e);
            TensorPrimitives.Exp(e, e);
            double sum = Reduce.Sum(e);
            losses[r] += (float)(max + Math.Log(sum) - row[y]);
            if (dlogits.IsEmpty) continue;
            // ∂/∂z = softmax − onehot, scaled
            var d = dlogits.Slice(r * vocab, vocab);
            TensorPrimitives.Multiply(e, (float)(gradScale / sum), d);
            d[y] -= gradScale;
        }
        return labelled;
    }
}
