using System.Text.Json;
using System.Text.Json.Nodes;
using Irr.Tensors;

namespace Irr.IO;

/// <summary>The fields of a PEFT <c>adapter_config.json</c> that decide how a LoRA adapter merges.</summary>
public sealed class LoraConfig
{
    /// <summary>LoRA rank r.</summary>
    public int R { get; init; }

    /// <summary>lora_alpha.</summary>
    public double LoraAlpha { get; init; }

    /// <summary>Module names the adapter targets (e.g. q_proj, v_proj); empty when given as a regex.</summary>
    public IReadOnlyList<string> TargetModules { get; init; } = [];

    /// <summary>target_modules when it is a regular expression string rather than a list.</summary>
    public string? TargetModulesRegex { get; init; }

    /// <summary>use_rslora: scale α/√r instead of α/r.</summary>
    public bool UseRslora { get; init; }

    /// <summary>fan_in_fan_out (GPT-2's Conv1D layout; false for Llama-family Linear layers).</summary>
    public bool FanInFanOut { get; init; }

    /// <summary>bias: "none", "all" or "lora_only".</summary>
    public string Bias { get; init; } = "none";

    /// <summary>base_model_name_or_path.</summary>
    public string? BaseModelNameOrPath { get; init; }

    /// <summary>The JSON as read (or to be written).</summary>
    public JsonObject Json { get; init; } = [];

    /// <summary>The merge scale: α/r, or α/√r with rsLoRA (0 for a TRAINABLE_TOKENS adapter, which has no r).</summary>
    public double Scale => R <= 0 ? 0 : UseRslora ? LoraAlpha / Math.Sqrt(R) : LoraAlpha / R;

    /// <summary>A config for a new adapter, as PEFT would write it.</summary>
    /// <param name="r">The rank.</param>
    /// <param name="alpha">lora_alpha.</param>
    /// <param name="targetModules">The modules adapted.</param>
    /// <param name="baseModel">The base's directory; a Hugging Face cache snapshot is written as its Hub ID, with its commit as <c>revision</c> (what PEFT loads the base from on another machine).</param>
    /// <param name="useRslora">rsLoRA scaling.</param>
    public static LoraConfig Create(int r, double alpha, IReadOnlyList<string> targetModules, string? baseModel, bool useRslora = false)
    {
        var hub = baseModel is null ? null : HubCache.RepoOfSnapshot(baseModel);
        if (hub is var (repoId, _)) baseModel = repoId;
        var json = new JsonObject
        {
            ["peft_type"] = "LORA",
            ["task_type"] = "CAUSAL_LM",
            ["r"] = r,
            ["lora_alpha"] = alpha,
            ["lora_dropout"] = 0.0,
            ["target_modules"] = new JsonArray(targetModules.Select(t => (JsonNode)JsonValue.Create(t)!).ToArray()),
            ["bias"] = "none",
            ["fan_in_fan_out"] = false,
            ["use_rslora"] = useRslora,
            ["use_dora"] = false,
            ["inference_mode"] = true,
            ["modules_to_save"] = null,
            ["base_model_name_or_path"] = baseModel,
            ["revision"] = hub?.Commit,
            ["init_lora_weights"] = true,
            ["rank_pattern"] = new JsonObject(),
            ["alpha_pattern"] = new JsonObject(),
        };
        return new LoraConfig { R = r, LoraAlpha = alpha, TargetModules = targetModules, UseRslora = useRslora, BaseModelNameOrPath = baseModel, Json = json };
    }

    /// <summary>peft_type: "LORA", or "TRAINABLE_TOKENS" (PEFT's TrainableTokensModel: rows of the embedding only).</summary>
    public string PeftType { get; init; } = "LORA";

    /// <summary>rank_pattern: per-module ranks, keys matched as PEFT's <c>get_pattern_key</c> does, in file order.</summary>
    public IReadOnlyList<KeyValuePair<string, int>> RankPattern { get; init; } = [];

    /// <summary>alpha_pattern: per-module alphas, keys matched as PEFT's <c>get_pattern_key</c> does, in file order.</summary>
    public IReadOnlyList<KeyValuePair<string, double>> AlphaPattern { get; init; } = [];

    /// <summary>ensure_weight_tying: on a tied base, the adapted embedding is also the head (PEFT ≥ 0.18).</summary>
    public bool EnsureWeightTying { get; init; }

    /// <summary>
    /// Trainable token indices by module name as given (<c>trainable_token_indices</c>: a list means the input embedding,
    /// keyed <c>embed_tokens</c>; a dict names the modules; a TRAINABLE_TOKENS adapter's <c>token_indices</c>), or null.
    /// </summary>
    public IReadOnlyDictionary<string, int[]>? TrainableTokenIndices { get; init; }

    /// <summary>layers_to_transform: the decoder layers that may be adapted, or null for all.</summary>
    public IReadOnlyList<int>? LayersToTransform { get; init; }

    /// <summary>Things about the config a user should know that do not stop the merge (unknown keys, fan_in_fan_out …).</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];

    /// <summary>The rank of module <paramref name="module"/> (e.g. model.layers.3.self_attn.q_proj): rank_pattern's, else r.</summary>
    public int RankOf(string module) => PatternValue(RankPattern, module, R);

    /// <summary>The merge scale of module <paramref name="module"/>: α/r (α/√r with rsLoRA), with rank_pattern and alpha_pattern applied.</summary>
    public double ScaleOf(string module)
    {
        int r = RankOf(module);
        double alpha = PatternValue(AlphaPattern, module, LoraAlpha);
        return UseRslora ? alpha / Math.Sqrt(r) : alpha / r;
    }

