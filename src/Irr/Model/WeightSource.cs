using Irr.IO;

namespace Irr.Model;

/// <summary>
/// Where a model's float32 weights come from. A checkpoint source converts a tensor from its storage
/// type each time it is loaded (weight streaming: a 7B model is never resident); a parameter set
/// keeps float32 arrays in memory (training, edited weights).
/// </summary>
public interface IWeightSource
{
    /// <summary>The model's configuration.</summary>
    ModelConfig Config { get; }

    /// <summary>Whether the source has the tensor.</summary>
    bool Contains(string name);

    /// <summary>
    /// The tensor as float32: either a view of a resident array, or the tensor converted into
    /// <paramref name="scratch"/> (grown when too small). The view is valid until the next load
    /// into the same scratch.
    /// </summary>
    ReadOnlySpan<float> Load(string name, ref float[] scratch);

    /// <summary>Rows [first, first + count) of a 2-D tensor as float32.</summary>
    void LoadRows(string name, int first, int count, Span<float> destination);

    /// <summary>How the tensor is stored (F32 for weights that only exist in memory).</summary>
    TensorDType StorageType(string name);
}

/// <summary>Weights streamed from a Hugging Face checkpoint, optionally with a LoRA adapter merged on the fly.</summary>
public sealed class CheckpointWeights : IWeightSource, IDisposable
{
    private readonly bool owns;

    /// <summary>Streams <paramref name="model"/> (+ <paramref name="adapter"/>); disposes them with this object if <paramref name="owns"/>.</summary>
    public CheckpointWeights(ModelDirectory model, LoraAdapter? adapter = null, bool owns = true)
    {
        Model = model;
        Adapter = adapter;
        this.owns = owns;
    }

    /// <summary>Opens a model directory and, optionally, an adapter directory.</summary>
    public static CheckpointWeights Open(string modelPath, string? adapterPath = null)
    {
        var model = ModelDirectory.Open(modelPath);
        try
        {
            return new CheckpointWeights(model, adapterPath is null ? null : LoraAdapter.Open(adapterPath));
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The base checkpoint.</summary>
    public ModelDirectory Model { get; }

    /// <summary>The adapter merged on the fly, if any.</summary>
    public LoraAdapter? Adapter { get; }

    /// <inheritdoc/>
    public ModelConfig Config => Model.Config;

    /// <inheritdoc/>
    public bool Contains(string name) => Model.Contains(name);

    /// <inheritdoc/>
    public ReadOnlySpan<float> Load(string name, ref float[] scratch)
    {
        var (file, info) = Model.Locate(name);
        int n = checked((int)info.ElementCount);
        if (scratch.Length < n) scratch = new float[n];
        var span = scratch.AsSpan(0, n);
        if (Adapter is not null && Adapter.Replacements.TryGetValue(name, out var full))
        {
            if (!full.Shape.SequenceEqual(info.Shape))
                throw new IrrException($"{Adapter.File.Path}: '{full.Name}' is {full.ShapeText} but {name} is {info.ShapeText}");
            Adapter.File.ReadSingle(full, span);
            return span;
        }
        file.ReadSingle(info, span);
        if (Adapter is not null && Adapter.Pairs.TryGetValue(name, out var pair)) Adapter.AddDelta(pair, span, info);
        return span;
    }

    /// <inheritdoc/>
    public void LoadRows(string name, int first, int count, Span<float> destination)
    {
        if (Adapter is not null && (Adapter.Pairs.ContainsKey(name) || Adapter.Replacements.ContainsKey(name)))
        {
            // Rarely needed (an adapted embedding or lm_head): merge the whole tensor once.
            float[] scratch = [];
            var all = Load(name, ref scratch);
            int width = (int)Model.Info(name).RowLength;
            all.Slice(first * width, count * width).CopyTo(destination);
            return;
        }
        Model.ReadRowsSingle(name, first, count, destination);
    }

    /// <inheritdoc/>
    public TensorDType StorageType(string name) => Model.Info(name).DType;

    /// <summary>Releases the files.</summary>
    public void Dispose()
    {
        if (!owns) return;
        Adapter?.Dispose();
        Model.Dispose();
    }
}

/// <summary>
/// Resident float32 tensors by name, over an optional fallback source: the parameters of a model
/// being trained, or the edited weights of one being realigned layer by layer.
/// </summary>
public sealed class ParameterSet : IWeightSource
{
    private readonly Dictionary<string, float[]> tensors = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long[]> shapes;
    private readonly IWeightSource? fallback;

    /// <summary>An empty set for <paramref name="config"/>, reading what it lacks from <paramref name="fallback"/>.</summary>
    public ParameterSet(ModelConfig config, IWeightSource? fallback = null)
    {
        Config = config;
        this.fallback = fallback;
        shapes = config.ExpectedTensors().ToDictionary(t => t.Name, t => t.Shape, StringComparer.Ordinal);
    }

    /// <summary>Every tensor of <paramref name="source"/> loaded into memory.</summary>
    public static ParameterSet LoadAll(IWeightSource source)
    {
        var set = new ParameterSet(source.Config);
        foreach (var name in set.shapes.Keys)
        {
            float[] scratch = [];
            set.tensors[name] = source.Load(name, ref scratch).ToArray();
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

    /// <summary>The shape of a tensor of this model.</summary>
    public IReadOnlyList<long> ShapeOf(string name) => shapes[name];

    /// <summary>The resident array of a tensor (throws if it is not resident).</summary>
    public float[] this[string name] => tensors[name];

    /// <inheritdoc/>
    public bool Contains(string name) => tensors.ContainsKey(name) || (fallback?.Contains(name) ?? false);

    /// <inheritdoc/>
    public TensorDType StorageType(string name) => !tensors.ContainsKey(name) && fallback is not null ? fallback.StorageType(name) : TensorDType.F32;

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
}
