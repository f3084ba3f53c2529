using System.Text.Json.Nodes;

namespace Irr.IO;

/// <summary><c>rope_scaling</c> of a Llama-family config: <c>llama3</c> or <c>linear</c>.</summary>
/// <param name="Type">"llama3" or "linear".</param>
/// <param name="Factor">The scaling factor.</param>
/// <param name="LowFreqFactor">llama3 only.</param>
/// <param name="HighFreqFactor">llama3 only.</param>
/// <param name="OriginalMaxPositionEmbeddings">llama3 only.</param>
public sealed record RopeScaling(string Type, double Factor, double LowFreqFactor, double HighFreqFactor, int OriginalMaxPositionEmbeddings);

/// <summary>
/// The parts of a Hugging Face <c>config.json</c> that IRR uses, for <c>LlamaForCausalLM</c>,
/// <c>MistralForCausalLM</c> and <c>Qwen2ForCausalLM</c>. Missing optional keys take the
/// transformers defaults; the core dimensions are required.
/// </summary>
public sealed class ModelConfig
{
    /// <summary>The architectures IRR runs.</summary>
    public static readonly IReadOnlyDictionary<string, string> SupportedArchitectures = new Dictionary<string, string>
    {
        ["LlamaForCausalLM"] = "llama",
        ["MistralForCausalLM"] = "mistral",
        ["Qwen2ForCausalLM"] = "qwen2",
    };

    /// <summary>The seven linear layers of a decoder layer, in the order of the forward pass.</summary>
    public static readonly IReadOnlyList<string> LinearModules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

    /// <summary>The path it was read from (for messages).</summary>
    public string Source { get; private init; } = "config.json";

    /// <summary>e.g. LlamaForCausalLM.</summary>
    public string Architecture { get; private init; } = "";

    /// <summary>e.g. llama.</summary>
    public string ModelType { get; private init; } = "";

    /// <summary>hidden_size.</summary>
    public int HiddenSize { get; private init; }

    /// <summary>intermediate_size.</summary>
    public int IntermediateSize { get; private init; }

    /// <summary>num_hidden_layers.</summary>
    public int NumHiddenLayers { get; private init; }

    /// <summary>num_attention_heads.</summary>
    public int NumAttentionHeads { get; private init; }

    /// <summary>num_key_value_heads (defaults to num_attention_heads).</summary>
    public int NumKeyValueHeads { get; private init; }

    /// <summary>head_dim (defaults to hidden_size / num_attention_heads).</summary>
    public int HeadDim { get; private init; }

    /// <summary>vocab_size.</summary>
    public int VocabSize { get; private init; }

    /// <summary>max_position_embeddings.</summary>
    public int MaxPositionEmbeddings { get; private init; }

    /// <summary>rms_norm_eps.</summary>
    public double RmsNormEps { get; private init; }

    /// <summary>rope_theta.</summary>
    public double RopeTheta { get; private init; }

    /// <summary>rope_scaling, or null for none.</summary>
    public RopeScaling? RopeScaling { get; private init; }

    /// <summary>tie_word_embeddings: lm_head shares embed_tokens.</summary>
    public bool TieWordEmbeddings { get; private init; }

    /// <summary>bos_token_id, if any.</summary>
    public int? BosTokenId { get; private init; }

    /// <summary>eos_token_id (an int or a list in config.json).</summary>
    public IReadOnlyList<int> EosTokenIds { get; private init; } = [];

    /// <summary>torch_dtype (or dtype), if given.</summary>
    public TensorDType? TorchDType { get; private init; }

    /// <summary>Biases on q_proj, k_proj and v_proj (Qwen2, or Llama's attention_bias).</summary>
    public bool QkvBias { get; private init; }

    /// <summary>Bias on o_proj (Llama's attention_bias).</summary>
    public bool OutputBias { get; private init; }

    /// <summary>Biases on gate_proj, up_proj and down_proj (Llama's mlp_bias).</summary>
    public bool MlpBias { get; private init; }

    /// <summary>
    /// The sliding-window size of each layer (0 = full causal attention), as transformers builds
    /// <c>layer_types</c>: Mistral's <c>sliding_window</c> in every layer (4096 when the key is absent,
    /// none when null); Qwen2's <c>sliding_window</c> when <c>use_sliding_window</c> is true, in the
    /// layers with index ≥ <c>max_window_layers</c> (or those <c>layer_types</c> marks
    /// <c>sliding_attention</c>); none for Llama. A query at position i attends to keys j with
    /// i − window &lt; j ≤ i.
    /// </summary>
    public IReadOnlyList<int> SlidingWindows { get; private init; } = [];