    // PEFT (utils/other.get_pattern_key): the first key k, in order, such that the module name matches (.*\.)?(k)$ from its start.
    private static T PatternValue<T>(IReadOnlyList<KeyValuePair<string, T>> pattern, string module, T fallback)
    {
        foreach (var (key, value) in pattern)
        {
            try
            {
                if (System.Text.RegularExpressions.Regex.IsMatch(module, $@"\A(?:.*\.)?(?:{key})\n?\z", System.Text.RegularExpressions.RegexOptions.None, Text.SplitRegex.MatchTimeout))
                    return value;
            }
            catch (System.Text.RegularExpressions.RegexMatchTimeoutException e)
            {
                throw Text.SplitRegex.TimedOut($"{LoraAdapter.ConfigFile}: the rank_pattern/alpha_pattern key matched against {module}", key, e);
            }
        }
        return fallback;
    }

    // Every field of PEFT's LoraConfig (and PeftConfig) that irr reads or knowingly ignores, with why (docs/formats.md lists them).
    private static readonly HashSet<string> Implemented = new(StringComparer.Ordinal)
    {
        "peft_type", "r", "lora_alpha", "target_modules", "use_rslora", "bias", "modules_to_save", "rank_pattern", "alpha_pattern",
        "trainable_token_indices", "ensure_weight_tying", "layers_to_transform", "layers_pattern", "fan_in_fan_out",
        "base_model_name_or_path", "init_lora_weights", "token_indices",
    };

    // Training, initialisation or bookkeeping only: the merged function does not depend on them.
    private static readonly HashSet<string> Irrelevant = new(StringComparer.Ordinal)
    {
        "task_type", "auto_mapping", "peft_version", "revision", "inference_mode", "lora_dropout", "exclude_modules",
        "loftq_config", "eva_config", "corda_config", "lora_ga_config", "runtime_config", "qalora_group_size", "init_weights",
        "megatron_core",
    };

    // Keys that change the function and that irr does not implement: refused when set (not null, false, empty).
    private static readonly (string Key, string What)[] Refused =
    [
        ("use_dora", "DoRA (weight-decomposed LoRA) is not supported"),
        ("layer_replication", "layer replication (decoder layers stacked from copies) is not supported"),
        ("use_qalora", "QALoRA (pooled inputs) is not supported"),
        ("lora_bias", "LoRA biases on lora_B are not supported"),
        ("target_parameters", "LoRA on nn.Parameter targets (MoE experts) is not supported"),
        ("megatron_config", "Megatron parallel layers are not supported"),
        ("alora_invocation_tokens", "activated LoRA (aLoRA, active only after invocation tokens) is not supported"),
        ("use_bdlora", "block-diagonal LoRA is not supported"),
        ("target_modules_bd_a", "block-diagonal LoRA is not supported"),
        ("target_modules_bd_b", "block-diagonal LoRA is not supported"),
        ("velora_config", "VeLoRA is not supported"),
        ("monteclora_config", "MonteCLoRA is not supported"),
        ("kasa_config", "KaSA is not supported"),
        ("arrow_config", "Arrow routing between adapters is not supported"),
    ];

    /// <summary>Parses adapter_config.json text; <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="IrrException">
    /// peft_type is not LORA or TRAINABLE_TOKENS; a key that changes the function and that irr does not implement is set
    /// (the message names it); a value is malformed.
    /// </exception>
    public static LoraConfig Parse(string text, string source)
    {
        try
        {
            return ParseObject(JsonFiles.ParseObject(text, source), source);
        }
        catch (InvalidOperationException e)
        {
            // System.Text.Json parses a lone surrogate escape (\ud800) but makes no string of it; a value of another type
            // than the one read is the same exception.
            throw new IrrException($"{source}: a value cannot be read: {InputFile.Escape(e.Message)}", e);
        }
    }

    private static LoraConfig ParseObject(JsonObject root, string source)
    {
        var r = new JsonConfig(root, source);
        string peftType = r.String("peft_type") ?? "LORA";
        if (peftType is not ("LORA" or "TRAINABLE_TOKENS"))
            throw new IrrException($"{source}: peft_type '{peftType}' is not supported (irr merges LORA and TRAINABLE_TOKENS adapters)");
        foreach (var (key, what) in Refused)
            if (IsSet(root[key]))
                throw new IrrException($"{source}: {key} is {Describe(root[key])}; {what}");
        if (r.Node("init_lora_weights") is JsonValue init && init.TryGetValue(out string? initName)
            && (initName.StartsWith("pissa", StringComparison.OrdinalIgnoreCase) || initName.StartsWith("corda", StringComparison.OrdinalIgnoreCase)
                || initName.Equals("olora", StringComparison.OrdinalIgnoreCase) || initName.Equals("lora_ga", StringComparison.OrdinalIgnoreCase)))
            throw new IrrException($"{source}: init_lora_weights is '{initName}', which changes the base weights the adapter applies to; " +
                                   "convert it to a plain LoRA adapter first (PEFT's save_pretrained with path_initial_model_for_weight_conversion)");
        var notes = new List<string>();
        var unknown = root.Where(kv => !Implemented.Contains(kv.Key) && !Irrelevant.Contains(kv.Key) && !Refused.Any(x => x.Key == kv.Key) && IsSet(kv.Value))
            .Select(kv => kv.Key).Order(StringComparer.Ordinal).ToList();
        if (unknown.Count > 0)
            notes.Add($"{source}: keys unknown to irr are ignored, as PEFT ignores keys from newer versions: {string.Join(", ", unknown.Select(Shown))}");
        bool fanInFanOut = r.Bool("fan_in_fan_out") ?? false;
        if (fanInFanOut)
            notes.Add($"{source}: fan_in_fan_out is true, which is for GPT-2 Conv1D layers; Llama-family layers are Linear, so it is ignored (as PEFT does)");
        if (r.Node("init_lora_weights") is JsonValue loftq && loftq.TryGetValue(out string? l) && l == "loftq")
            notes.Add($"{source}: init_lora_weights is 'loftq': the adapter was trained on LoftQ's quantised base; irr applies it to the base given");

        bool tokensOnly = peftType == "TRAINABLE_TOKENS";
        int rank = tokensOnly ? r.Int("r") ?? 0 : r.RequiredInt("r");
        if (!tokensOnly && rank <= 0) throw new IrrException($"{source}: r must be positive, not {rank}");
        var targets = root["target_modules"] switch
        {
            JsonArray a => a.Select((x, i) => x is JsonValue v && v.TryGetValue(out string? s) ? s : throw new IrrException($"{source}: target_modules[{i}] is not a string")).ToArray(),
            _ => [],
        };
        return new LoraConfig
        {
            PeftType = peftType,
            R = rank,
            LoraAlpha = r.Double("lora_alpha") ?? 8,
            TargetModules = targets,
            TargetModulesRegex = r.Node("target_modules") is JsonValue ? r.String("target_modules") : null,
            UseRslora = r.Bool("use_rslora") ?? false,
            FanInFanOut = fanInFanOut,
            Bias = r.String("bias") ?? "none",
            BaseModelNameOrPath = r.String("base_model_name_or_path"),
            RankPattern = Pattern(root, "rank_pattern", source, (v, k) => v.TryGetValue(out int i) && i > 0 ? i : throw new IrrException($"{source}: rank_pattern['{k}'] must be a positive integer")),
            AlphaPattern = Pattern(root, "alpha_pattern", source, (v, k) => v.TryGetValue(out double d) ? d : throw new IrrException($"{source}: alpha_pattern['{k}'] must be a number")),
            EnsureWeightTying = r.Bool("ensure_weight_tying") ?? false,
            TrainableTokenIndices = tokensOnly ? TokenIndices(root, "token_indices", source, targets) : TokenIndices(root, "trainable_token_indices", source, null),
            LayersToTransform = root["layers_to_transform"] switch
            {
                null => null,
                JsonArray a => a.Select((x, i) => x is JsonValue v && v.TryGetValue(out int n) ? n : throw new IrrException($"{source}: layers_to_transform[{i}] is not an integer")).ToArray(),
                _ => [r.Int("layers_to_transform")!.Value],
            },
            Notes = notes,
            Json = root,
        };
    }

