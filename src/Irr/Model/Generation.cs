using System.Numerics.Tensors;

namespace Irr.Model;

/// <summary>How <see cref="Generation.Generate"/> decodes.</summary>
public sealed record GenerationOptions
{
    /// <summary>Most tokens generated per prompt.</summary>
    public int MaxNewTokens { get; init; } = 256;

    /// <summary>Generation of a prompt stops after any of these ids (which is kept in the output).</summary>
    public IReadOnlyCollection<int> EosTokenIds { get; init; } = [];

    /// <summary>0 (the default) decodes greedily; otherwise logits are divided by it and sampled.</summary>
    public float Temperature { get; init; }

    /// <summary>Nucleus sampling: keep the most likely tokens whose probabilities sum to at least this (1 = off).</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>Keep only the k most likely tokens (0 = off).</summary>
    public int TopK { get; init; }

    /// <summary>Seed of the sampler; prompt i uses its own stream derived from it and i (<see cref="Generation.SamplerSeed"/>), so results depend neither on batching nor on the process.</summary>
    public int Seed { get; init; }

    /// <summary>Prompts decoded together.</summary>
    public int BatchSize { get; init; } = 8;
}

/// <summary>Autoregressive decoding with a KV cache: greedy, or temperature / top-k / top-p sampling.</summary>
public static class Generation
{
    /// <summary>
    /// The tokens generated after each prompt (not including the prompt), ending with an EOS id if
    /// one was produced. <paramref name="progress"/> is called with the number of tokens each decoding
    /// step produced.
    /// </summary>
    /// <remarks>
    /// Prompts are decoded in batches of <see cref="GenerationOptions.BatchSize"/> in order (prompts 0 … B−1, B … 2B−1, …).
    /// With <paramref name="known"/> (answers kept from an interrupted run, by prompt index), a batch whose every answer
    /// is known is not decoded: its answers are taken as they are; a batch with any answer missing is decoded whole, as
    /// an uninterrupted run decodes it, so that resuming gives the same tokens. <paramref name="generated"/> is told each
    /// answer of a decoded batch that was not known (prompt index, tokens) as soon as its batch ends. A stop request
    /// (<see cref="Interruption"/>) ends generation between decoding steps with an <see cref="OperationCanceledException"/>.
    /// </remarks>
    /// <exception cref="OperationCanceledException">A stop was requested (<see cref="Interruption.Requested"/>).</exception>
    public static IReadOnlyList<int[]> Generate(Transformer model, IReadOnlyList<IReadOnlyList<int>> prompts, GenerationOptions options, Action<int>? progress = null,
        Func<int, int[]?>? known = null, Action<int, int[]>? generated = null)
    {
        if (options.BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(options), "BatchSize must be at least 1.");
        var results = new int[prompts.Count][];
        for (int b0 = 0; b0 < prompts.Count; b0 += options.BatchSize)
        {
            Interruption.ThrowIfRequested();
            int n = Math.Min(options.BatchSize, prompts.Count - b0);
            var kept = Enumerable.Range(0, n).Select(i => known?.Invoke(b0 + i)).ToArray();
            if (kept.All(k => k is not null))
            {
                for (int i = 0; i < n; i++) results[b0 + i] = kept[i]!;
                progress?.Invoke(kept.Sum(k => k!.Length));
                continue;
            }
            var cache = new KvCache(model.Config, n);
            var outputs = Enumerable.Range(0, n).Select(_ => new List<int>()).ToArray();
            var samplers = Enumerable.Range(0, n).Select(i => new Random(SamplerSeed(options.Seed, b0 + i))).ToArray();
            var active = Enumerable.Range(0, n).Where(i => options.MaxNewTokens > 0).ToList();
            IReadOnlyList<IReadOnlyList<int>> next = active.Select(i => prompts[b0 + i]).ToList();
            while (active.Count > 0)
            {
                Interruption.ThrowIfRequested(); // a stop ends between generated tokens
                next = RecomputeAtLongRopeSwitch(model.Config, next, active, cache, i => prompts[b0 + i], outputs);
                var logits = model.NextTokenLogits(next, cache, active);
                int v = model.Config.VocabSize;
                var stillActive = new List<int>();
                var nextTokens = new List<IReadOnlyList<int>>();
                for (int k = 0; k < active.Count; k++)
                {
                    int i = active[k];
                    int token = Pick(logits.AsSpan(k * v, v), options, samplers[i]);
                    outputs[i].Add(token);
                    if (options.EosTokenIds.Contains(token) || outputs[i].Count >= options.MaxNewTokens) continue;
                    stillActive.Add(i);
                    nextTokens.Add([token]);
                }
                progress?.Invoke(active.Count);
                active = stillActive;
                next = nextTokens;
            }
            for (int i = 0; i < n; i++)
            {
                results[b0 + i] = [.. outputs[i]];
                if (kept[i] is null) generated?.Invoke(b0 + i, results[b0 + i]);
            }
        }
        return results;
    }

