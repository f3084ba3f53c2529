namespace Irr.Model;

/// <summary>
/// Sequences of different lengths packed into one token stream, without padding: sequence s is
/// tokens <c>[Starts[s], Starts[s + 1])</c>, its positions count from 0. Labels, when given, are
/// aligned with the tokens as in Hugging Face (−100 = no loss); the model shifts them.
/// </summary>
public sealed class Batch
{
    private Batch(int[] tokens, int[] positions, int[] starts, int[]? labels)
    {
        Tokens = tokens;
        Positions = positions;
        Starts = starts;
        Labels = labels;
    }

    /// <summary>Token ids (T).</summary>
    public int[] Tokens { get; }

    /// <summary>Position of each token within its sequence (T).</summary>
    public int[] Positions { get; }

    /// <summary>Sequence boundaries (S + 1).</summary>
    public int[] Starts { get; }

    /// <summary>Labels (T), or null.</summary>
    public int[]? Labels { get; }

    /// <summary>T.</summary>
    public int TokenCount => Tokens.Length;

    /// <summary>S.</summary>
    public int SequenceCount => Starts.Length - 1;

    /// <summary>
    /// Packs sequences (and their labels, each the same length as its sequence). With
    /// <paramref name="firstPositions"/>, sequence s starts at that position (tokens continuing a
    /// sequence whose earlier tokens are in a KV cache).
    /// </summary>
    public static Batch Create(IReadOnlyList<IReadOnlyList<int>> sequences, IReadOnlyList<IReadOnlyList<int>>? labels = null, IReadOnlyList<int>? firstPositions = null)
    {
        if (labels is not null && labels.Count != sequences.Count)
            throw new ArgumentException($"{labels.Count} label sequences for {sequences.Count} token sequences.", nameof(labels));
        int total = sequences.Sum(s => s.Count);
        var tokens = new int[total];
        var positions = new int[total];
        var starts = new int[sequences.Count + 1];
        var packedLabels = labels is null ? null : new int[total];
        int t = 0;
        for (int s = 0; s < sequences.Count; s++)
        {
            starts[s] = t;
            var seq = sequences[s];
            if (seq.Count == 0) throw new ArgumentException($"Sequence {s} is empty.", nameof(sequences));
            if (labels is not null && labels[s].Count != seq.Count)
                throw new ArgumentException($"Sequence {s} has {seq.Count} tokens but {labels[s].Count} labels.", nameof(labels));
            for (int i = 0; i < seq.Count; i++, t++)
            {
                tokens[t] = seq[i];
                positions[t] = (firstPositions?[s] ?? 0) + i;
                if (packedLabels is not null) packedLabels[t] = labels![s][i];
            }
        }
        starts[^1] = t;
        return new Batch(tokens, positions, starts, packedLabels);
    }

    /// <summary>
    /// The target each position predicts: the next token's label within the same sequence, −100 at a
    /// sequence's last token (Hugging Face's <c>shift_labels = labels[..., 1:]</c>).
    /// </summary>
    public int[] ShiftedTargets()
    {
        if (Labels is null) throw new InvalidOperationException("The batch has no labels.");
        var targets = new int[TokenCount];
        for (int s = 0; s < SequenceCount; s++)
        {
            for (int t = Starts[s]; t < Starts[s + 1] - 1; t++) targets[t] = Labels[t + 1];
            targets[Starts[s + 1] - 1] = -100;
        }
        return targets;
    }
}