    // A value that turns a feature on: not null, false, 0, "", [] or {}.
    private static bool IsSet(JsonNode? node) => node switch
    {
        null => false,
        JsonArray a => a.Count > 0,
        JsonObject o => o.Count > 0,
        JsonValue v when v.TryGetValue(out bool b) => b,
        JsonValue v when v.TryGetValue(out string? s) => s.Length > 0,
        JsonValue v when v.TryGetValue(out double d) => d != 0,
        _ => true,
    };

    private static string Describe(JsonNode? node)
    {
        string text = node?.ToJsonString() ?? "null";
        return text.Length <= 60 ? text : text[..57] + "...";
    }

    // A key as shown in a message: control characters, quotes and backslashes escaped as in JSON.
    private static string Shown(string key) => JsonEncodedText.Encode(key, System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping).ToString();

    // rank_pattern / alpha_pattern: each key must be a regular expression (PEFT matches it with re.match).
    private static List<KeyValuePair<string, T>> Pattern<T>(JsonObject root, string key, string source, Func<JsonValue, string, T> read)
    {
        if (root[key] is null) return [];
        if (root[key] is not JsonObject o) throw new IrrException($"{source}: {key} must be an object");
        var pattern = new List<KeyValuePair<string, T>>();
        foreach (var (k, value) in o)
        {
            try
            {
                _ = new System.Text.RegularExpressions.Regex(k);
            }
            catch (ArgumentException e)
            {
                throw new IrrException($"{source}: {key} key '{Shown(k)}' is not a regular expression: {e.Message.ReplaceLineEndings(" ")}");
            }
            pattern.Add(KeyValuePair.Create(k, value is JsonValue v ? read(v, Shown(k)) : throw new IrrException($"{source}: {key}['{Shown(k)}'] must be a number")));
        }
        return pattern;
    }

    // trainable_token_indices: a list (the input embedding, embed_tokens) or {module: [indices]}; TRAINABLE_TOKENS' token_indices apply to its targets.
    private static Dictionary<string, int[]>? TokenIndices(JsonObject root, string key, string source, string[]? targets)
    {
        int[] List(JsonNode? node, string where) => node is JsonArray a
            ? a.Select((x, i) => x is JsonValue v && v.TryGetValue(out int n) && n >= 0 ? n : throw new IrrException($"{source}: {where}[{i}] must be a token id (a non-negative integer)")).ToArray()
            : throw new IrrException($"{source}: {where} must be a list of token ids");
        switch (root[key])
        {
            case null:
                return null;
            case JsonObject o:
                return o.ToDictionary(kv => kv.Key, kv => List(kv.Value, $"{key}['{Shown(kv.Key)}']"), StringComparer.Ordinal);
            default:
                var ids = List(root[key], key);
                return (targets is { Length: > 0 } ? targets : ["embed_tokens"]).ToDictionary(t => t, _ => ids, StringComparer.Ordinal);
        }
    }
}

/// <summary>
/// One adapted layer: a linear layer's <c>lora_A</c> (r × in) and <c>lora_B</c> (out × r), or an embedding's
/// <c>lora_embedding_A</c> (r × num_embeddings) and <c>lora_embedding_B</c> (embedding_dim × r).
/// </summary>
/// <param name="BaseWeight">The weight it adapts, e.g. model.layers.3.self_attn.q_proj.weight.</param>
/// <param name="A">lora_A (lora_embedding_A).</param>
/// <param name="B">lora_B (lora_embedding_B).</param>
public sealed record LoraPair(string BaseWeight, TensorEntry A, TensorEntry B)
{
    /// <summary>The pair's rank.</summary>
    public int Rank => (int)A.Shape[0];

