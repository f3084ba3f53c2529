using Irr.IO;

namespace Irr.Model;

/// <summary>
/// Rotary-embedding tables as Hugging Face computes them (float32):
/// <c>inv_freq[i] = 1 / θ^(2i/D)</c>, rescaled for <c>rope_scaling</c> (<c>linear</c>: ÷ factor;
/// <c>llama3</c>: low frequencies ÷ factor, high ones kept, a smooth blend between), then
/// <c>cos</c>/<c>sin</c> of <c>position · inv_freq</c>.
/// </summary>
public sealed class Rope
{
    private float[] cos = [], sin = [];
    private int positions;

    /// <summary>The tables for a model's head_dim, rope_theta and rope_scaling.</summary>
    public Rope(ModelConfig config)
    {
        HeadDim = config.HeadDim;
        InverseFrequencies = InverseFrequency(config);
    }

    /// <summary>head_dim.</summary>
    public int HeadDim { get; }

    /// <summary>inv_freq (D/2).</summary>
    public float[] InverseFrequencies { get; }

    /// <summary>cos (positions, D/2), valid for positions below <see cref="Ensure"/>'s argument.</summary>
    public ReadOnlySpan<float> Cos => cos;

    /// <summary>sin (positions, D/2).</summary>
    public ReadOnlySpan<float> Sin => sin;

    /// <summary>Makes the tables cover positions 0 … count − 1.</summary>
    public void Ensure(int count)
    {
        if (count <= positions) return;
        int half = HeadDim / 2, n = Math.Max(count, 2 * positions);
        var c = new float[n * half];
        var s = new float[n * half];
        for (int p = 0; p < n; p++)
            for (int i = 0; i < half; i++)
            {
                float angle = p * InverseFrequencies[i]; // float32 product, as HF's freqs = inv_freq @ position_ids
                c[p * half + i] = MathF.Cos(angle);
                s[p * half + i] = MathF.Sin(angle);
            }
        (cos, sin, positions) = (c, s, n);
    }

    private static float[] InverseFrequency(ModelConfig config)
    {
        int dim = config.HeadDim, half = dim / 2;
        var inv = new float[half];
        for (int i = 0; i < half; i++) inv[i] = 1f / MathF.Pow((float)config.RopeTheta, 2f * i / dim);
        if (config.RopeScaling is not { } scaling) return inv;
        float factor = (float)scaling.Factor;
        if (scaling.Type == "linear")
        {
            for (int i = 0; i < half; i++) inv[i] /= factor;
            return inv;
        }
        // llama3 (transformers' _compute_llama3_parameters)
        float low = (float)scaling.LowFreqFactor, high = (float)scaling.HighFreqFactor, old = scaling.OriginalMaxPositionEmbeddings;
        float lowWavelen = old / low, highWavelen = old / high;
        for (int i = 0; i < half; i++)
        {
            float wavelen = 2f * MathF.PI / inv[i];
            float f = wavelen > lowWavelen ? inv[i] / factor : inv[i];
            if (!(wavelen < highWavelen) && !(wavelen > lowWavelen))
            {
                float smooth = (old / wavelen - low) / (high - low);
                f = (1 - smooth) * f / factor + smooth * f;
            }
            inv[i] = f;
        }
        return inv;
    }
}