    /// <summary>The sliding window of layer <paramref name="layer"/>, 0 for full causal attention.</summary>
    public int SlidingWindowOf(int layer) => layer < SlidingWindows.Count ? SlidingWindows[layer] : 0;

    /// <summary>The JSON as read, for writing it back with changes.</summary>
    public JsonObject Json { get; private init; } = [];

    /// <summary>Reads and validates a config.json.</summary>
    public static ModelConfig Load(string path)
    {
        return Parse(JsonFiles.ReadText(path), path);
    }

    /// <summary>Parses config.json text; <paramref name="source"/> names it in errors.</summary>
    public static ModelConfig Parse(string json, string source)
    {
        var root = JsonFiles.ParseObject(json, source);
        var r = new JsonConfig(root, source);

        string? modelType = r.String("model_type");
        string? architecture = r.StringArrayFirst("architectures");
        if (architecture is null && modelType is not null)
            architecture = SupportedArchitectures.FirstOrDefault(kv => kv.Value == modelType).Key;
        if (architecture is null || !SupportedArchitectures.TryGetValue(architecture, out string? expectedType))
            throw new IrrException($"{source}: unsupported architecture '{architecture ?? modelType ?? "(none given)"}' " +
                                   "(irr supports LlamaForCausalLM, MistralForCausalLM and Qwen2ForCausalLM)");
        modelType ??= expectedType;

        // Sizes first, each within its limit, before anything is sized by them (a 10**9-layer config is refused here).
        long maxDim = MaxDimension;
        int hidden = Required(r.Positive("hidden_size", maxDim, MaxDimensionVariable), "hidden_size", source);
        int heads = Required(r.Positive("num_attention_heads", maxDim, MaxDimensionVariable), "num_attention_heads", source);
        int kvHeads = r.Positive("num_key_value_heads", maxDim, MaxDimensionVariable) ?? heads;
        int headDim = r.Positive("head_dim", maxDim, MaxDimensionVariable) ?? hidden / heads;
        if (heads % kvHeads != 0)
            throw new IrrException($"{source}: num_attention_heads {heads} is not a positive multiple of num_key_value_heads {kvHeads}");
        if (headDim <= 0 || r.Int("head_dim") is null && hidden % heads != 0)
            throw new IrrException($"{source}: hidden_size {hidden} is not divisible by num_attention_heads {heads} and head_dim is not given");
        if ((long)heads * headDim > maxDim)
            throw Limits.Exceeded(source, $"num_attention_heads × head_dim ({heads} × {headDim})", MaxDimensionVariable, maxDim);
        int layers = Required(r.Positive("num_hidden_layers", MaxLayers, "IRR_MAX_LAYERS"), "num_hidden_layers", source);
        int intermediate = Required(r.Positive("intermediate_size", maxDim, MaxDimensionVariable), "intermediate_size", source);
        int vocabSize = Required(r.Positive("vocab_size", Text.Tokenizer.MaxVocabSize, "IRR_MAX_VOCAB_SIZE"), "vocab_size", source);

        string act = r.String("hidden_act") ?? "silu";
        if (act != "silu")
            throw new IrrException($"{source}: hidden_act '{act}' is not supported (Llama-family models use silu)");
        RefuseUnsupportedKeys(r, source);

        bool qwen2 = modelType == "qwen2", llama = modelType == "llama";
        // modeling_llama reads attention_bias and mlp_bias; Mistral has no biases and Qwen2 has q/k/v
        // biases always, whatever these keys say (their configs do not take them).
        bool attentionBias = llama && (r.Bool("attention_bias") ?? false);
        // transformers v5 writes rope_theta and rope_scaling inside rope_parameters
        var ropeParameters = r.Node("rope_parameters") switch
        {
            null => null,
            JsonObject o => new JsonConfig(o, source + ": rope_parameters"),
            _ => throw new IrrException($"{source}: rope_parameters must be an object or null"),
        };
        var config = new ModelConfig
        {
            Source = source,
            Architecture = architecture,
            ModelType = modelType,
            HiddenSize = hidden,
            IntermediateSize = intermediate,
            NumHiddenLayers = layers,
            NumAttentionHeads = heads,
            NumKeyValueHeads = kvHeads,
            HeadDim = headDim,
            VocabSize = vocabSize,
            MaxPositionEmbeddings = r.Positive("max_position_embeddings", int.MaxValue, "IRR_MAX_POSITIONS") ?? 2048,
            RmsNormEps = r.Double("rms_norm_eps") is { } eps
                ? eps >= 0 ? eps : throw new IrrException($"{source}: rms_norm_eps {eps} must not be negative (RMSNorm divides by √(mean(x²) + eps))")
                : 1e-6,
            RopeTheta = ropeParameters?.Double("rope_theta") ?? r.Double("rope_theta") ?? 10000.0,
            RopeScaling = ropeParameters is not null ? ReadRopeScaling(ropeParameters, source + ": rope_parameters") : ReadRopeScaling(r.Node("rope_scaling"), source + ": rope_scaling"),
            TieWordEmbeddings = r.Bool("tie_word_embeddings") ?? false,
            BosTokenId = r.Int("bos_token_id"),
            EosTokenIds = r.IntOrIntList("eos_token_id"),
            TorchDType = ReadTorchDType(r, source),
            QkvBias = qwen2 || attentionBias,
            OutputBias = !qwen2 && attentionBias,
            MlpBias = llama && (r.Bool("mlp_bias") ?? false),
            SlidingWindows = ReadSlidingWindows(r, source, modelType, layers),
            Json = root,
        };
        if (headDim % 2 != 0) throw new IrrException($"{source}: head_dim {headDim} is odd (rotary embeddings rotate pairs)");
        if (!(config.RopeTheta > 0))
            throw new IrrException($"{source}: rope_theta {config.RopeTheta} must be positive (the rotary frequencies are rope_theta^(-2i/head_dim))");
        return config;
    }

