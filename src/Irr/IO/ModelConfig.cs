using System.Text.Json.Nodes;

namespace Irr.IO;

/// <summary><c>rope_scaling</c> of a config: <c>llama3</c>, <c>linear</c> or (Phi-3 only) <c>longrope</c>.</summary>
/// <param name="Type">"llama3", "linear" or "longrope" (Phi-3's "su" and "yarn" are read as longrope, as Phi3Config does).</param>
/// <param name="Factor">The scaling factor (longrope: max_position_embeddings / original_max_position_embeddings).</param>
/// <param name="LowFreqFactor">llama3 only.</param>
/// <param name="HighFreqFactor">llama3 only.</param>
/// <param name="OriginalMaxPositionEmbeddings">llama3 and longrope: the pretrained context (longrope: beyond it the long factors apply).</param>
/// <param name="ShortFactor">longrope: the per-frequency divisors (head_dim/2) for sequences up to the original context.</param>
/// <param name="LongFactor">longrope: the divisors (head_dim/2) for longer sequences.</param>
/// <param name="AttentionFactor">longrope: cos and sin are multiplied by it (attention_factor, else √(1 + ln factor / ln original_max_position_embeddings), 1 when factor ≤ 1).</param>
public sealed record RopeScaling(string Type, double Factor, double LowFreqFactor, double HighFreqFactor, int OriginalMaxPositionEmbeddings,
    IReadOnlyList<double>? ShortFactor = null, IReadOnlyList<double>? LongFactor = null, double AttentionFactor = 1.0);

/// <summary>The rotary embedding of a layer: base and scaling (Gemma-3's local layers have their own).</summary>
/// <param name="Theta">The base (rope_theta, or rope_local_base_freq on Gemma-3's sliding layers).</param>
/// <param name="Scaling">rope_scaling, or null for none.</param>
public sealed record RotaryParameters(double Theta, RopeScaling? Scaling);

/// <summary>
/// The parts of a Hugging Face <c>config.json</c> that IRR uses, for <c>LlamaForCausalLM</c>,
/// <c>MistralForCausalLM</c>, <c>Qwen2ForCausalLM</c>, <c>Qwen3ForCausalLM</c>, <c>Gemma2ForCausalLM</c>,
/// <c>Gemma3ForCausalLM</c> (text) and <c>Phi3ForCausalLM</c>, read as transformers' config classes read them.
/// Missing optional keys take the transformers defaults of that model type; the core dimensions are
/// required; a key that would change the computation in a way irr does not implement is refused by name.
/// </summary>
public sealed class ModelConfig
{
    /// <summary>The architectures IRR runs.</summary>
    public static readonly IReadOnlyDictionary<string, string> SupportedArchitectures = new Dictionary<string, string>
    {
        ["LlamaForCausalLM"] = "llama",
        ["MistralForCausalLM"] = "mistral",
        ["Qwen2ForCausalLM"] = "qwen2",
        ["Qwen3ForCausalLM"] = "qwen3",
        ["Gemma2ForCausalLM"] = "gemma2",
        ["Gemma3ForCausalLM"] = "gemma3_text",
        ["Phi3ForCausalLM"] = "phi3",
    };

    /// <summary>Every linear module name of any supported family, in the order of the forward pass (Phi-3's fused ones beside their parts).</summary>
    public static readonly IReadOnlyList<string> KnownLinearModules = ["q_proj", "k_proj", "v_proj", "qkv_proj", "o_proj", "gate_proj", "up_proj", "gate_up_proj", "down_proj"];