    /// <summary>The merge scale of this layer: α/r (α/√r with rsLoRA), with rank_pattern and alpha_pattern applied.</summary>
    public double Scale { get; init; }

    /// <summary>An embedding's LoRA (PEFT's lora.Embedding): ΔW = scale·(B·A)ᵀ, [num_embeddings, embedding_dim].</summary>
    public bool Embedding { get; init; }
}

/// <summary>Rows of an embedding (or head) an adapter replaces: PEFT's trainable tokens.</summary>
/// <param name="BaseWeight">The weight, e.g. model.embed_tokens.weight.</param>
/// <param name="Delta">The <c>trainable_tokens_delta</c> tensor: one row per index, [count, hidden].</param>
/// <param name="Indices">The token ids whose rows it replaces, in the delta's row order.</param>
public sealed record TrainableTokens(string BaseWeight, TensorEntry Delta, IReadOnlyList<int> Indices);

/// <summary>
/// A PEFT adapter directory: <c>adapter_config.json</c> and <c>adapter_model.safetensors</c> (or, as PEFT
/// falls back to it, <c>adapter_model.bin</c>, read safely by <see cref="TorchFile"/>) with keys like <c>base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight</c>.
/// Merging, as PEFT's <c>merge_and_unload</c> does, in float32: a full tensor saved by <c>modules_to_save</c>,
/// <c>bias="all"</c> or PEFT's embedding saving (<c>….base_layer.weight</c>) replaces the base one; then
/// <c>ΔW = scale·B·A</c> is added (scale = α/r, or α/√r with rsLoRA; per module with rank_pattern/alpha_pattern;
/// <c>scale·(B·A)ᵀ</c> for an embedding); then trainable-token rows (<c>trainable_tokens_delta</c>) are written at
/// their indices. How a tied head follows is decided by <see cref="HeadFollowsEmbedding"/> (docs/formats.md).
/// </summary>
public sealed class LoraAdapter : IDisposable
{
    /// <summary>The config file name.</summary>
    public const string ConfigFile = "adapter_config.json";

    /// <summary>The weights file name.</summary>
    public const string WeightsFile = "adapter_model.safetensors";

    /// <summary>The PyTorch weights file name (older PEFT versions, or <c>safe_serialization=False</c>).</summary>
    public const string TorchWeightsFile = "adapter_model.bin";

    /// <summary>The input embedding of the supported architectures.</summary>
    public const string EmbedWeight = "model.embed_tokens.weight";

    /// <summary>The output head of the supported architectures.</summary>
    public const string HeadWeight = "lm_head.weight";

    private const string Prefix = "base_model.model.";

    private readonly Dictionary<string, LoraPair> pairs;
    private readonly Dictionary<string, LoraPair> embeddingPairs;
    private readonly Dictionary<string, TensorEntry> replacements;
    private readonly Dictionary<string, TrainableTokens> tokens;

    private LoraAdapter(string path, LoraConfig config, ITensorFile file, Tensors read, List<string> warnings)
    {
        Path = path;
        Config = config;
        File = file;
        pairs = read.Pairs;
        embeddingPairs = read.EmbeddingPairs;
        replacements = read.Replacements;
        tokens = read.Tokens;
        Warnings = warnings;
    }

    /// <summary>The directory, as given.</summary>
    public string Path { get; }

    /// <summary>The parsed adapter_config.json.</summary>
    public LoraConfig Config { get; }

    /// <summary>adapter_model.safetensors (or adapter_model.bin).</summary>
    public ITensorFile File { get; }

    /// <summary>The adapted linear layers, by base weight name.</summary>
    public IReadOnlyDictionary<string, LoraPair> Pairs => pairs;

    /// <summary>The adapted embeddings (LoRA on embed_tokens), by base weight name.</summary>
    public IReadOnlyDictionary<string, LoraPair> EmbeddingPairs => embeddingPairs;

    /// <summary>Base tensors the adapter replaces whole (modules_to_save, bias="all", saved embedding layers), by name.</summary>
    public IReadOnlyDictionary<string, TensorEntry> Replacements => replacements;

    /// <summary>Rows the adapter replaces (trainable tokens), by base weight name.</summary>
    public IReadOnlyDictionary<string, TrainableTokens> Tokens => tokens;

    /// <summary>Things a user should know that do not stop the merge; each is also given to <see cref="Diagnostics.Warn"/> when the adapter is opened.</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>Trainable parameters in the adapter file.</summary>
    public long ParameterCount => File.Tensors.Sum(t => t.ElementCount);

    /// <summary>Whether the adapter changes the base tensor <paramref name="name"/> in any way.</summary>
    public bool Adapts(string name) =>
        pairs.ContainsKey(name) || embeddingPairs.ContainsKey(name) || replacements.ContainsKey(name) || tokens.ContainsKey(name);

    /// <summary>
    /// On a base whose head is tied to its embedding, whether the head keeps following the adapted embedding, as PEFT
    /// computes it: yes with <c>ensure_weight_tying</c>, and for trainable tokens on the embedding (PEFT ties the head's
    /// token adapter to the embedding's unless a dict gives the two different indices); otherwise (PEFT's default for
    /// <c>modules_to_save</c> and LoRA on embed_tokens, huggingface/peft#2777) the head keeps the original embedding
    /// with only the adapter's own lm_head changes applied, and the merged model is untied.
    /// </summary>
    public bool HeadFollowsEmbedding =>
        Config.EnsureWeightTying ||
        (tokens.ContainsKey(EmbedWeight) && !pairs.ContainsKey(HeadWeight) && !replacements.ContainsKey(HeadWeight)
         && (!tokens.TryGetValue(HeadWeight, out var head) || head.Indices.SequenceEqual(tokens[EmbedWeight].Indices)));

