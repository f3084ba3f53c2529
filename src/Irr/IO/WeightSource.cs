namespace Irr.IO;

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
    /// <exception cref="IrrException">The adapter adapts or replaces a tensor the model does not have (an adapter of a larger model).</exception>
    public CheckpointWeights(ModelDirectory model, LoraAdapter? adapter = null, bool owns = true)
    {
        Model = model;
        Adapter = adapter;
        this.owns = owns;
        adapter?.RequireBase(model);
    }

    /// <summary>Opens a model directory and, optionally, an adapter directory.</summary>
    public static CheckpointWeights Open(string modelPath, string? adapterPath = null)
    {
        var model = ModelDirectory.Open(modelPath);
        LoraAdapter? adapter = null;
        try
        {
            adapter = adapterPath is null ? null : LoraAdapter.Open(adapterPath);
            var weights = new CheckpointWeights(model, adapter);
            // The adapter fits; now whether it was trained on this base (AdapterBase): refused when provably not, else said.
            if (adapterPath is not null) AdapterBase.Require(adapterPath, modelPath);
            return weights;
        }
        catch
        {
            adapter?.Dispose();
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
