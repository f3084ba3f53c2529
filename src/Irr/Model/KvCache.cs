namespace Irr.Model;

/// <summary>
/// Keys and values (after RoPE) of the tokens a model has already seen, per sequence and layer,
/// so generation runs each new token through the model once instead of the whole prefix.
/// </summary>
public sealed class KvCache
{
    private readonly int layers, width;
    private readonly float[][][] keys, values; // [sequence][layer] → (capacity, KVH·D)
    private readonly int[] lengths;

    /// <summary>A cache for <paramref name="sequences"/> sequences of a model.</summary>
    public KvCache(IO.ModelConfig config, int sequences)
    {
        layers = config.NumHiddenLayers;
        width = config.NumKeyValueHeads * config.HeadDim;
        keys = new float[sequences][][];
        values = new float[sequences][][];
        lengths = new int[sequences];
        for (int s = 0; s < sequences; s++)
        {
            keys[s] = new float[layers][];
            values[s] = new float[layers][];
            for (int l = 0; l < layers; l++) keys[s][l] = values[s][l] = [];
        }
    }

    /// <summary>Tokens cached for sequence <paramref name="sequence"/>.</summary>
    public int Length(int sequence) => lengths[sequence];

    /// <summary>Sequences in the cache.</summary>
    public int Sequences => lengths.Length;

    /// <summary>The cached keys of a sequence and layer (length × KVH·D).</summary>
    public ReadOnlySpan<float> Keys(int sequence, int layer, int length) => keys[sequence][layer].AsSpan(0, length * width);

    /// <summary>The cached values of a sequence and layer.</summary>
    public ReadOnlySpan<float> Values(int sequence, int layer, int length) => values[sequence][layer].AsSpan(0, length * width);

    /// <summary>Stores the key and value of token <paramref name="position"/> of a sequence at a layer.</summary>
    public void Store(int sequence, int layer, int position, ReadOnlySpan<float> key, ReadOnlySpan<float> value)
    {
        Grow(ref keys[sequence][layer], position + 1);
        Grow(ref values[sequence][layer], position + 1);
        key.CopyTo(keys[sequence][layer].AsSpan(position * width, width));
        value.CopyTo(values[sequence][layer].AsSpan(position * width, width));
    }

    /// <summary>Records that a sequence now holds <paramref name="length"/> tokens (after the last layer stored them).</summary>
    public void SetLength(int sequence, int length) => lengths[sequence] = length;

    private void Grow(ref float[] buffer, int tokens)
    {
        if (buffer.Length >= tokens * width) return;
        int capacity = Math.Max(tokens, Math.Max(16, 2 * buffer.Length / Math.Max(width, 1)));
        Array.Resize(ref buffer, capacity * width);
    }
}
