namespace Irr.Model;

/// <summary>
/// Gradient buffers for a chosen subset of parameters (by name). The backward pass computes a
/// weight's gradient only if it is here, so Fisher on q_proj/v_proj allocates and computes nothing
/// else. Buffers accumulate across calls until <see cref="Clear"/>.
/// </summary>
public sealed class Gradients
{
    private readonly Dictionary<string, float[]> buffers = new(StringComparer.Ordinal);

    private Gradients() { }

    /// <summary>Zeroed buffers for the named tensors, with the lengths <paramref name="lengthOf"/> gives.</summary>
    public Gradients(IEnumerable<string> names, Func<string, long> lengthOf)
    {
        foreach (string name in names) buffers[name] = new float[checked((int)lengthOf(name))];
    }

    /// <summary>Buffers for the named tensors of a model.</summary>
    public static Gradients For(IO.ModelConfig config, IEnumerable<string> names)
    {
        var shapes = config.ExpectedTensors().ToDictionary(t => t.Name, t => t.Shape.Aggregate(1L, (a, d) => a * d), StringComparer.Ordinal);
        return new Gradients(names, n => shapes.TryGetValue(n, out long len) ? len : throw new ArgumentException($"'{n}' is not a tensor of {config.Architecture}."));
    }

    /// <summary>
    /// Buffers for <paramref name="modules"/> (q_proj …) of every layer, where all layers share one
    /// buffer per module: valid only for a caller that consumes a layer's gradients before the backward
    /// pass reaches the next layer (the <c>afterLayer</c> callback of the backward pass) and clears them.
    /// Phi-3's fused qkv_proj and gate_up_proj get one buffer each, of the fused shape.
    /// </summary>
    /// <exception cref="ArgumentException">A module that is not a linear module of this family (resolve "all" with TargetModules.For first).</exception>
    public static Gradients SharedAcrossLayers(IO.ModelConfig config, IReadOnlyList<string> modules)
    {
        var shapes = config.ExpectedTensors().ToDictionary(t => t.Name, t => t.Shape.Aggregate(1L, (a, d) => a * d), StringComparer.Ordinal);
        var g = new Gradients();
        foreach (string module in modules)
        {
            if (!config.LinearModules.Contains(module))
                throw new ArgumentException($"'{module}' is not a linear module of {config.ModelType} ({string.Join(", ", config.LinearModules)}).", nameof(modules));
            var shared = new float[checked((int)shapes[IO.ModelConfig.LinearWeightName(0, module)])];
            for (int l = 0; l < config.NumHiddenLayers; l++) g.buffers[IO.ModelConfig.LinearWeightName(l, module)] = shared;
        }
        return g;
    }

    /// <summary>The names with buffers.</summary>
    public IEnumerable<string> Names => buffers.Keys;

    /// <summary>Whether the gradient of <paramref name="name"/> is wanted.</summary>
    public bool Wants(string name) => buffers.ContainsKey(name);

    /// <summary>The buffer of <paramref name="name"/>, or an empty span if it is not wanted.</summary>
    public Span<float> Of(string name) => buffers.TryGetValue(name, out var b) ? b : Span<float>.Empty;

    /// <summary>The buffer of <paramref name="name"/>.</summary>
    public float[] this[string name] => buffers[name];

    /// <summary>Zeroes every buffer.</summary>
    public void Clear()
    {
        foreach (var b in buffers.Values) Array.Clear(b);
    }

    /// <summary>√(Σ g²) over all buffers.</summary>
    public double GlobalNorm()
    {
        double s = 0;
        foreach (var b in buffers.Values) s += Irr.Tensors.Reduce.SumOfSquares(b.AsSpan());
        return Math.Sqrt(s);
    }
}