    private static readonly string[] SeparateModules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];
    private static readonly string[] FusedModules = ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"];

    /// <summary>
    /// The linear layers of a decoder layer of this family, in the order of the forward pass: q_proj, k_proj, v_proj,
    /// o_proj, gate_proj, up_proj, down_proj; Phi-3's fused qkv_proj, o_proj, gate_up_proj, down_proj.
    /// </summary>
    public IReadOnlyList<string> LinearModules => FusedProjections ? FusedModules : SeparateModules;

    /// <summary>The (out, in) shape of linear module <paramref name="module"/> of this model's layers.</summary>
    public (int Out, int In) LinearShape(string module)
    {
        int h = HiddenSize, q = NumAttentionHeads * HeadDim, kv = NumKeyValueHeads * HeadDim, i = IntermediateSize;
        return module switch
        {
            "q_proj" => (q, h), "k_proj" or "v_proj" => (kv, h), "qkv_proj" => (q + 2 * kv, h), "o_proj" => (h, q),
            "gate_proj" or "up_proj" => (i, h), "gate_up_proj" => (2 * i, h), "down_proj" => (h, i),
            _ => throw new ArgumentException($"'{module}' is not a linear module.", nameof(module)),
        };
    }

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

    /// <summary>Bias on o_proj (Llama's, Qwen3's and Gemma's attention_bias).</summary>
    public bool OutputBias { get; private init; }

    /// <summary>hidden_act (Gemma: hidden_activation): "silu" (SwiGLU) or "gelu_pytorch_tanh" (GeGLU, Gemma).</summary>
    public string HiddenAct { get; private init; } = "silu";

    /// <summary>What every RMSNorm adds to its weight: 0, or 1 for Gemma's <c>x̂ · (1 + w)</c> (computed in float32).</summary>
    public float NormWeightOffset { get; private init; }

    /// <summary>q_norm and k_norm: an RMSNorm over head_dim of each query and key head before RoPE (Qwen3, Gemma-3).</summary>
    public bool QkNorm { get; private init; }

    /// <summary>
    /// Gemma-2/3's four norms per layer: post_attention_layernorm normalizes the attention's output before the residual
    /// add, and pre_feedforward_layernorm / post_feedforward_layernorm surround the MLP (Llama's post_attention_layernorm
    /// is the MLP's input norm instead).
    /// </summary>
    public bool SandwichNorms { get; private init; }

    /// <summary>
    /// attn_logit_softcapping c: attention scores become c·tanh(s/c) before the mask (Gemma-2), or null. Always null for
    /// Gemma-3: Gemma3Attention.forward does not pass it to the attention, so transformers ignores the key there.
    /// </summary>
    public double? AttnLogitSoftcapping { get; private init; }

    /// <summary>final_logit_softcapping c: logits become c·tanh(z/c) (Gemma-2), or null.</summary>
    public double? FinalLogitSoftcapping { get; private init; }

    /// <summary>query_pre_attn_scalar (Gemma): attention scores are scaled by its −½ power instead of head_dim's; null elsewhere.</summary>
    public double? QueryPreAttnScalar { get; private init; }

    /// <summary>Gemma: the embeddings are multiplied by √hidden_size, rounded to the embedding's dtype (transformers' normalizer).</summary>
    public bool ScaleEmbeddings { get; private init; }

    /// <summary>Phi-3: q, k and v come from one <c>qkv_proj</c> (rows q, then k, then v) and gate and up from one <c>gate_up_proj</c> (gate rows first).</summary>
    public bool FusedProjections { get; private init; }

    /// <summary>The rotary embedding of each layer (Gemma-3's sliding layers use rope_local_base_freq without scaling).</summary>
    public IReadOnlyList<RotaryParameters> LayerRotary { get; private init; } = [];

    /// <summary>The rotary embedding of layer <paramref name="layer"/>.</summary>
    public RotaryParameters RotaryOf(int layer) => layer < LayerRotary.Count ? LayerRotary[layer] : new RotaryParameters(RopeTheta, RopeScaling);

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
                                   (architecture is "Gemma3ForConditionalGeneration" ? "(irr runs Gemma-3's text model, Gemma3ForCausalLM with a gemma3_text config) " : "") +
                                   $"(irr supports {string.Join(", ", SupportedArchitectures.Keys)})");
        modelType ??= expectedType;
        if (modelType != expectedType)
            throw new IrrException($"{source}: model_type '{modelType}' does not belong to {architecture} (expected '{expectedType}')");
        bool gemma = modelType is "gemma2" or "gemma3_text", phi3 = modelType == "phi3";

        // Sizes first, each within its limit, before anything is sized by them (a 10**9-layer config is refused here).
        long maxDim = MaxDimension;
        int hidden = Required(r.Positive("hidden_size", maxDim, MaxDimensionVariable), "hidden_size", source);
        int heads = Required(r.Positive("num_attention_heads", maxDim, MaxDimensionVariable), "num_attention_heads", source);
        // absent: the config class's default (Qwen3Config 32 and 128, Gemma2/3 4 and 256, Mistral 8), else heads and hidden / heads
        var (defaultKvHeads, defaultHeadDim) = FamilyHeadDefaults(modelType);
        int kvHeads = r.Positive("num_key_value_heads", maxDim, MaxDimensionVariable) ?? defaultKvHeads ?? heads;
        int headDim = r.Positive("head_dim", maxDim, MaxDimensionVariable) ?? defaultHeadDim ?? hidden / heads;
        if (heads % kvHeads != 0)
            throw new IrrException($"{source}: num_attention_heads {heads} is not a positive multiple of num_key_value_heads {kvHeads}");
        if (headDim <= 0 || r.Int("head_dim") is null && defaultHeadDim is null && hidden % heads != 0)
            throw new IrrException($"{source}: hidden_size {hidden} is not divisible by num_attention_heads {heads} and head_dim is not given");
        if ((long)heads * headDim > maxDim)
            throw Limits.Exceeded(source, $"num_attention_heads × head_dim ({heads} × {headDim})", MaxDimensionVariable, maxDim);
        int layers = Required(r.Positive("num_hidden_layers", MaxLayers, "IRR_MAX_LAYERS"), "num_hidden_layers", source);
        int intermediate = Required(r.Positive("intermediate_size", maxDim, MaxDimensionVariable), "intermediate_size", source);
        int vocabSize = Required(r.Positive("vocab_size", Text.Tokenizer.MaxVocabSize, "IRR_MAX_VOCAB_SIZE"), "vocab_size", source);

        // Gemma's MLP reads hidden_activation (its hidden_act is a legacy key modeling_gemma2/3 do not read)
        string actKey = gemma ? "hidden_activation" : "hidden_act";
        string act = r.String(actKey) ?? (gemma ? "gelu_pytorch_tanh" : "silu");
        if (act is not ("silu" or "gelu_pytorch_tanh"))
            throw new IrrException($"{source}: {actKey} '{act}' is not supported (irr implements silu and gelu_pytorch_tanh)");
        RefuseUnsupportedKeys(r, source, modelType);

        bool qwen2 = modelType == "qwen2", llama = modelType == "llama";
        // modeling_llama reads attention_bias and mlp_bias; Qwen3 and Gemma read attention_bias (q, k, v and o); Mistral
        // and Phi-3 have no biases and Qwen2 has q/k/v biases always, whatever these keys say (their configs do not take them).
        bool attentionBias = (llama || modelType is "qwen3" or "gemma2" or "gemma3_text") && (r.Bool("attention_bias") ?? false);
        if (phi3 && (r.Bool("attention_bias") ?? false))
            throw new IrrException($"{source}: attention_bias true is not supported for phi3 (Phi3ForCausalLM's projections have no bias)");
        // transformers v5 writes rope_theta and rope_scaling inside rope_parameters
        var ropeParameters = r.Node("rope_parameters") switch
        {
            null => null,
            JsonObject o => new JsonConfig(o, source + ": rope_parameters"),
            _ => throw new IrrException($"{source}: rope_parameters must be an object or null"),
        };
        int maxPositions = r.Positive("max_position_embeddings", int.MaxValue, "IRR_MAX_POSITIONS") ?? DefaultMaxPositions(modelType);
        double ropeTheta = ropeParameters?.Double("rope_theta") ?? r.Double("rope_theta") ?? (modelType == "gemma3_text" ? 1_000_000.0 : 10000.0);
        var ropeScaling = ropeParameters is not null
            ? ReadRopeScaling(ropeParameters, source + ": rope_parameters", allowMissingType: true, modelType)
            : ReadRopeScaling(r.Node("rope_scaling"), source + ": rope_scaling", modelType);
        if (ropeScaling is { Type: "longrope" }) ropeScaling = LongRope(ropeScaling, r, source, headDim, maxPositions);
        var slidingWindows = ReadSlidingWindows(r, source, modelType, layers);
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
            MaxPositionEmbeddings = maxPositions,
            RmsNormEps = r.Double("rms_norm_eps") is { } eps
                ? eps >= 0 ? eps : throw new IrrException($"{source}: rms_norm_eps {eps} must not be negative (RMSNorm divides by √(mean(x²) + eps))")
                : phi3 ? 1e-5 : 1e-6,
            RopeTheta = ropeTheta,
            RopeScaling = ropeScaling,
            // Gemma2Config and Gemma3TextConfig tie the head by default; the others do not
            TieWordEmbeddings = r.Bool("tie_word_embeddings") ?? gemma,
            BosTokenId = r.Int("bos_token_id"),
            EosTokenIds = r.IntOrIntList("eos_token_id"),
            TorchDType = ReadTorchDType(r, source),
            QkvBias = qwen2 || attentionBias,
            OutputBias = !qwen2 && attentionBias,
            MlpBias = llama && (r.Bool("mlp_bias") ?? false),
            SlidingWindows = slidingWindows,
            HiddenAct = act,
            NormWeightOffset = gemma ? 1f : 0f,
            QkNorm = modelType is "qwen3" or "gemma3_text",
            SandwichNorms = gemma,
            // Gemma-2 only: Gemma3TextConfig keeps the key, but Gemma3Attention.forward passes no softcap to the attention
            AttnLogitSoftcapping = modelType == "gemma2" ? Softcap(r, "attn_logit_softcapping", source, 50.0) : null,
            FinalLogitSoftcapping = gemma ? Softcap(r, "final_logit_softcapping", source, modelType == "gemma2" ? 30.0 : null) : null,
            QueryPreAttnScalar = gemma ? r.Double("query_pre_attn_scalar") is { } qs
                ? qs > 0 ? qs : throw new IrrException($"{source}: query_pre_attn_scalar {qs} must be positive (scores are scaled by its −½ power)")
                : 256.0 : null,
            ScaleEmbeddings = gemma,
            FusedProjections = phi3,
            LayerRotary = ReadLayerRotary(r, source, modelType, slidingWindows, ropeTheta, ropeScaling),
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
        long h = HiddenSize;
        yield return ("model.embed_tokens.weight", [VocabSize, h]);
        for (int i = 0; i < NumHiddenLayers; i++)
        {
            string p = $"model.layers.{i}.";
            foreach (string module in LinearModules)
            {
                var (outDim, inDim) = LinearShape(module);
                string name = LinearWeightName(i, module);
                yield return (name, [outDim, inDim]);
                if (HasBias(module)) yield return (name[..^"weight".Length] + "bias", [outDim]);
                if (module == "o_proj" && QkNorm) // registered after o_proj (Qwen3Attention, Gemma3Attention)
                {
                    yield return (p + "self_attn.q_norm.weight", [HeadDim]);
                    yield return (p + "self_attn.k_norm.weight", [HeadDim]);
                }
            }
            yield return (p + "input_layernorm.weight", [h]);
            yield return (p + "post_attention_layernorm.weight", [h]);
            if (SandwichNorms)
            {
                yield return (p + "pre_feedforward_layernorm.weight", [h]);
                yield return (p + "post_feedforward_layernorm.weight", [h]);
            }
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
        $"model.layers.{layer}.{(module is "gate_proj" or "up_proj" or "gate_up_proj" or "down_proj" ? "mlp" : "self_attn")}.{module}.weight";

    /// <summary>Whether linear module <paramref name="module"/> has a bias in this model.</summary>
    public bool HasBias(string module) => module switch
    {
        "q_proj" or "k_proj" or "v_proj" => QkvBias,
        "o_proj" => OutputBias,
        "gate_proj" or "up_proj" or "down_proj" => MlpBias,
        _ => false,
    };

    /// <summary>The names of the norm weights of layer <paramref name="layer"/> in forward order (never IRR targets).</summary>
    public IEnumerable<string> NormWeightNames(int layer)
    {
        string p = $"model.layers.{layer}.";
        yield return p + "input_layernorm.weight";
        if (QkNorm)
        {
            yield return p + "self_attn.q_norm.weight";
            yield return p + "self_attn.k_norm.weight";
        }
        yield return p + "post_attention_layernorm.weight";
        if (!SandwichNorms) yield break;
        yield return p + "pre_feedforward_layernorm.weight";
        yield return p + "post_feedforward_layernorm.weight";
    }

    /// <summary>A one-line summary: "LlamaForCausalLM, 22 layers, hidden 2048, 32 heads (4 KV)".</summary>
    public override string ToString() =>
        $"{Architecture}, {NumHiddenLayers} layers, hidden {HiddenSize}, {NumAttentionHeads} heads ({NumKeyValueHeads} KV)";

    // rope_scaling (or v5's rope_parameters, which holds the same keys plus rope_theta)
    private static RopeScaling? ReadRopeScaling(JsonNode? node, string where, string modelType)
    {
        if (node is null) return null;
        if (node is not JsonObject o) throw new IrrException($"{where} must be an object or null");
        return ReadRopeScaling(new JsonConfig(o, where), where, allowMissingType: false, modelType);
    }

    private static RopeScaling? ReadRopeScaling(JsonConfig s, string where, bool allowMissingType, string modelType)
    {
        string? type = s.String("rope_type") ?? s.String("type");
        if (type is null && !allowMissingType) throw new IrrException($"{where} has no rope_type");
        // Phi3Config._rope_scaling_adjustment reads the older names "su" and "yarn" as longrope
        if (modelType == "phi3" && type is "su" or "yarn") type = "longrope";
        switch (type ?? "default")
        {
            case "default":
                return null;
            case "linear" or "llama3" when modelType == "phi3":
                throw new IrrException($"{where} type '{type}' is not supported for phi3 (Phi3Config accepts only longrope)");
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
            case "longrope" when modelType == "phi3":
                // completed by LongRope once the config-level original_max_position_embeddings is known
                return new RopeScaling("longrope", s.Double("factor") ?? 0, 0, 0, 0, Factors(s, "short_factor", where), Factors(s, "long_factor", where),
                    s.Double("attention_factor") is { } af ? af > 0 ? af : throw new IrrException($"{where}: attention_factor {af} must be positive") : 0);
            default:
                throw new IrrException($"{where} type '{type}' is not supported (irr supports llama3 and linear{(modelType == "phi3" ? ", and longrope/su for phi3" : "")})");
        }
    }

    // longrope's short_factor / long_factor: positive numbers, one per rotary frequency
    private static double[] Factors(JsonConfig s, string key, string where)
    {
        if (s.Node(key) is not JsonArray list) throw new IrrException($"{where}: {key} must be a list of numbers");
        var factors = new double[list.Count];
        for (int i = 0; i < factors.Length; i++)
            factors[i] = (list[i] as JsonValue)?.TryGetValue(out double f) == true && f > 0 && double.IsFinite(f)
                ? f : throw new IrrException($"{where}: {key}[{i}] must be a positive number (the frequencies are divided by it)");
        return factors;
    }

    // Phi-3's longrope as transformers' _compute_longrope_parameters reads it: the context ratio and the attention factor
    // come from the config's max_position_embeddings / original_max_position_embeddings, not from rope_scaling's factor.
    private static RopeScaling LongRope(RopeScaling scaling, JsonConfig r, string source, int headDim, int maxPositions)
    {
        string where = source + ": rope_scaling";
        if (scaling.ShortFactor!.Count != headDim / 2 || scaling.LongFactor!.Count != headDim / 2)
            throw new IrrException($"{where}: short_factor and long_factor need head_dim / 2 = {headDim / 2} entries (they have {scaling.ShortFactor.Count} and {scaling.LongFactor!.Count})");
        int original = r.Positive("original_max_position_embeddings", int.MaxValue, "IRR_MAX_POSITIONS") ?? 4096;
        double factor = (double)maxPositions / original;
        double attention = scaling.AttentionFactor > 0 ? scaling.AttentionFactor
            : factor <= 1.0 ? 1.0 : Math.Sqrt(1 + Math.Log(factor) / Math.Log(original));
        return scaling with { Factor = factor, OriginalMaxPositionEmbeddings = original, AttentionFactor = attention };
    }

    // A factor of rope scaling: a finite number > 0 (the frequencies are divided by it).
    private static double PositiveFactor(JsonConfig s, string key, string where) =>
        s.RequiredDouble(key) is var f && f > 0 ? f : throw new IrrException($"{where}: {key} {f} must be positive (the rotary frequencies are divided by it)");

    // A logit soft-cap: absent → the family's default, null → none, else a positive number.
    private static double? Softcap(JsonConfig r, string key, string source, double? absent)
    {
        if (!r.Has(key)) return absent;
        if (r.Node(key) is null) return null;
        double cap = r.RequiredDouble(key);
        return cap > 0 ? cap : throw new IrrException($"{source}: {key} {cap} must be positive or null (the logits become cap·tanh(x/cap))");
    }

    // The defaults of num_key_value_heads and head_dim in transformers' config classes, where they are numbers (Llama's
    // and Phi-3's are None: all heads, hidden / heads).
    private static (int? KvHeads, int? HeadDim) FamilyHeadDefaults(string modelType) => modelType switch
    {
        "qwen3" => (32, 128), "qwen2" => (32, null), "gemma2" or "gemma3_text" => (4, 256), "mistral" => (8, null), _ => (null, null),
    };

    // transformers' defaults of max_position_embeddings for the newer families (irr keeps 2048 for the Llama-2-era ones)
    private static int DefaultMaxPositions(string modelType) => modelType switch
    {
        "qwen3" => 32768, "gemma2" => 8192, "gemma3_text" => 131072, "phi3" => 4096, _ => 2048,
    };

    // Keys that would change the computation and that irr does not implement: refused, never ignored.
    private static void RefuseUnsupportedKeys(JsonConfig r, string source, string modelType)
    {
        if (r.Double("partial_rotary_factor") is { } f && f != 1.0)
            throw new IrrException($"{source}: partial_rotary_factor {f} is not supported (irr rotates the whole head)");
        // transformers v5 writes it inside rope_parameters
        if (r.Node("rope_parameters") is JsonObject rope && new JsonConfig(rope, source).Double("partial_rotary_factor") is { } pf && pf != 1.0)
            throw new IrrException($"{source}: rope_parameters.partial_rotary_factor {pf} is not supported (irr rotates the whole head)");
        if (modelType is not ("gemma2" or "gemma3_text"))
            foreach (string key in new[] { "final_logit_softcapping", "attn_logit_softcapping" })
                if (r.Double(key) is { } cap)
                    throw new IrrException($"{source}: {key} {cap} is not supported for {modelType} (transformers applies logit soft-capping only to Gemma-2 and Gemma-3)");
        foreach (string key in new[] { "use_qk_norm", "qk_layernorm", "qk_norm" })
            if (r.Node(key) is JsonValue v && !(v.TryGetValue(out bool b) && !b))
                throw new IrrException($"{source}: {key} {v.ToJsonString()} is not supported (irr's query/key norm is Qwen3's and Gemma-3's, which their configs do not switch)");
        if (r.Bool("use_bidirectional_attention") == true)
            throw new IrrException($"{source}: use_bidirectional_attention true is not supported (irr runs causal language models)");
        if (modelType is "gemma2" or "gemma3_text" && r.Has("sliding_window") && r.Node("sliding_window") is null)
            throw new IrrException($"{source}: sliding_window null is not supported for {modelType} (its sliding layers need a window)");
    }

    // transformers' layer_types: given (one known type per layer), or each family's default
    private static string[] ReadLayerTypes(JsonConfig r, string source, string modelType, int layers)
    {
        if (r.Node("layer_types") is { } typesNode)
        {
            // layer_type_validation: checked for every model, even those whose attention does not read it
            if (typesNode is not JsonArray types) throw new IrrException($"{source}: layer_types must be a list of strings");
            if (types.Count != layers)
                throw new IrrException($"{source}: layer_types has {types.Count} entries for {layers} layers (num_hidden_layers)");
            var given = new string[layers];
            for (int i = 0; i < layers; i++)
                given[i] = (types[i] as JsonValue)?.TryGetValue(out string? t) == true
                    ? t is "sliding_attention" or "full_attention" ? t : throw new IrrException($"{source}: layer_types[{i}] '{t}' is not supported (full_attention or sliding_attention)")
                    : throw new IrrException($"{source}: layer_types[{i}] must be a string");
            return given;
        }
        // Gemma2Config: every other layer slides, from the first; Gemma3TextConfig: all but every sliding_window_pattern-th
        int pattern = modelType switch
        {
            "gemma2" => 2,
            "gemma3_text" => r.Positive("sliding_window_pattern", int.MaxValue, "IRR_MAX_LAYERS") ?? 6,
            _ => 0,
        };
        return Enumerable.Range(0, layers).Select(i => pattern > 0 && (i + 1) % pattern != 0 ? "sliding_attention" : "full_attention").ToArray();
    }

    private static int[] ReadSlidingWindows(JsonConfig r, string source, string modelType, int layers)
    {
        var windows = new int[layers];
        bool typesGiven = r.Has("layer_types");
        var layerTypes = ReadLayerTypes(r, source, modelType, layers);
        int Window(int absent)
        {
            // MistralConfig, Qwen2/3Config and Gemma2/3Config default sliding_window to 4096, Phi3Config to none; null means none
            int w = r.Has("sliding_window") ? r.Int("sliding_window") ?? 0 : absent;
            if (w < 0 || (w == 0 && r.Node("sliding_window") is not null))
                throw new IrrException($"{source}: sliding_window {w} must be positive or null");
            return w;
        }
        switch (modelType)
        {
            case "mistral":
                Array.Fill(windows, Window(4096));
                break;
            case "phi3":
                Array.Fill(windows, Window(0));
                break;
            case "gemma2" or "gemma3_text":
                int gemmaWindow = Window(4096);
                for (int i = 0; i < layers; i++) windows[i] = layerTypes[i] == "sliding_attention" ? gemmaWindow : 0;
                break;
            case "qwen2" or "qwen3":
                // Qwen2/3Config: sliding_window = None unless use_sliding_window; layer_types, when not given,
                // marks "sliding_attention" the layers i >= max_window_layers
                if (!(r.Bool("use_sliding_window") ?? false)) break;
                int window = Window(4096);
                if (typesGiven)
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

    // Every layer's rotary embedding: Gemma-3's sliding layers use rope_local_base_freq and no scaling (Gemma3TextModel's
    // rotary_emb_local), its full layers rope_theta and rope_scaling; transformers v5 may give both as rope_parameters
    // keyed by layer type. The other families use one for all layers.
    private static RotaryParameters[] ReadLayerRotary(JsonConfig r, string source, string modelType, IReadOnlyList<int> windows,
        double theta, RopeScaling? scaling)
    {
        var global = new RotaryParameters(theta, scaling);
        if (modelType != "gemma3_text") return Enumerable.Repeat(global, windows.Count).ToArray();
        var local = new RotaryParameters(r.Double("rope_local_base_freq") ?? 10000.0, null);
        if (r.Node("rope_parameters") is JsonObject byType && (byType.ContainsKey("full_attention") || byType.ContainsKey("sliding_attention")))
        {
            RotaryParameters Of(string type, RotaryParameters absent)
            {
                string where = $"{source}: rope_parameters.{type}";
                if (byType[type] is not JsonObject o) return byType.ContainsKey(type) ? throw new IrrException($"{where} must be an object") : absent;
                var c = new JsonConfig(o, where);
                if (c.Double("partial_rotary_factor") is { } pf && pf != 1.0)
                    throw new IrrException($"{where}: partial_rotary_factor {pf} is not supported (irr rotates the whole head)");
                return new RotaryParameters(c.Double("rope_theta") ?? absent.Theta, ReadRopeScaling(c, where, allowMissingType: true, modelType));
            }
            (global, local) = (Of("full_attention", global), Of("sliding_attention", local));
        }
        foreach (var p in new[] { global, local })
            if (!(p.Theta > 0)) throw new IrrException($"{source}: rope base {p.Theta} must be positive (the rotary frequencies are base^(-2i/head_dim))");
        return windows.Select(w => w > 0 ? local : global).ToArray();
    }

    private static TensorDType? ReadTorchDType(JsonConfig r, string source)
    {
        string? name = r.String("torch_dtype") ?? r.String("dtype");
        if (name is null) return null;
        return TensorDTypes.TryParseTorch(name, out var t) ? t : throw new IrrException($"{source}: torch_dtype '{name}' is not one of bfloat16, float16, float32");
    }
}
