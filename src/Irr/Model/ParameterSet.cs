using Irr.IO;

namespace Irr.Model;

/// <summary>
/// Resident float32 tensors by name, over an optional fallback source: the parameters of a model
/// being trained, or the edited weights of one being realigned layer by layer.
/// </summary>
public sealed class ParameterSet : IWeightSource
{
    private readonly Dictionary<string, float[]> tensors = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long[]> shapes;
    private readonly Dictionary<string, TensorDType> loadedFrom = new(StringComparer.Ordinal); // LoadAll: each tensor's stored dtype
    private readonly IWeightSource? fallback;

    /// <summary>An empty set for <paramref name="config"/>, reading what it lacks from <paramref name="fallback"/>.</summary>
    public ParameterSet(ModelConfig config, IWeightSource? fallback = null)
    {
        Config = config;
        this.fallback = fallback;
        shapes = config.ExpectedTensors().ToDictionary(t => t.Name, t => t.Shape, StringComparer.Ordinal);
    }

    /// <summary>
    /// Every tensor of <paramref name="source"/> loaded into memory; <see cref="StorageType"/> still says how each was
    /// stored (Gemma's embedding normalizer is rounded to it, as for the streamed checkpoint).
    /// </summary>
    public static ParameterSet LoadAll(IWeightSource source)
    {
        var set = new ParameterSet(source.Config);
        foreach (var name in set.shapes.Keys)
        {
            float[] scratch = [];
            set.tensors[name] = source.Load(name, ref scratch).ToArray();
            set.loadedFrom[name] = source.StorageType(name);
        }
        return set;
    }

    /// <inheritdoc/>
    public ModelConfig Config { get; }

    /// <summary>The resident tensors.</summary>
    public IReadOnlyDictionary<string, float[]> Tensors => tensors;

    /// <summary>Sets (or replaces) a resident tensor; its length must match the config's shape.</summary>
    public void Set(string name, float[] values)
    {
        if (!shapes.TryGetValue(name, out var shape))
            throw new ArgumentException($"'{name}' is not a tensor of {Config.Architecture}.", nameof(name));
        if (values.Length != shape.Aggregate(1L, (a, d) => a * d))
            throw new ArgumentException($"'{name}' has {values.Length} values; its shape [{string.Join(", ", shape)}] needs {shape.Aggregate(1L, (a, d) => a * d)}.", nameof(values));
        tensors[name] = values;
    }

    /// <summary>The resident array of a tensor (throws if it is not resident).</summary>
    public float[] this[string name] => tensors[name];

    /// <inheritdoc/>
    public bool Contains(string name) => tensors.ContainsKey(name) || (fallback?.Contains(name) ?? false);

    /// <inheritdoc/>
    public TensorDType StorageType(string name) =>
        loadedFrom.TryGetValue(name, out var dtype) ? dtype : !tensors.ContainsKey(name) && fallback is not null ? fallback.StorageType(name) : TensorDType.F32;

    /// <summary>Drops every resident tensor (reads fall back again).</summary>
    public void Clear() => tensors.Clear();

    /// <inheritdoc/>
    public ReadOnlySpan<float> Load(string name, ref float[] scratch)
    {
        if (tensors.TryGetValue(name, out var t)) return t;
        if (fallback is null) throw new IrrException($"no tensor '{name}'");
        return fallback.Load(name, ref scratch);
    }

    /// <inheritdoc/>
    public void LoadRows(string name, int first, int count, Span<float> destination)
    {
        if (tensors.TryGetValue(name, out var t))
        {
            int width = (int)(t.Length / shapes[name][0]);
            t.AsSpan(first * width, count * width).CopyTo(destination);
            return;
        }
        if (fallback is null) throw new IrrException($"no tensor '{name}'");
        fallback.LoadRows(name, first, count, destination);
    }

    /// <summary>
    /// Writes the parameters as a Hugging Face model directory (through <see cref="ModelWriter"/>): every tensor of
    /// the config in <paramref name="dtype"/>, config.json with torch_dtype set, and the files that travel with the
    /// model (tokenizer, generation config …) copied from <paramref name="filesFrom"/> when given.
    /// </summary>
    /// <param name="directory">The model directory to create.</param>
    /// <param name="dtype">The storage type of every tensor.</param>
    /// <param name="filesFrom">The directory whose tokenizer and other files are copied (usually the base model's), or null.</param>
    /// <param name="overwrite">Replace an existing output directory.</param>
    /// <param name="card">The model card (replaces <paramref name="filesFrom"/>'s README.md), or null for none.</param>
    /// <exception cref="IrrException">The output exists (without <paramref name="overwrite"/>) or is <paramref name="filesFrom"/>.</exception>
    public void Save(string directory, TensorDType dtype, string? filesFrom, bool overwrite = false, ModelCard? card = null)
    {
        var specs = Config.ExpectedTensors().Select(t => new TensorSpec(t.Name, dtype, t.Shape)).ToList();
        var target = new ModelTarget(directory, filesFrom is null ? [] : [filesFrom], overwrite, filesFrom, dtype);
        using var writer = ModelWriter.Open(target, Config, specs);
        foreach (var spec in specs) writer.Write(spec.Name, this[spec.Name]);
        writer.Commit(card);
    }
}
