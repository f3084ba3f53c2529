namespace Irr.Model;

/// <summary>Teacher-forced scoring: the log-probability the model gives every labelled token of each sequence.</summary>
public static class Scoring
{
    /// <summary>
    /// For each sequence, the log-probabilities of its labelled target tokens (labels ≠ −100, shifted as
    /// Hugging Face does), in order. Sequences are scored <paramref name="batchSize"/> at a time;
    /// <paramref name="progress"/> gets (sequences, tokens) per batch.
    /// </summary>
    public static List<float>[] TargetLogProbs(Transformer model, IReadOnlyList<(int[] InputIds, int[] Labels)> sequences, int batchSize,
        Action<int, int>? progress = null)
    {
        if (batchSize < 1) throw new IrrException($"the batch size must be at least 1, not {batchSize}");
        var logProbs = new List<float>[sequences.Count];
        for (int start = 0; start < sequences.Count; start += batchSize)
        {
            var items = sequences.Skip(start).Take(batchSize).ToArray();
            var batch = Batch.Create(items.Select(e => (IReadOnlyList<int>)e.InputIds).ToList(), items.Select(e => (IReadOnlyList<int>)e.Labels).ToList());
            var result = model.Loss(batch);
            for (int i = 0; i < items.Length; i++)
            {
                var lp = new List<float>();
                for (int t = batch.Starts[i]; t < batch.Starts[i + 1]; t++)
                    if (!float.IsNaN(result.TargetLogProbs[t])) lp.Add(result.TargetLogProbs[t]);
                logProbs[start + i] = lp;
            }
            progress?.Invoke(items.Length, batch.TokenCount);
        }
        return logProbs;
    }
}
