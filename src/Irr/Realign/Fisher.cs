using Irr.IO;
using Irr.Model;

namespace Irr.Realign;

/// <summary>
/// IRR step 2: the diagonal empirical Fisher of the aligned model on safety data,
/// <c>F = (1/B) Σ_b (∂L_b/∂W)²</c>, where <c>L_b</c> is the mean next-token loss over the labelled
/// tokens of batch b (examples in file order, batches of b, no shuffling). Gradients are computed
/// for the target weights only, one layer at a time, and squared into F as soon as a layer's
/// backward pass completes, so no full gradient is ever held.
/// </summary>
public static class Fisher
{
    /// <summary>The Fisher of every target weight, by name (float32, element-wise).</summary>
    /// <param name="model">The aligned model θ_A.</param>
    /// <param name="examples">Token ids and labels, in file order.</param>
    /// <param name="modules">Target modules.</param>
    /// <param name="batchSize">b.</param>
    /// <param name="progress">Called after each batch with (batches done, batch count, batch loss).</param>
    public static Dictionary<string, float[]> Compute(IWeightSource model, IReadOnlyList<(int[] Tokens, int[] Labels)> examples,
        IReadOnlyList<string> modules, int batchSize, Action<int, int, double>? progress = null)
    {
        var (fisher, batches) = SumOfSquares(model, examples, modules, batchSize, 0, 1, progress);
        foreach (var f in fisher.Values) System.Numerics.Tensors.TensorPrimitives.Divide(f, batches, f); // (1/B) Σ_b
        return fisher;
    }

    /// <summary>
    /// <c>Σ_b (∂L_b/∂W)²</c> over the batches of one shard: batch b (0-based, in file order) belongs to shard
    /// <c>b mod shardCount</c>. Summing the shards' sums and dividing by the total number of batches B gives
    /// <see cref="Compute"/>'s F up to float32 rounding (the additions happen in another order).
    /// </summary>
    /// <param name="model">The aligned model θ_A.</param>
    /// <param name="examples">Token ids and labels of every record, in file order (all shards see the same list).</param>
    /// <param name="modules">Target modules.</param>
    /// <param name="batchSize">b.</param>
    /// <param name="shard">This shard, in [0, shardCount).</param>
    /// <param name="shardCount">N, the number of shards.</param>
    /// <param name="progress">Called after each of this shard's batches with (its batches done, its batch count, batch loss).</param>
    /// <returns>The sums by tensor name, and how many batches this shard summed.</returns>
    public static (Dictionary<string, float[]> Sums, int Batches) SumOfSquares(IWeightSource model, IReadOnlyList<(int[] Tokens, int[] Labels)> examples,
        IReadOnlyList<string> modules, int batchSize, int shard, int shardCount, Action<int, int, double>? progress = null)
    {
        if (batchSize < 1) throw new IrrException($"the batch size must be at least 1, not {batchSize}");
        if (examples.Count == 0) throw new IrrException("no Fisher examples");
        var config = model.Config;
        modules = TargetModules.For(config, modules);
        var names = TargetModules.WeightNames(config, modules).ToList();
        var shapes = config.ExpectedTensors().ToDictionary(t => t.Name, t => t.Shape.Aggregate(1L, (a, d) => a * d));
        var fisher = names.ToDictionary(n => n, n => new float[shapes[n]], StringComparer.Ordinal);
        var gradients = Gradients.SharedAcrossLayers(config, modules);
        var transformer = new Transformer(model);
        int batches = (examples.Count + batchSize - 1) / batchSize;
        var mine = Enumerable.Range(0, batches).Where(b => b % shardCount == shard).ToList();
        int done = 0;
        foreach (int b in mine)
        {
            Interruption.ThrowIfRequested(); // a stop ends between batches
            var items = examples.Skip(b * batchSize).Take(batchSize).ToList();
            var batch = Batch.Create(items.Select(e => (IReadOnlyList<int>)e.Tokens).ToList(), items.Select(e => (IReadOnlyList<int>)e.Labels).ToList());
            if (batch.ShiftedTargets().All(t => t == -100))
                throw new IrrException($"Fisher batch {b + 1} (examples {b * batchSize + 1}–{b * batchSize + items.Count}) has no labelled token; its loss would be 0/0 (answers truncated away?)");
            var result = transformer.ForwardBackward(batch, gradients, afterLayer: layer =>
            {
                // Layer `layer`'s gradients of L_b are complete: F += g², then clear the shared buffers.
                foreach (string module in modules)
                {
                    string name = ModelConfig.LinearWeightName(layer, module);
                    var g = gradients[name];
                    System.Numerics.Tensors.TensorPrimitives.FusedMultiplyAdd(g, g, fisher[name], fisher[name]);
                    Array.Clear(g);
                }
            });
            progress?.Invoke(++done, mine.Count, result.Loss);
        }
        return (fisher, mine.Count);
    }

    /// <summary>Writes Fisher values as a float32 safetensors file, in the model's layer order.</summary>
    public static void Write(string path, ModelConfig config, IReadOnlyList<string> modules, IReadOnlyDictionary<string, float[]> fisher, IReadOnlyDictionary<string, string> metadata)
    {
        var shapes = config.ExpectedTensors().ToDictionary(t => t.Name, t => t.Shape);
        var names = TargetModules.WeightNames(config, modules).ToList();
        CheckpointWriter.WriteFile(path, names.Select(n => new TensorSpec(n, TensorDType.F32, shapes[n])).ToList(), metadata, writer =>
        {
            foreach (string n in names) writer.Write(n, fisher[n]);
        });
    }
}
