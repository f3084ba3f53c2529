using Irr.IO;

namespace Irr.Tests.Model;

/// <summary>
/// A straightforward Llama forward pass in double precision, written from Hugging Face's
/// modeling_llama.py (one sequence, plain loops, no packing, no GEMM, no streaming): the independent
/// reference for the model's logits. Sliding windows come from <c>layer_types</c>-style per-layer sizes:
/// key j is masked for query i when i − j ≥ window (transformers' sliding_window_overlay).
/// </summary>
internal static class NaiveLlama
{
    /// <param name="invFreqAt">The rotary frequencies of the token at a position (Phi-3's longrope, whose factors depend on
    /// the forward call that processed the token); default: <c>1 / θ^(2i/D)</c> everywhere.</param>
    /// <param name="attentionFactor">cos and sin are multiplied by it (longrope's attention_factor).</param>
    public static double[,] Logits(ModelConfig cfg, Func<string, float[]> w, int[] tokens, Func<int, double[]>? invFreqAt = null, double attentionFactor = 1)
    {
        int T = tokens.Length, C = cfg.HiddenSize, H = cfg.NumAttentionHeads, KV = cfg.NumKeyValueHeads, D = cfg.HeadDim, I = cfg.IntermediateSize, V = cfg.VocabSize;
        var x = new double[T, C];
        var emb = w("model.embed_tokens.weight");
        for (int t = 0; t < T; t++) for (int c = 0; c < C; c++) x[t, c] = emb[tokens[t] * C + c];

        // inv_freq = 1 / theta^(2i/D); cos/sin of position · inv_freq (default rope only)
        var invFreq = new double[D / 2];
        for (int i = 0; i < D / 2; i++) invFreq[i] = 1.0 / Math.Pow(cfg.RopeTheta, 2.0 * i / D);
        invFreqAt ??= _ => invFreq;

        for (int l = 0; l < cfg.NumHiddenLayers; l++)
        {
            string p = $"model.layers.{l}.";
            var a = RmsNorm(x, w(p + "input_layernorm.weight"), cfg.RmsNormEps);
            var q = Linear(a, w(p + "self_attn.q_proj.weight"), Bias(cfg, w, p + "self_attn.q_proj.bias"), H * D);
            var k = Linear(a, w(p + "self_attn.k_proj.weight"), Bias(cfg, w, p + "self_attn.k_proj.bias"), KV * D);
            var v = Linear(a, w(p + "self_attn.v_proj.weight"), Bias(cfg, w, p + "self_attn.v_proj.bias"), KV * D);
            Rotate(q, H, D, invFreqAt, attentionFactor);
            Rotate(k, KV, D, invFreqAt, attentionFactor);
            var o = new double[T, H * D];
            int W = cfg.SlidingWindowOf(l);
            bool Masked(int i, int j) => j > i || (W > 0 && i - j >= W);
            for (int h = 0; h < H; h++)
            {
                int kh = h / (H / KV); // repeat_kv
                for (int i = 0; i < T; i++)
                {
                    var s = new double[i + 1];
                    double max = double.NegativeInfinity;
                    for (int j = 0; j <= i; j++)
                    {
                        if (Masked(i, j)) { s[j] = double.NegativeInfinity; continue; }
                        double dot = 0;
                        for (int d = 0; d < D; d++) dot += q[i, h * D + d] * k[j, kh * D + d];
                        s[j] = dot / Math.Sqrt(D);
                        max = Math.Max(max, s[j]);
                    }
                    double z = 0;
                    for (int j = 0; j <= i; j++) z += s[j] = Math.Exp(s[j] - max);
                    for (int d = 0; d < D; d++)
                    {
                        double acc = 0;
                        for (int j = 0; j <= i; j++) acc += s[j] / z * v[j, kh * D + d];
                        o[i, h * D + d] = acc;
                    }
                }
            }
            Add(x, Linear(o, w(p + "self_attn.o_proj.weight"), cfg.OutputBias ? w(p + "self_attn.o_proj.bias") : null, C));
            var b = RmsNorm(x, w(p + "post_attention_layernorm.weight"), cfg.RmsNormEps);
            var g = Linear(b, w(p + "mlp.gate_proj.weight"), MlpBias(cfg, w, p + "mlp.gate_proj.bias"), I);
            var u = Linear(b, w(p + "mlp.up_proj.weight"), MlpBias(cfg, w, p + "mlp.up_proj.bias"), I);
            var m = new double[T, I];
            for (int t = 0; t < T; t++) for (int i = 0; i < I; i++) m[t, i] = g[t, i] / (1 + Math.Exp(-g[t, i])) * u[t, i];
            Add(x, Linear(m, w(p + "mlp.down_proj.weight"), MlpBias(cfg, w, p + "mlp.down_proj.bias"), C));
        }
        var hFinal = RmsNorm(x, w("model.norm.weight"), cfg.RmsNormEps);
        return Linear(hFinal, w(cfg.TieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight"), null, V);
    }

    private static float[]? Bias(ModelConfig cfg, Func<string, float[]> w, string name) => cfg.QkvBias ? w(name) : null;

    private static float[]? MlpBias(ModelConfig cfg, Func<string, float[]> w, string name) => cfg.MlpBias ? w(name) : null;

    private static double[,] RmsNorm(double[,] x, float[] weight, double eps)
    {
        int T = x.GetLength(0), C = x.GetLength(1);
        var y = new double[T, C];
        for (int t = 0; t < T; t++)
        {
            double ms = 0;
            for (int c = 0; c < C; c++) ms += x[t, c] * x[t, c];
            double r = 1 / Math.Sqrt(ms / C + eps);
            for (int c = 0; c < C; c++) y[t, c] = weight[c] * (x[t, c] * r);
        }
        return y;
    }

    private static double[,] Linear(double[,] x, float[] weight, float[]? bias, int outDim)
    {
        int T = x.GetLength(0), C = x.GetLength(1);
        var y = new double[T, outDim];
        for (int t = 0; t < T; t++)
            for (int o = 0; o < outDim; o++)
            {
                double s = bias?[o] ?? 0;
                for (int c = 0; c < C; c++) s += x[t, c] * weight[o * C + c];
                y[t, o] = s;
            }
        return y;
    }

    // rotate_half: (x1, x2) → (x1·cos − x2·sin, x2·cos + x1·sin) on the halves of each head
    private static void Rotate(double[,] x, int heads, int D, Func<int, double[]> invFreqAt, double factor)
    {
        for (int t = 0; t < x.GetLength(0); t++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < D / 2; i++)
                {
                    double a = t * invFreqAt(t)[i], x1 = x[t, h * D + i], x2 = x[t, h * D + i + D / 2];
                    double cos = factor * Math.Cos(a), sin = factor * Math.Sin(a);
                    x[t, h * D + i] = x1 * cos - x2 * sin;
                    x[t, h * D + i + D / 2] = x2 * cos + x1 * sin;
                }
    }

    private static void Add(double[,] x, double[,] y)
    {
        for (int t = 0; t < x.GetLength(0); t++) for (int c = 0; c < x.GetLength(1); c++) x[t, c] += y[t, c];
    }
}