    /// <summary>
    /// The largest dimension a config may give (hidden_size, intermediate_size, the heads, head_dim, and the attention's
    /// width num_attention_heads × head_dim): <c>IRR_MAX_MODEL_DIM</c>, 262,144 by default; the largest real ones are
    /// Llama 3.1 405B's hidden_size 16,384 and intermediate_size 53,248.
    /// </summary>
    public static long MaxDimension => Limits.Get(MaxDimensionVariable, 1 << 18);

    private const string MaxDimensionVariable = "IRR_MAX_MODEL_DIM";

    /// <summary>The most layers a config may give: <c>IRR_MAX_LAYERS</c>, 1,024 by default (Llama 3.1 405B has 126).</summary>
    public static long MaxLayers => Limits.Get("IRR_MAX_LAYERS", 1024);

    private static int Required(int? value, string key, string source) => value ?? throw new IrrException($"{source}: missing \"{key}\"");

    /// <summary>
    /// This config with <c>tie_word_embeddings</c> set to <paramref name="tied"/> (in <see cref="Json"/> too, so a model
    /// written with it says so): an untied model holds <c>lm_head.weight</c>, a tied one reads its head from the embedding.
    /// </summary>
    public ModelConfig WithTiedEmbeddings(bool tied) => tied == TieWordEmbeddings ? this : With("tie_word_embeddings", tied);

    /// <summary>This config with <c>vocab_size</c> <paramref name="vocabSize"/> (in <see cref="Json"/> too): an adapter's resized vocabulary.</summary>
    public ModelConfig WithVocabSize(int vocabSize) => vocabSize == VocabSize ? this : With("vocab_size", vocabSize);

    private ModelConfig With(string key, JsonNode value)
    {
        var json = Json.DeepClone().AsObject();
        json[key] = value;
        return Parse(json.ToJsonString(), Source);
    }

