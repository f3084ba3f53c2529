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

/// <summary>
/// Weights streamed from a Hugging Face checkpoint, optionally with a PEFT adapter merged on the fly. On a base whose
/// head is tied to its embedding, an adapter that changes either is merged as PEFT computes it (see
/// <see cref="LoraAdapter.HeadFollowsEmbedding"/>): where the head no longer equals the embedding, <see cref="Config"/>
/// is untied and <c>lm_head.weight</c> is served (the base's embedding with the adapter's lm_head changes), so a model
/// written from this source holds both tensors and <c>tie_word_embeddings: false</c>.
/// </summary>
public sealed class CheckpointWeights : IWeightSource, IDisposable
{
    private readonly bool owns;

    // The base is tied, the adapted model is not: lm_head.weight is read from the base's embedding.
    private readonly bool headFromEmbedding;

    /// <summary>Streams <paramref name="model"/> (+ <paramref name="adapter"/>); disposes them with this object if <paramref name="owns"/>.</summary>
    /// <exception cref="IrrException">The adapter adapts or replaces a tensor the model does not have (an adapter of a larger model), or does not fit it.</exception>
    public CheckpointWeights(ModelDirectory model, LoraAdapter? adapter = null, bool owns = true)
    {
        Model = model;
        Adapter = adapter;
        this.owns = owns;
        Config = model.Config;
        if (adapter is null) return;
        adapter.RequireBase(model);
        bool adaptsEmbed = adapter.Adapts(LoraAdapter.EmbedWeight), adaptsHead = adapter.Adapts(LoraAdapter.HeadWeight);
        int vocabulary = adapter.VocabularyOver(model);
        if (vocabulary != model.Config.VocabSize)
        {
            Config = Config.WithVocabSize(vocabulary);
            Diagnostics.Warn($"{adapter.Path}: the adapter resizes the vocabulary from {model.Config.VocabSize} to {vocabulary} tokens (its full embed_tokens/lm_head copies); merged models are written with vocab_size {vocabulary}");
        }
        if (model.Config.TieWordEmbeddings && (adaptsEmbed || adaptsHead) && !adapter.HeadFollowsEmbedding)
        {
            headFromEmbedding = true;
            Config = Config.WithTiedEmbeddings(false);
            string what = adaptsHead
                ? "changes lm_head.weight, which the base ties to embed_tokens: the adapted model unties them"
                : "changes embed_tokens without ensure_weight_tying: as PEFT computes it (huggingface/peft#2777), the tied lm_head keeps the base's embedding";
            Diagnostics.Warn($"{adapter.Path}: the adapter {what} (merged models are written with lm_head.weight and tie_word_embeddings false)");
        }
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

    /// <summary>The adapted model's configuration: the base's, untied where the adapter unties the head (see the class summary).</summary>
    public ModelConfig Config { get; }

    /// <inheritdoc/>
    public bool Contains(string name) => Model.Contains(name) || (headFromEmbedding && name == LoraAdapter.HeadWeight);

    // The tensor a name starts from: the base's (the embedding for an untied head of a tied base), or the adapter's full copy of a resized vocabulary.
    private TensorEntry BaseInfo(string name) => Adapter?.BaseOf(Model, name) is { } entry && Adapted(name) ? entry : Model.Info(BaseName(name));

    private string BaseName(string name) => headFromEmbedding && name == LoraAdapter.HeadWeight ? LoraAdapter.EmbedWeight : name;

    private bool Adapted(string name) => (Adapter?.Adapts(name) ?? false) || (headFromEmbedding && name == LoraAdapter.HeadWeight);

    /// <inheritdoc/>
    public ReadOnlySpan<float> Load(string name, ref float[] scratch)
    {
        var info = BaseInfo(name);
        int n = checked((int)info.ElementCount);
        if (scratch.Length < n) scratch = new float[n];
        var span = scratch.AsSpan(0, n);
        if (Adapter is not null && Adapted(name))
            Adapter.Apply(name, Model, info, span);
        else
            Model.Locate(name).File.ReadSingle(info, span);
        return span;
    }

    /// <inheritdoc/>
    public void LoadRows(string name, int first, int count, Span<float> destination)
    {
        if (Adapter is not null && Adapted(name))
        {
            Adapter.ApplyRows(name, Model, BaseInfo(name), first, count, destination);
            return;
        }
        Model.ReadRowsSingle(name, first, count, destination);
    }

    /// <inheritdoc/>
    public TensorDType StorageType(string name) => Model.Info(BaseName(name)).DType;

    /// <summary>Releases the files.</summary>
    public void Dispose()
    {
        if (!owns) return;
        Adapter?.Dispose();
        Model.Dispose();
    }
}
