using Irr.IO;

namespace Irr.Model;

/// <summary>
/// Trainable LoRA matrices attached to a model's linear layers: <c>y = x·Wᵀ + scale·(x·Aᵀ)·Bᵀ</c>
/// with A (r × in) and B (out × r). Parameters are named like PEFT's keys without the
/// <c>base_model.model.</c> prefix: <c>model.layers.0.self_attn.q_proj.lora_A.weight</c>.
/// </summary>
public sealed class LoraWeights
{
    private readonly Dictionary<string, (float[] A, float[] B, int Out, int In)> layers = new(StringComparer.Ordinal);

    private LoraWeights(int rank, double alpha, bool rslora, IReadOnlyList<string> targets)
    {
        Rank = rank;
        Alpha = alpha;
        UseRslora = rslora;
        TargetModules = targets;
    }

    /// <summary>r.</summary>
    public int Rank { get; }

    /// <summary>lora_alpha.</summary>
    public double Alpha { get; }

    /// <summary>Whether the scale is α/√r.</summary>
    public bool UseRslora { get; }

    /// <summary>Module names adapted (q_proj, v_proj …).</summary>
    public IReadOnlyList<string> TargetModules { get; }

    /// <summary>α/r, or α/√r with rsLoRA.</summary>
    public float Scale => (float)(UseRslora ? Alpha / Math.Sqrt(Rank) : Alpha / Rank);

    /// <summary>
    /// New adapters on every <paramref name="targets"/> module of every layer, initialised as PEFT
    /// does: A ~ Kaiming-uniform (bound 1/√in), B = 0, so the model starts unchanged.
    /// </summary>
    public static LoraWeights Create(ModelConfig config, int rank, double alpha, IReadOnlyList<string> targets, bool rslora, int seed)
    {
        foreach (string t in targets)
            if (!config.LinearModules.Contains(t))
                throw new IrrException($"LoRA target '{t}' is not a linear module of {config.ModelType} (its modules: {string.Join(", ", config.LinearModules)})");
        if (rank <= 0) throw new IrrException($"LoRA rank must be positive, not {rank}");
        var lora = new LoraWeights(rank, alpha, rslora, targets);
        var shapes = config.ExpectedTensors().ToDictionary(t => t.Name, t => t.Shape);
        var rng = new Random(seed);
        for (int l = 0; l < config.NumHiddenLayers; l++)
            foreach (string module in targets)
            {
                string name = ModelConfig.LinearWeightName(l, module);
                int outDim = (int)shapes[name][0], inDim = (int)shapes[name][1];
                var a = new float[rank * inDim];
                float bound = 1f / MathF.Sqrt(inDim);
                for (int i = 0; i < a.Length; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * bound;
                lora.layers[name] = (a, new float[outDim * rank], outDim, inDim);
            }
        return lora;
    }

    /// <summary>The adapter of base weight <paramref name="baseWeight"/>, if any.</summary>
    public bool TryGet(string baseWeight, out (float[] A, float[] B, int Out, int In) layer) => layers.TryGetValue(baseWeight, out layer);

    /// <summary>The adapted base weights.</summary>
    public IEnumerable<string> BaseWeights => layers.Keys;

    /// <summary>The parameter name of A or B for a base weight.</summary>
    public static string ParameterName(string baseWeight, char which) => $"{baseWeight[..^".weight".Length]}.lora_{which}.weight";

    /// <summary>Every trainable tensor: name → array.</summary>
    public IEnumerable<(string Name, float[] Values)> Parameters()
    {
        foreach (var (w, (a, b, _, _)) in layers)
        {
            yield return (ParameterName(w, 'A'), a);
            yield return (ParameterName(w, 'B'), b);
        }
    }

    /// <summary>Gradient buffers for all A and B matrices.</summary>
    public Gradients CreateGradients()
    {
        var lengths = Parameters().ToDictionary(p => p.Name, p => (long)p.Values.Length, StringComparer.Ordinal);
        return new Gradients(lengths.Keys, n => lengths[n]);
    }

    /// <summary>Saves as a PEFT adapter directory.</summary>
    public void Save(string directory, string? baseModel, TensorDType dtype, IEnumerable<string> inputs, bool overwrite = false, ModelCard? card = null)
    {
        var config = LoraConfig.Create(Rank, Alpha, TargetModules, baseModel, UseRslora);
        LoraAdapter.Write(directory, config, layers.Select(kv => (kv.Key, kv.Value.A, kv.Value.B, kv.Value.Out, kv.Value.In)).ToList(), dtype, inputs, overwrite, card);
    }
}
