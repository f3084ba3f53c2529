namespace Irr.IO;

/// <summary>The one compatibility check between two models that IRR combines (θ_A with θ_U or θ_F).</summary>
public static class Architecture
{
    /// <summary>
    /// Checks that <paramref name="other"/> can be combined with <paramref name="reference"/> element by element:
    /// the same dimensions (hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
    /// num_key_value_heads, head_dim, vocab_size) and the family's tensor layout (Phi-3's fused projections, qk-norm,
    /// Gemma's extra norms); when both are checkpoints of different directories, every
    /// tensor of the reference with the same shape in the other (tensors the config tolerates missing, such as a
    /// tied lm_head, excepted); and every target weight of <paramref name="modules"/> present in both.
    /// </summary>
    /// <param name="reference">The aligned model θ_A (its files are named in errors as the reference).</param>
    /// <param name="other">θ_U or θ_F: a model directory, or θ_A with an adapter.</param>
    /// <param name="modules">Target modules (q_proj …, or TargetModules.All: the family's) whose weights both must have, or null for none.</param>
    /// <exception cref="IrrException">The first difference, naming the other model's directory and the tensor or dimension.</exception>
    public static void RequireSame(IWeightSource reference, IWeightSource other, IReadOnlyList<string>? modules = null)
    {
        var (ca, cb) = (reference.Config, other.Config);
        string a = Describe(reference), b = Describe(other);
        string[] Dims(ModelConfig c) =>
        [
            $"hidden_size {c.HiddenSize}", $"intermediate_size {c.IntermediateSize}", $"num_hidden_layers {c.NumHiddenLayers}",
            $"num_attention_heads {c.NumAttentionHeads}", $"num_key_value_heads {c.NumKeyValueHeads}", $"head_dim {c.HeadDim}", $"vocab_size {c.VocabSize}",
        ];
        var (da, db) = (Dims(ca), Dims(cb));
        for (int i = 0; i < da.Length; i++)
            if (da[i] != db[i])
                throw new IrrException($"{b}: does not share the architecture of {a}: {db[i]}, not {da[i].Split(' ')[1]}");
        // The same dimensions in another family's layout (fused projections, qk-norm, Gemma's norms) are other tensors.
        if ((ca.FusedProjections, ca.QkNorm, ca.SandwichNorms) != (cb.FusedProjections, cb.QkNorm, cb.SandwichNorms))
            throw new IrrException($"{b}: does not share the architecture of {a}: model_type {cb.ModelType}, not {ca.ModelType}");
        if (reference is CheckpointWeights { Model: var ma } && other is CheckpointWeights { Model: var mb } && !ReferenceEquals(ma, mb)
            && Path.GetFullPath(ma.Path) != Path.GetFullPath(mb.Path))
        {
            foreach (var t in ma.Tensors)
            {
                if (!mb.Contains(t.Name))
                {
                    if (ModelConfig.IsTolerated(t.Name, ma.Config)) continue;
                    throw new IrrException($"{mb.Path}: has no tensor '{t.Name}', which {ma.Path} has");
                }
                var shape = mb.Info(t.Name);
                if (!shape.Shape.SequenceEqual(t.Shape))
                    throw new IrrException($"{mb.Path}: tensor '{t.Name}' is {shape.ShapeText} but {t.ShapeText} in {ma.Path}");
            }
        }
        if (modules is null) return;
        foreach (int layer in Enumerable.Range(0, ca.NumHiddenLayers))
            foreach (string module in Realign.TargetModules.For(ca, modules))
            {
                string name = ModelConfig.LinearWeightName(layer, module);
                if (!reference.Contains(name)) throw new IrrException($"{a}: has no target weight '{name}'");
                if (!other.Contains(name)) throw new IrrException($"{b}: has no target weight '{name}'");
            }
    }

    // A checkpoint by its directory (and adapter), resident weights by their config's source.
    private static string Describe(IWeightSource source) => source switch
    {
        CheckpointWeights { Adapter: { } adapter } c => $"{c.Model.Path} + {adapter.Path}",
        CheckpointWeights c => c.Model.Path,
        _ => source.Config.Source,
    };
}
