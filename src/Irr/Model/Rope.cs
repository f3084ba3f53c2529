using Irr.IO;

namespace Irr.Model;

/// <summary>
/// Rotary-embedding tables as Hugging Face computes them (float32):
/// <c>inv_freq[i] = 1 / θ^(2i/D)</c>, rescaled for <c>rope_scaling</c> (<c>linear</c>: ÷ factor;
/// <c>llama3</c>: low frequencies ÷ factor, high ones kept, a smooth blend between; Phi-3's <c>longrope</c>:
/// ÷ short_factor, or ÷ long_factor for a sequence longer than original_max_position_embeddings, with cos and sin
/// × attention_factor), then <c>cos</c>/<c>sin</c> of <c>position · inv_freq</c>.
/// </summary>
public sealed class Rope
{
    private readonly Table shortTable, longTable;
    private readonly int longAbove;

    /// <summary>The tables for a model's head_dim, rope_theta and rope_scaling (those of its global layers).</summary>
    public Rope(ModelConfig config) : this(config.HeadDim, new RotaryParameters(config.RopeTheta, config.RopeScaling)) { }

    /// <summary>The tables for <paramref name="headDim"/> and a layer's rotary parameters.</summary>
    public Rope(int headDim, RotaryParameters parameters)
    {
        HeadDim = headDim;
        var scaling = parameters.Scaling;
        float attention = scaling is { Type: "longrope" } ? (float)scaling.AttentionFactor : 1f;
        InverseFrequencies = InverseFrequency(headDim, parameters.Theta, scaling, scaling?.ShortFactor);
        shortTable = new Table(InverseFrequencies, attention);
        if (scaling is { Type: "longrope", LongFactor: { } longFactor })
        {
            longTable = new Table(InverseFrequency(headDim, parameters.Theta, scaling, longFactor), attention);
            longAbove = scaling.OriginalMaxPositionEmbeddings;
        }
        else (longTable, longAbove) = (shortTable, int.MaxValue);
    }

    /// <summary>head_dim.</summary>
    public int HeadDim { get; }

    /// <summary>inv_freq (D/2) (longrope: with the short factors).</summary>
    public float[] InverseFrequencies { get; }

    /// <summary>Whether the tables depend on the sequence's length (longrope).</summary>
    public bool DependsOnLength => !ReferenceEquals(shortTable, longTable);

    /// <summary>cos (positions, D/2), valid for positions below <see cref="Ensure"/>'s argument.</summary>
    public ReadOnlySpan<float> Cos => shortTable.Cos;

    /// <summary>sin (positions, D/2).</summary>
    public ReadOnlySpan<float> Sin => shortTable.Sin;

    /// <summary>
    /// cos and sin (positions, D/2) for a sequence whose positions reach <paramref name="length"/> − 1 in this call, as
    /// transformers' dynamic longrope update picks them (seq_len = max(position_ids) + 1), covering positions below it.
    /// </summary>
    public (float[] Cos, float[] Sin) TablesFor(int length)
    {
        var table = length > longAbove ? longTable : shortTable;
        table.Ensure(length);
        return (table.Cos, table.Sin);
    }

    /// <summary>Makes the tables cover positions 0 … count − 1.</summary>
    public void Ensure(int count) => shortTable.Ensure(count);

    // cos, sin (positions, D/2) of position · inv_freq, × the attention factor, grown on demand
    private sealed class Table(float[] inverseFrequencies, float attentionFactor)
    {
        private int positions;
        public float[] Cos = [], Sin = [];

        public void Ensure(int count)
        {
            if (count <= positions) return;
            int half = inverseFrequencies.Length, n = Math.Max(count, 2 * positions);
            var c = new float[n * half];
            var s = new float[n * half];
            for (int p = 0; p < n; p++)
                for (int i = 0; i < half; i++)
                {
                    float angle = p * inverseFrequencies[i]; // float32 product, as HF's freqs = inv_freq @ position_ids
                    c[p * half + i] = MathF.Cos(angle);
                    s[p * half + i] = MathF.Sin(angle);
                }
            if (attentionFactor != 1f)
            {
                System.Numerics.Tensors.TensorPrimitives.Multiply(c, attentionFactor, c); // HF: emb.cos() * attention_scaling
                System.Numerics.Tensors.TensorPrimitives.Multiply(s, attentionFactor, s);
            }
            (Cos, Sin, positions) = (c, s, n);
        }
    }

    private static float[] InverseFrequency(int dim, double theta, RopeScaling? scaling, IReadOnlyList<double>? extFactors)
    {
        int half = dim / 2;
        var inv = new float[half];
        if (scaling is { Type: "longrope" })
        {
            // _compute_longrope_parameters: inv_freq = 1 / (ext_factors · base^(2i/D)), in float32
            for (int i = 0; i < half; i++) inv[i] = 1f / ((float)extFactors![i] * MathF.Pow((float)theta, 2f * i / dim));
            return inv;
        }
        for (int i = 0; i < half; i++) inv[i] = 1f / MathF.Pow((float)theta, 2f * i / dim);
        if (scaling is null) return inv;
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