    /// <summary>
    /// Every tensor a checkpoint of this config holds, with its shape, in the order Hugging Face
    /// lists a state dict. <c>lm_head.weight</c> is absent when the embeddings are tied.
    /// </summary>
    public IEnumerable<(string Name, long[] Shape)> ExpectedTensors()
    {
        long h = HiddenSize, q = (long)NumAttentionHeads * HeadDim, kv = (long)NumKeyValueHeads * HeadDim, inter = IntermediateSize;
        yield return ("model.embed_tokens.weight", [VocabSize, h]);
        for (int i = 0; i < NumHiddenLayers; i++)
        {
            string p = $"model.layers.{i}.";
            yield return (p + "self_attn.q_proj.weight", [q, h]);
            if (QkvBias) yield return (p + "self_attn.q_proj.bias", [q]);
            yield return (p + "self_attn.k_proj.weight", [kv, h]);
            if (QkvBias) yield return (p + "self_attn.k_proj.bias", [kv]);
            yield return (p + "self_attn.v_proj.weight", [kv, h]);
            if (QkvBias) yield return (p + "self_attn.v_proj.bias", [kv]);
            yield return (p + "self_attn.o_proj.weight", [h, q]);
            if (OutputBias) yield return (p + "self_attn.o_proj.bias", [h]);
            yield return (p + "mlp.gate_proj.weight", [inter, h]);
            if (MlpBias) yield return (p + "mlp.gate_proj.bias", [inter]);
            yield return (p + "mlp.up_proj.weight", [inter, h]);
            if (MlpBias) yield return (p + "mlp.up_proj.bias", [inter]);
            yield return (p + "mlp.down_proj.weight", [h, inter]);
            if (MlpBias) yield return (p + "mlp.down_proj.bias", [h]);
            yield return (p + "input_layernorm.weight", [h]);
            yield return (p + "post_attention_layernorm.weight", [h]);
        }
        yield return ("model.norm.weight", [h]);
        if (!TieWordEmbeddings) yield return ("lm_head.weight", [VocabSize, h]);
    }

    /// <summary>
    /// Tensors a checkpoint may hold beyond <see cref="ExpectedTensors"/> without being wrong:
    /// a tied <c>lm_head.weight</c> and old <c>rotary_emb.inv_freq</c> buffers.
    /// </summary>
    public static bool IsTolerated(string name, ModelConfig config) =>
        (name == "lm_head.weight" && config.TieWordEmbeddings) ||
        (name.StartsWith("model.layers.", StringComparison.Ordinal) && name.EndsWith(".self_attn.rotary_emb.inv_freq", StringComparison.Ordinal));

    /// <summary>The name of linear module <paramref name="module"/> of layer <paramref name="layer"/>, e.g. model.layers.3.mlp.down_proj.weight.</summary>
    public static string LinearWeightName(int layer, string module) =>
        $"model.layers.{layer}.{(module is "gate_proj" or "up_proj" or "down_proj" ? "mlp" : "self_attn")}.{module}.weight";

    /// <summary>A one-line summary: "LlamaForCausalLM, 22 layers, hidden 2048, 32 heads (4 KV)".</summary>
    public override string ToString() =>
        $"{Architecture}, {NumHiddenLayers} layers, hidden {HiddenSize}, {NumAttentionHeads} heads ({NumKeyValueHeads} KV)";

    // rope_scaling (or v5's rope_parameters, which holds the same keys plus rope_theta)
    private static RopeScaling? ReadRopeScaling(JsonConfig s, string where) => ReadRopeScaling(s, where, allowMissingType: true);

    private static RopeScaling? ReadRopeScaling(JsonNode? node, string where)
    {
        if (node is null) return null;
        if (node is not JsonObject o) throw new IrrException($"{where} must be an object or null");
        return ReadRopeScaling(new JsonConfig(o, where), where, allowMissingType: false);
    }

    private static RopeScaling? ReadRopeScaling(JsonConfig s, string where, bool allowMissingType)
    {
        string? type = s.String("rope_type") ?? s.String("type");
        if (type is null && !allowMissingType) throw new IrrException($"{where} has no rope_type");
        switch (type ?? "default")
        {
            case "default":
                return null;
            case "linear":
                return new RopeScaling("linear", PositiveFactor(s, "factor", where), 0, 0, 0);
            case "llama3":
                var scaling = new RopeScaling("llama3", PositiveFactor(s, "factor", where), PositiveFactor(s, "low_freq_factor", where),
                    PositiveFactor(s, "high_freq_factor", where), s.RequiredInt("original_max_position_embeddings"));
                // transformers warns (_validate_llama3_parameters); the blend between divides by high − low, so irr refuses.
                if (!(scaling.HighFreqFactor > scaling.LowFreqFactor))
                    throw new IrrException($"{where}: high_freq_factor {scaling.HighFreqFactor} must be greater than low_freq_factor {scaling.LowFreqFactor} " +
                                           "(llama3 scaling blends between them, dividing by their difference)");
                if (scaling.OriginalMaxPositionEmbeddings <= 0)
                    throw new IrrException($"{where}: original_max_position_embeddings {scaling.OriginalMaxPositionEmbeddings} must be positive");
                return scaling;
            default:
                throw new IrrException($"{where} type '{type}' is not supported (irr supports llama3 and linear)");
        }
    }