    // Phi-3's longrope, as transformers' Phi3ForCausalLM.prepare_inputs_for_generation: when a sequence first grows past
    // original_max_position_embeddings (its cache rotated with the short factors), the cache is dropped and the whole
    // sequence runs again, now with the long factors, so every cached key is rotated as the new queries are.
    private static IReadOnlyList<IReadOnlyList<int>> RecomputeAtLongRopeSwitch(IO.ModelConfig config, IReadOnlyList<IReadOnlyList<int>> next,
        List<int> active, KvCache cache, Func<int, IReadOnlyList<int>> prompt, List<int>[] outputs)
    {
        if (config.RopeScaling is not { Type: "longrope", OriginalMaxPositionEmbeddings: var original }) return next;
        List<IReadOnlyList<int>>? changed = null;
        for (int k = 0; k < active.Count; k++)
        {
            int i = active[k], past = cache.Length(i);
            if (past == 0 || past > original || past + next[k].Count < original + 1) continue;
            changed ??= [.. next];
            changed[k] = [.. prompt(i), .. outputs[i]];
            cache.SetLength(i, 0);
        }
        return changed ?? next;
    }

    /// <summary>
    /// The seed of prompt <paramref name="index"/>'s sampler: <paramref name="seed"/> and the index mixed by SplitMix64's
    /// finalizer, the same in every process (unlike <see cref="HashCode"/>, whose seed is random per process), so that a
    /// sampled answer is the same whether it was generated in this run or kept from an earlier one.
    /// </summary>
    public static int SamplerSeed(int seed, int index)
    {
        ulong z = ((ulong)(uint)seed << 32 | (uint)index) + 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return (int)(z ^ (z >> 31));
    }

    /// <summary>
    /// The next token from one row of logits: the first maximum when greedy; otherwise, as
    /// transformers' logits warpers do, temperature, then top-k, then top-p, then a draw.
    /// </summary>
    public static int Pick(ReadOnlySpan<float> logits, GenerationOptions options, Random rng)
    {
        if (options.Temperature <= 0) return TensorPrimitives.IndexOfMax(logits);
        int v = logits.Length;
        var scaled = new float[v];
        TensorPrimitives.Divide(logits, options.Temperature, scaled);
        var order = Enumerable.Range(0, v).OrderByDescending(i => scaled[i]).ThenBy(i => i).ToArray();
        int keep = options.TopK > 0 ? Math.Min(options.TopK, v) : v;
        float max = scaled[order[0]];
        var p = new double[keep];
        double z = 0;
        for (int r = 0; r < keep; r++) z += p[r] = Math.Exp(scaled[order[r]] - max);
        for (int r = 0; r < keep; r++) p[r] /= z;
        if (options.TopP < 1f)
        {
            // Keep the smallest prefix (by probability) whose mass reaches top_p, at least one token.
            double mass = 0;
            int r = 0;
            while (r < keep && mass < options.TopP) mass += p[r++];
            keep = Math.Max(1, r);
            z = 0;
            for (int i = 0; i < keep; i++) z += p[i];
            for (int i = 0; i < keep; i++) p[i] /= z;
        }
        double u = rng.NextDouble(), acc = 0;
        for (int r = 0; r < keep; r++)
        {
            acc += p[r];
            if (u < acc) return order[r];
        }
        return order[keep - 1];
    }
}
