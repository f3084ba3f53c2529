using Irr.IO;

namespace Irr.Model;

/// <summary>
/// Fresh weights for training from scratch, as transformers' <c>LlamaPreTrainedModel._init_weights</c>
/// sets them: linear and embedding weights ~ normal(0, initializer_range), biases 0, RMSNorm weights 1 (Gemma's,
/// which multiply by 1 + w, 0, as Gemma2RMSNorm's <c>torch.zeros(dim)</c>: the same identity norm).
/// The draws come from a seeded <see cref="Random"/> (Box–Muller), tensor by tensor in the config's order,
/// so the same seed gives the same weights.
/// </summary>
public static class ModelInit
{
    /// <summary>Every tensor of <paramref name="config"/>, initialised; <paramref name="initializerRange"/> defaults to the config's <c>initializer_range</c> or 0.02.</summary>
    public static ParameterSet Random(ModelConfig config, int seed, double? initializerRange = null)
    {
        double std = initializerRange ?? config.Json["initializer_range"]?.GetValue<double>() ?? 0.02;
        if (!(std > 0)) throw new IrrException($"initializer_range must be positive, not {std}");
        var rng = new Random(seed);
        var set = new ParameterSet(config);
        foreach (var (name, shape) in config.ExpectedTensors())
        {
            long n = shape.Aggregate(1L, (a, d) => a * d);
            var values = new float[n];
            if (name.EndsWith("norm.weight", StringComparison.Ordinal)) Array.Fill(values, 1f - config.NormWeightOffset);
            else if (!name.EndsWith(".bias", StringComparison.Ordinal))
                for (long i = 0; i < n; i += 2)
                {
                    // Box–Muller: two independent standard normals from two uniforms in (0, 1].
                    double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
                    double r = Math.Sqrt(-2.0 * Math.Log(u1));
                    values[i] = (float)(std * r * Math.Cos(2 * Math.PI * u2));
                    if (i + 1 < n) values[i + 1] = (float)(std * r * Math.Sin(2 * Math.PI * u2));
                }
            set.Set(name, values);
        }
        return set;
    }
}