    // A factor of rope scaling: a finite number > 0 (the frequencies are divided by it).
    private static double PositiveFactor(JsonConfig s, string key, string where) =>
        s.RequiredDouble(key) is var f && f > 0 ? f : throw new IrrException($"{where}: {key} {f} must be positive (the rotary frequencies are divided by it)");

    // Keys that would change the computation and that irr does not implement: refused, never ignored.
    private static void RefuseUnsupportedKeys(JsonConfig r, string source)
    {
        if (r.Double("partial_rotary_factor") is { } f && f != 1.0)
            throw new IrrException($"{source}: partial_rotary_factor {f} is not supported (irr rotates the whole head)");
        foreach (string key in new[] { "final_logit_softcapping", "attn_logit_softcapping" })
            if (r.Double(key) is { } cap)
                throw new IrrException($"{source}: {key} {cap} is not supported (logit soft-capping is not part of Llama, Mistral or Qwen2)");
        foreach (string key in new[] { "use_qk_norm", "qk_layernorm", "qk_norm" })
            if (r.Node(key) is JsonValue v && !(v.TryGetValue(out bool b) && !b))
                throw new IrrException($"{source}: {key} {v.ToJsonString()} is not supported (irr has no query/key norm)");
    }

    private static int[] ReadSlidingWindows(JsonConfig r, string source, string modelType, int layers)
    {
        var windows = new int[layers];
        // transformers' layer_type_validation: one entry per layer, each a known type (checked for every model, even
        // those whose attention does not read it: a list of another length belongs to another model)
        string[]? layerTypes = null;
        if (r.Node("layer_types") is { } typesNode)
        {
            if (typesNode is not JsonArray types) throw new IrrException($"{source}: layer_types must be a list of strings");
            if (types.Count != layers)
                throw new IrrException($"{source}: layer_types has {types.Count} entries for {layers} layers (num_hidden_layers)");
            layerTypes = new string[layers];
            for (int i = 0; i < layers; i++)
                layerTypes[i] = (types[i] as JsonValue)?.TryGetValue(out string? t) == true
                    ? t is "sliding_attention" or "full_attention" ? t : throw new IrrException($"{source}: layer_types[{i}] '{t}' is not supported (full_attention or sliding_attention)")
                    : throw new IrrException($"{source}: layer_types[{i}] must be a string");
        }
        int Window()
        {
            // MistralConfig and Qwen2Config both default sliding_window to 4096; null means none
            int w = r.Has("sliding_window") ? r.Int("sliding_window") ?? 0 : 4096;
            if (w < 0 || (w == 0 && r.Node("sliding_window") is not null))
                throw new IrrException($"{source}: sliding_window {w} must be positive or null");
            return w;
        }
        switch (modelType)
        {
            case "mistral":
                Array.Fill(windows, Window());
                break;
            case "qwen2":
                // Qwen2Config: sliding_window = None unless use_sliding_window; layer_types, when not given,
                // marks "sliding_attention" the layers i >= max_window_layers
                if (!(r.Bool("use_sliding_window") ?? false)) break;
                int window = Window();
                if (layerTypes is not null)
                {
                    for (int i = 0; i < layers; i++) windows[i] = layerTypes[i] == "sliding_attention" ? window : 0;
                }
                else
                {
                    int full = r.Int("max_window_layers") ?? 28;
                    for (int i = Math.Max(full, 0); i < layers; i++) windows[i] = window;
                }
                break;
        }
        return windows;
    }

    private static TensorDType? ReadTorchDType(JsonConfig r, string source)
    {
        string? name = r.String("torch_dtype") ?? r.String("dtype");
        if (name is null) return null;
        return TensorDTypes.TryParseTorch(name, out var t) ? t : throw new IrrException($"{source}: torch_dtype '{name}' is not one of bfloat16, float16, float32");
    }
}