    /// <summary>Opens an adapter directory and checks its tensors.</summary>
    public static LoraAdapter Open(string path)
    {
        if (!Directory.Exists(path)) throw new IrrException($"{path}: no such directory");
        string configPath = System.IO.Path.Combine(path, ConfigFile);
        if (!System.IO.File.Exists(configPath))
            throw new IrrException($"{path}: no {ConfigFile} (not a PEFT adapter directory)");
        var config = LoraConfig.Parse(JsonFiles.ReadText(configPath), configPath);
        // PEFT (utils/save_and_load.load_peft_weights): adapter_model.safetensors, else adapter_model.bin.
        string weightsPath = System.IO.Path.Combine(path, WeightsFile), torchPath = System.IO.Path.Combine(path, TorchWeightsFile);
        var warnings = new List<string>();
        bool torch = false;
        if (!System.IO.File.Exists(weightsPath))
        {
            if (!System.IO.File.Exists(torchPath)) throw new IrrException($"{path}: no {WeightsFile} or {TorchWeightsFile}");
            (weightsPath, torch) = (torchPath, true);
        }
        else if (System.IO.File.Exists(torchPath))
        {
            warnings.Add($"{path}: holds both {WeightsFile} and {TorchWeightsFile}; loading {WeightsFile}, as PEFT does");
            Diagnostics.Warn(warnings[^1]);
        }
        ITensorFile file = torch ? TorchFile.Open(weightsPath) : SafetensorsFile.Open(weightsPath);
        try
        {
            foreach (string note in config.Notes)
            {
                warnings.Add(note);
                Diagnostics.Warn(note);
            }
            var read = ReadTensors(weightsPath, file, config);
            return new LoraAdapter(path, config, file, read, warnings);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The vocabulary size of the adapted model: the base's, or the row count of the adapter's full
    /// <c>embed_tokens</c>/<c>lm_head</c> copies when they have other rows (a vocabulary resized for added tokens, as
    /// LlamaFactory's <c>resize_vocab</c> with <c>additional_target</c> saves it).
    /// </summary>
    public int VocabularyOver(ModelDirectory baseModel)
    {
        foreach (string name in new[] { EmbedWeight, HeadWeight })
            if (replacements.TryGetValue(name, out var full) && full.Shape.Count == 2 && full.Shape[0] != baseModel.Config.VocabSize)
                return checked((int)full.Shape[0]);
        return baseModel.Config.VocabSize;
    }

    /// <summary>
    /// The header of the tensor the adapter's changes of <paramref name="name"/> start from: the adapter's own full copy
    /// when it resizes the vocabulary, else the base's tensor (for the head of a tied base, its embedding); null when the
    /// base has neither.
    /// </summary>
    public TensorEntry? BaseOf(ModelDirectory baseModel, string name)
    {
        if (name is EmbedWeight or HeadWeight && replacements.TryGetValue(name, out var full) && full.Shape.Count == 2 && full.Shape[0] != baseModel.Config.VocabSize)
            return full;
        bool tied = baseModel.Config.TieWordEmbeddings;
        if (tied && name == HeadWeight) return baseModel.Contains(EmbedWeight) ? baseModel.Info(EmbedWeight) : null;
        return baseModel.Contains(name) ? baseModel.Info(name) : null;
    }

    /// <summary>
    /// Checks the adapter against <paramref name="baseModel"/> before any work: every tensor it adapts exists (a tied
    /// base's lm_head is its embedding) and has the shape the adapter's tensors need; trainable-token indices are rows of
    /// the tensor; under ensure_weight_tying, lm_head tensors of the adapter equal its embed_tokens ones; a resized
    /// vocabulary is carried by full copies of every tensor that has one row per token.
    /// </summary>
    /// <exception cref="IrrException">The first misfit; the message names the adapter file, the tensor and the shapes.</exception>
    public void RequireBase(ModelDirectory baseModel)
    {
        bool tied = baseModel.Config.TieWordEmbeddings;
        foreach (string name in pairs.Keys.Concat(embeddingPairs.Keys).Concat(replacements.Keys).Concat(tokens.Keys).Distinct().Order(StringComparer.Ordinal))
        {
            var info = BaseOf(baseModel, name) ?? throw new IrrException($"{File.Path}: the adapter adapts '{name}', which {baseModel.Path} does not have{OtherFamily(name, baseModel.Config)}");
            if (replacements.TryGetValue(name, out var full) && !full.Shape.SequenceEqual(info.Shape))
                throw new IrrException($"{File.Path}: '{full.Name}' is {full.ShapeText} but {name} is {info.ShapeText} in {baseModel.Path}");
            if (pairs.TryGetValue(name, out var pair)) RequireFits(pair, info);
            if (embeddingPairs.TryGetValue(name, out var emb)) RequireFits(emb, info);
            if (tokens.TryGetValue(name, out var t))
            {
                if (info.Shape.Count != 2 || t.Delta.Shape[1] != info.Shape[1])
                    throw new IrrException($"{File.Path}: '{t.Delta.Name}' is {t.Delta.ShapeText}, which does not fit {name} {info.ShapeText} in {baseModel.Path}");
                if (t.Indices.FirstOrDefault(i => i >= info.Shape[0], -1) is var bad and >= 0)
                    throw new IrrException($"{File.Path}: trainable token index {bad} is beyond the {info.Shape[0]} rows of {name} in {baseModel.Path}");
            }
        }
        int vocabulary = VocabularyOver(baseModel);
        if (vocabulary != baseModel.Config.VocabSize)
        {
            // Rows of added tokens exist only in the adapter's full copies: each tensor with one row per token needs one.
            var resized = replacements[replacements.ContainsKey(EmbedWeight) ? EmbedWeight : HeadWeight];
            var perToken = tied && HeadFollowsEmbedding ? new[] { EmbedWeight } : [EmbedWeight, HeadWeight];
            foreach (string name in perToken)
            {
                var info = BaseOf(baseModel, name)!;
                if (info.Shape.Count != 2 || info.Shape[0] != vocabulary || info.Shape[1] != baseModel.Config.HiddenSize)
                    throw new IrrException($"{File.Path}: '{resized.Name}' is {resized.ShapeText}, a vocabulary resized from the base's {baseModel.Config.VocabSize} tokens, " +
                                           $"but the adapter has no full {name} of that shape (the base's is {info.ShapeText}); irr does not resize embeddings itself");
            }
        }
        if (tied && Config.EnsureWeightTying && Adapts(HeadWeight) && !HeadIsTiedCopy())
            throw new IrrException($"{File.Path}: ensure_weight_tying is true, so PEFT ties lm_head to the adapted embed_tokens, but the adapter changes lm_head.weight otherwise");
    }

    // A linear module of another family (q_proj on Phi-3, whose attention is one qkv_proj): the base's modules, said.
    private static string OtherFamily(string name, ModelConfig config) =>
        name.Split('.') is [.., var module, "weight"] && ModelConfig.KnownLinearModules.Contains(module) && !config.LinearModules.Contains(module)
            ? $" ({module} is not a linear module of {config.ModelType}; its modules: {string.Join(", ", config.LinearModules)})" : "";

    // Under ensure_weight_tying PEFT saves lm_head's tied adapters too: a modules_to_save copy equal to the embedding's,
    // LoRA factors that are the embedding's transposed (lora_A = lora_embedding_Bᵀ, lora_B = lora_embedding_Aᵀ), token rows
    // equal to the embedding's. They are the embedding's change seen from the head, not a change of their own.
    private bool HeadIsTiedCopy()
    {
        static bool Same(float[] x, float[] y) => x.AsSpan().SequenceEqual(y);
        static float[] Transposed(float[] x, int rows, int cols)
        {
            var t = new float[x.Length];
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++) t[j * rows + i] = x[i * cols + j];
            return t;
        }
        if (replacements.TryGetValue(HeadWeight, out var head)
            && !(replacements.TryGetValue(EmbedWeight, out var embed) && Same(File.ReadSingle(head.Name), File.ReadSingle(embed.Name))))
            return false;
        if (pairs.TryGetValue(HeadWeight, out var pair))
        {
            if (!embeddingPairs.TryGetValue(EmbedWeight, out var e) || !pair.A.Shape.SequenceEqual([e.B.Shape[1], e.B.Shape[0]]) || !pair.B.Shape.SequenceEqual([e.A.Shape[1], e.A.Shape[0]]))
                return false;
            if (!Same(File.ReadSingle(pair.A.Name), Transposed(File.ReadSingle(e.B.Name), (int)e.B.Shape[0], (int)e.B.Shape[1]))
                || !Same(File.ReadSingle(pair.B.Name), Transposed(File.ReadSingle(e.A.Name), (int)e.A.Shape[0], (int)e.A.Shape[1])))
                return false;
        }
        if (tokens.TryGetValue(HeadWeight, out var t)
            && !(tokens.TryGetValue(EmbedWeight, out var te) && t.Indices.SequenceEqual(te.Indices) && Same(File.ReadSingle(t.Delta.Name), File.ReadSingle(te.Delta.Name))))
            return false;
        return !embeddingPairs.ContainsKey(HeadWeight);
    }

    /// <summary>
    /// The base tensor <paramref name="name"/> with the adapter applied, in float32: a full
    /// replacement if the adapter has one, plus <c>scale·B·A</c> if the adapter
    /// targets it, with trainable-token rows written. Not rounded to the storage dtype (IRR-SPEC).
    /// </summary>
    public float[] ReadMerged(ModelDirectory baseModel, string name)
    {
        var baseInfo = baseModel.Info(name);
        var weight = new float[baseInfo.ElementCount];
        Apply(name, baseModel, baseInfo, weight);
        return weight;
    }

    /// <summary>
    /// Fills <paramref name="weight"/> with the adapted tensor <paramref name="name"/>: the adapter's replacement of it,
    /// else the base tensor <paramref name="baseInfo"/> of <paramref name="baseModel"/> (for a tied head, the embedding);
    /// then adds its LoRA delta and writes its trainable-token rows.
    /// </summary>
    public void Apply(string name, ModelDirectory baseModel, TensorEntry baseInfo, Span<float> weight) =>
        ApplyRows(name, baseModel, baseInfo, 0, (int)baseInfo.Rows, weight);

    /// <summary>Rows [<paramref name="first"/>, first + <paramref name="count"/>) of <see cref="Apply"/>'s result, computed for those rows only.</summary>
    public void ApplyRows(string name, ModelDirectory baseModel, TensorEntry baseInfo, int first, int count, Span<float> destination)
    {
        if (replacements.TryGetValue(name, out var full))
        {
            if (!full.Shape.SequenceEqual(baseInfo.Shape))
                throw new IrrException($"{File.Path}: '{full.Name}' is {full.ShapeText} but {name} is {baseInfo.ShapeText} in {baseModel.Path}");
            File.ReadRowsSingle(full, first, count, destination);
        }
        else
        {
            baseModel.Locate(baseInfo.Name).File.ReadRowsSingle(baseInfo, first, count, destination);
        }
        if (pairs.TryGetValue(name, out var pair) || embeddingPairs.TryGetValue(name, out pair))
            AddDeltaRows(pair, baseInfo, first, count, destination);
        if (tokens.TryGetValue(name, out var t))
        {
            int width = (int)baseInfo.Shape[1];
            float[]? rows = null;
            for (int i = 0; i < t.Indices.Count; i++)
            {
                int row = t.Indices[i] - first;
                if (row < 0 || row >= count) continue;
                rows ??= File.ReadSingle(t.Delta.Name);
                rows.AsSpan(i * width, width).CopyTo(destination.Slice(row * width, width));
            }
        }
    }

    /// <summary>B·A has the base weight's shape <c>[out, in]</c> (an embedding's (B·A)ᵀ <c>[num_embeddings, dim]</c>); an error naming the adapter and the weight when not.</summary>
    public void RequireFits(LoraPair pair, TensorEntry baseInfo)
    {
        long rows = pair.Embedding ? pair.A.Shape[1] : pair.B.Shape[0], cols = pair.Embedding ? pair.B.Shape[0] : pair.A.Shape[1];
        if (baseInfo.Shape.Count != 2 || rows != baseInfo.Shape[0] || cols != baseInfo.Shape[1])
            throw new IrrException($"{File.Path}: LoRA for '{pair.BaseWeight}' is B {pair.B.ShapeText} · A {pair.A.ShapeText}, which does not fit the base weight {baseInfo.ShapeText}");
    }

    /// <summary>
    /// <c>W (out×in) += scale · B (out×r) · A (r×in)</c>, or for an embedding <c>W (V×h) += scale · Aᵀ (V×r) · Bᵀ (r×h)</c>
    /// (PEFT's lora.Embedding), checking the shapes against the base weight. <paramref name="weight"/> holds the whole tensor.
    /// </summary>
    public void AddDelta(LoraPair pair, Span<float> weight, TensorEntry baseInfo) => AddDeltaRows(pair, baseInfo, 0, (int)baseInfo.Rows, weight);

    // Rows [first, first + count) of the delta added to destination (those rows of W).
    private void AddDeltaRows(LoraPair pair, TensorEntry baseInfo, int first, int count, Span<float> destination)
    {
        RequireFits(pair, baseInfo);
        int rows = (int)baseInfo.Shape[0], cols = (int)baseInfo.Shape[1], r = pair.Rank;
        var a = File.ReadSingle(pair.A.Name);
        var b = File.ReadSingle(pair.B.Name);
        if (pair.Embedding) // rows of Aᵀ (V×r) · Bᵀ (r×h): columns first… of A
            Gemm.Compute(Transpose.Yes, Transpose.Yes, count, cols, r, (float)pair.Scale, a.AsSpan(first), rows, b, r, 1f, destination, cols);
        else // rows of B (out×r) · A (r×in)
            Gemm.Compute(Transpose.No, Transpose.No, count, cols, r, (float)pair.Scale, b.AsSpan(first * r), r, a, cols, 1f, destination, cols);
    }

    /// <summary>
    /// Writes an adapter in PEFT's format: adapter_config.json and adapter_model.safetensors with
    /// <c>base_model.model.{module}.lora_A.weight</c> (r × in) and <c>lora_B.weight</c> (out × r), and the model card when given.
    /// </summary>
    public static void Write(string directory, LoraConfig config, IReadOnlyList<(string BaseWeight, float[] A, float[] B, int Out, int In)> layers,
        TensorDType dtype, IEnumerable<string> inputs, bool overwrite = false, ModelCard? card = null)
    {
        using var output = OutputDirectory.Create(directory, inputs, overwrite);
        var specs = new List<TensorSpec>();
        foreach (var (baseWeight, a, b, outDim, inDim) in layers)
        {
            if (!baseWeight.EndsWith(".weight", StringComparison.Ordinal))
                throw new ArgumentException($"'{baseWeight}' is not a weight name.", nameof(layers));
            if (a.Length != (long)config.R * inDim || b.Length != (long)outDim * config.R)
                throw new ArgumentException($"LoRA for '{baseWeight}': A must be {config.R}×{inDim} and B {outDim}×{config.R}.", nameof(layers));
            string module = Prefix + baseWeight[..^".weight".Length];
            specs.Add(new TensorSpec(module + ".lora_A.weight", dtype, [config.R, inDim]));
            specs.Add(new TensorSpec(module + ".lora_B.weight", dtype, [outDim, config.R]));
        }
        using (var writer = CheckpointWriter.Create(output, specs, new CheckpointWriterOptions { FilePrefix = "adapter_model", MaxShardBytes = long.MaxValue }))
        {
            int i = 0;
            foreach (var layer in layers)
            {
                writer.Write(specs[i++].Name, layer.A);
                writer.Write(specs[i++].Name, layer.B);
            }
            writer.Complete();
        }
        JsonFiles.WriteFile(output.PathOf(ConfigFile), config.Json);
        card?.Write(output.PathOf(ModelCard.FileName));
        output.Commit();
    }

    /// <summary>Releases the weights file.</summary>
    public void Dispose() => File.Dispose();

    private sealed record Tensors(Dictionary<string, LoraPair> Pairs, Dictionary<string, LoraPair> EmbeddingPairs,
        Dictionary<string, TensorEntry> Replacements, Dictionary<string, TrainableTokens> Tokens);

    private static Tensors ReadTensors(string path, ITensorFile file, LoraConfig config)
    {
        var factors = new Dictionary<string, TensorEntry>(StringComparer.Ordinal); // "{weight}|A", "|B", "|eA", "|eB"
        var replacements = new Dictionary<string, TensorEntry>(StringComparer.Ordinal);
        var tokens = new Dictionary<string, TrainableTokens>(StringComparer.Ordinal);
        foreach (var t in file.Tensors)
        {
            if (!t.Name.StartsWith(Prefix, StringComparison.Ordinal))
                throw new IrrException($"{path}: tensor '{t.Name}' does not start with '{Prefix}' (not a PEFT causal-LM adapter)");
            if (!t.DType.IsFloatingSupported())
                throw new IrrException($"{path}: tensor '{t.Name}': unsupported dtype {t.DType}");
            string key = t.Name[Prefix.Length..];
            if (Factor(key) is var (weight, kind))
                factors[weight + "|" + kind] = t;
            else if (key.EndsWith(".trainable_tokens_delta", StringComparison.Ordinal))
                tokens.Add(TokenWeight(key), ReadTokens(path, t, key, config));
            else if (key.Contains(".lora_", StringComparison.Ordinal) || key.Contains("lora_magnitude_vector", StringComparison.Ordinal))
                throw new IrrException($"{path}: tensor '{t.Name}' is not supported (irr merges lora_A/lora_B, lora_embedding_A/B, modules_to_save and trainable tokens; LoRA biases and DoRA are not supported)");
            else
                replacements[key.Replace(".base_layer.", ".", StringComparison.Ordinal)] = t; // modules_to_save, bias="all", saved embedding layers
        }
        var pairs = new Dictionary<string, LoraPair>(StringComparer.Ordinal);
        var embeddingPairs = new Dictionary<string, LoraPair>(StringComparer.Ordinal);
        foreach (var (k, ta) in factors.Where(kv => kv.Key.EndsWith("|A", StringComparison.Ordinal) || kv.Key.EndsWith("|eA", StringComparison.Ordinal)))
        {
            bool embedding = k.EndsWith("|eA", StringComparison.Ordinal);
            string weight = k[..k.LastIndexOf('|')];
            if (!factors.TryGetValue(weight + (embedding ? "|eB" : "|B"), out var tb))
                throw new IrrException($"{path}: '{ta.Name}' has no matching {(embedding ? "lora_embedding_B" : "lora_B")}");
            if (ta.Shape.Count != 2 || tb.Shape.Count != 2 || ta.Shape[0] != tb.Shape[1])
                throw new IrrException($"{path}: LoRA for '{weight}': A {ta.ShapeText} and B {tb.ShapeText} do not share a rank");
            string module = weight[..^".weight".Length];
            int rank = config.RankOf(module);
            if (ta.Shape[0] != rank)
                throw new IrrException($"{path}: LoRA for '{weight}' has rank {ta.Shape[0]} but adapter_config.json says r = {rank}{(config.RankPattern.Count > 0 ? " (rank_pattern applied)" : "")}");
            RequireLayer(path, config, ta, weight);
            (embedding ? embeddingPairs : pairs)[weight] = new LoraPair(weight, ta, tb) { Scale = config.ScaleOf(module), Embedding = embedding };
        }
        foreach (var (k, tb) in factors.Where(kv => kv.Key.EndsWith("|B", StringComparison.Ordinal) || kv.Key.EndsWith("|eB", StringComparison.Ordinal)))
        {
            bool embedding = k.EndsWith("|eB", StringComparison.Ordinal);
            if (!factors.ContainsKey(k[..k.LastIndexOf('|')] + (embedding ? "|eA" : "|A")))
                throw new IrrException($"{path}: '{tb.Name}' has no matching {(embedding ? "lora_embedding_A" : "lora_A")}");
        }
        foreach (var (weight, t) in replacements) RequireLayer(path, config, t, weight);
        if (config.TrainableTokenIndices is { } wanted && tokens.Count == 0)
            throw new IrrException($"{path}: adapter_config.json sets {(config.PeftType == "TRAINABLE_TOKENS" ? "token_indices" : "trainable_token_indices")} but the file has no trainable_tokens_delta tensor");
        return new Tensors(pairs, embeddingPairs, replacements, tokens);
    }

    // "model.layers.0.self_attn.q_proj.lora_A.weight" → (q_proj's weight, "A"); lora_embedding_A (no ".weight" suffix) → "eA".
    private static (string Weight, string Kind)? Factor(string key)
    {
        foreach (var (suffix, kind) in new[] { (".lora_A.weight", "A"), (".lora_B.weight", "B"), (".lora_embedding_A", "eA"), (".lora_embedding_B", "eB") })
            if (key.EndsWith(suffix, StringComparison.Ordinal))
                return (key[..^suffix.Length] + ".weight", kind);
        return null;
    }

    // "model.embed_tokens.token_adapter.trainable_tokens_delta" (LoRA's trainable_token_indices) or
    // "model.embed_tokens.trainable_tokens_delta" (a TRAINABLE_TOKENS adapter) → model.embed_tokens.weight.
    private static string TokenWeight(string key)
    {
        string module = key[..^".trainable_tokens_delta".Length];
        if (module.EndsWith(".token_adapter", StringComparison.Ordinal)) module = module[..^".token_adapter".Length];
        return module + ".weight";
    }

    private static TrainableTokens ReadTokens(string path, TensorEntry t, string key, LoraConfig config)
    {
        string weight = TokenWeight(key), module = weight[..^".weight".Length];
        var indices = config.TrainableTokenIndices?.Where(kv => module == kv.Key || module.EndsWith("." + kv.Key, StringComparison.Ordinal)).Select(kv => kv.Value).FirstOrDefault()
            ?? throw new IrrException($"{path}: tensor '{t.Name}' holds trainable tokens, but adapter_config.json gives no token indices for '{module}'");
        if (t.Shape.Count != 2 || t.Shape[0] != indices.Length)
            throw new IrrException($"{path}: tensor '{t.Name}' is {t.ShapeText}, but adapter_config.json gives {indices.Length} token indices for '{module}'");
        if (indices.Distinct().Count() != indices.Length)
            throw new IrrException($"{path}: the token indices for '{module}' repeat a token");
        return new TrainableTokens(weight, t, indices);
    }

    // With layers_to_transform, PEFT adapts only those decoder layers: a tensor of another layer contradicts the config.
    private static void RequireLayer(string path, LoraConfig config, TensorEntry t, string weight)
    {
        if (config.LayersToTransform is not { } layers || !weight.StartsWith("model.layers.", StringComparison.Ordinal)) return;
        string rest = weight["model.layers.".Length..];
        if (int.TryParse(rest[..Math.Max(rest.IndexOf('.'), 0)], out int layer) && !layers.Contains(layer))
            throw new IrrException($"{path}: tensor '{t.Name}' adapts layer {layer}, but layers_to_transform is [{string.Join(", ", layers)}]");
    }
}
