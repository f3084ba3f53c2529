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

    /// <summary>The merge scale: α/r, or α/√r with rsLoRA.</summary>
    public double Scale => UseRslora ? LoraAlpha / Math.Sqrt(R) : LoraAlpha / R;

    /// <summary>A config for a new adapter, as PEFT would write it.</summary>
    public static LoraConfig Create(int r, double alpha, IReadOnlyList<string> targetModules, string? baseModel, bool useRslora = false)
    {
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
            ["init_lora_weights"] = true,
            ["rank_pattern"] = new JsonObject(),
            ["alpha_pattern"] = new JsonObject(),
        };
        return new LoraConfig { R = r, LoraAlpha = alpha, TargetModules = targetModules, UseRslora = useRslora, BaseModelNameOrPath = baseModel, Json = json };
    }

    /// <summary>Parses adapter_config.json text; <paramref name="source"/> names it in errors.</summary>
    public static LoraConfig Parse(string text, string source)
    {
        var root = JsonFiles.ParseObject(text, source);
        var r = new JsonConfig(root, source);
        string peftType = r.String("peft_type") ?? "LORA";
        if (peftType != "LORA")
            throw new IrrException($"{source}: peft_type '{peftType}' is not supported (irr merges LoRA adapters)");
        if (r.Bool("use_dora") == true)
            throw new IrrException($"{source}: use_dora is true; DoRA adapters are not supported");
        foreach (string key in new[] { "rank_pattern", "alpha_pattern" })
            if (root[key] is JsonObject { Count: > 0 })
                throw new IrrException($"{source}: {key} is not empty; per-module ranks and alphas are not supported");
        if (root["layers_to_transform"] is JsonNode and not null)
            throw new IrrException($"{source}: layers_to_transform is set; adapters restricted to some layers are not supported");

        int rank = r.RequiredInt("r");
        if (rank <= 0) throw new IrrException($"{source}: r must be positive, not {rank}");
        var targets = root["target_modules"] switch
        {
            JsonArray a => a.Select((x, i) => x is JsonValue v && v.TryGetValue(out string? s) ? s : throw new IrrException($"{source}: target_modules[{i}] is not a string")).ToArray(),
            _ => [],
        };
        return new LoraConfig
        {
            R = rank,
            LoraAlpha = r.Double("lora_alpha") ?? 8,
            TargetModules = targets,
            TargetModulesRegex = r.Node("target_modules") is JsonValue ? r.String("target_modules") : null,
            UseRslora = r.Bool("use_rslora") ?? false,
            FanInFanOut = r.Bool("fan_in_fan_out") ?? false,
            Bias = r.String("bias") ?? "none",
            BaseModelNameOrPath = r.String("base_model_name_or_path"),
            Json = root,
        };
    }
}

/// <summary>One adapted linear layer: the tensors <c>lora_A</c> (r × in) and <c>lora_B</c> (out × r).</summary>
/// <param name="BaseWeight">The weight it adapts, e.g. model.layers.3.self_attn.q_proj.weight.</param>
/// <param name="A">lora_A.</param>
/// <param name="B">lora_B.</param>
public sealed record LoraPair(string BaseWeight, TensorEntry A, TensorEntry B)
{
    /// <summary>The pair's rank.</summary>
    public int Rank => (int)A.Shape[0];
}

/// <summary>
/// A PEFT LoRA adapter directory: <c>adapter_config.json</c> and <c>adapter_model.safetensors</c> (or, as PEFT
/// falls back to it, <c>adapter_model.bin</c>, read safely by <see cref="TorchFile"/>) with keys like <c>base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight</c>.
/// Merging adds <c>ΔW = scale·B·A</c> to the base weight in float32 (scale = α/r, or α/√r with
/// rsLoRA). Full tensors saved by <c>modules_to_save</c> or <c>bias="all"</c> replace the base ones.
/// </summary>
public sealed class LoraAdapter : IDisposable
{
    /// <summary>The config file name.</summary>
    public const string ConfigFile = "adapter_config.json";

    /// <summary>The weights file name.</summary>
    public const string WeightsFile = "adapter_model.safetensors";

    /// <summary>The PyTorch weights file name (older PEFT versions, or <c>safe_serialization=False</c>).</summary>
    public const string TorchWeightsFile = "adapter_model.bin";

    private const string Prefix = "base_model.model.";

    private readonly Dictionary<string, LoraPair> pairs;
    private readonly Dictionary<string, TensorEntry> replacements;

    private LoraAdapter(string path, LoraConfig config, ITensorFile file, Dictionary<string, LoraPair> pairs, Dictionary<string, TensorEntry> replacements, List<string> warnings)
    {
        Path = path;
        Config = config;
        File = file;
        this.pairs = pairs;
        this.replacements = replacements;
        Warnings = warnings;
    }

    /// <summary>The directory, as given.</summary>
    public string Path { get; }

    /// <summary>The parsed adapter_config.json.</summary>
    public LoraConfig Config { get; }

    /// <summary>adapter_model.safetensors (or adapter_model.bin).</summary>
    public ITensorFile File { get; }

    /// <summary>The adapted layers, by base weight name.</summary>
    public IReadOnlyDictionary<string, LoraPair> Pairs => pairs;

    /// <summary>Base tensors the adapter replaces whole (modules_to_save, bias="all"), by name.</summary>
    public IReadOnlyDictionary<string, TensorEntry> Replacements => replacements;

    /// <summary>Things a user should know that do not stop the merge; each is also given to <see cref="Diagnostics.Warn"/> when the adapter is opened.</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>Trainable parameters in the adapter file.</summary>
    public long ParameterCount => File.Tensors.Sum(t => t.ElementCount);

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
            if (config.FanInFanOut)
            {
                warnings.Add($"{configPath}: fan_in_fan_out is true, which is for GPT-2 Conv1D layers; Llama-family layers are Linear, so it is ignored (as PEFT does)");
                Diagnostics.Warn(warnings[^1]);
            }
            var (pairs, replacements) = ReadTensors(weightsPath, file, config);
            return new LoraAdapter(path, config, file, pairs, replacements, warnings);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Checks that <paramref name="baseModel"/> has every tensor the adapter adapts or replaces (not an adapter of a larger model).</summary>
    /// <exception cref="IrrException">A tensor is missing; the message names it, the adapter file and the model.</exception>
    public void RequireBase(ModelDirectory baseModel)
    {
        foreach (string name in pairs.Keys.Concat(replacements.Keys).Order(StringComparer.Ordinal))
            if (!baseModel.Contains(name))
                throw new IrrException($"{File.Path}: the adapter adapts '{name}', which {baseModel.Path} does not have");
    }

    /// <summary>
    /// The base tensor <paramref name="name"/> with the adapter applied, in float32: a full
    /// replacement if the adapter has one, else the base plus <c>scale·B·A</c> if the adapter
    /// targets it, else the base unchanged. Not rounded to the storage dtype (IRR-SPEC).
    /// </summary>
    public float[] ReadMerged(ModelDirectory baseModel, string name)
    {
        var baseInfo = baseModel.Info(name);
        if (replacements.TryGetValue(name, out var full))
        {
            if (!full.Shape.SequenceEqual(baseInfo.Shape))
                throw new IrrException($"{File.Path}: '{full.Name}' is {full.ShapeText} but {name} is {baseInfo.ShapeText} in {baseModel.Path}");
            return File.ReadSingle(full.Name);
        }
        var weight = baseModel.ReadSingle(name);
        if (pairs.TryGetValue(name, out var pair)) AddDelta(pair, weight, baseInfo);
        return weight;
    }

    /// <summary>B·A has the base weight's shape <c>[out, in]</c>; an error naming the adapter and the weight when not.</summary>
    public void RequireFits(LoraPair pair, TensorEntry baseInfo)
    {
        if (baseInfo.Shape.Count != 2 || pair.B.Shape[0] != baseInfo.Shape[0] || pair.A.Shape[1] != baseInfo.Shape[1])
            throw new IrrException($"{File.Path}: LoRA for '{pair.BaseWeight}' is B {pair.B.ShapeText} · A {pair.A.ShapeText}, which does not fit the base weight {baseInfo.ShapeText}");
    }

    /// <summary><c>W (out×in) += scale · B (out×r) · A (r×in)</c>, checking the shapes against the base weight.</summary>
    public void AddDelta(LoraPair pair, Span<float> weight, TensorEntry baseInfo)
    {
        RequireFits(pair, baseInfo);
        int rows = (int)baseInfo.Shape[0], cols = (int)baseInfo.Shape[1], r = pair.Rank;
        var a = File.ReadSingle(pair.A.Name);
        var b = File.ReadSingle(pair.B.Name);
        Gemm.Compute(Transpose.No, Transpose.No, rows, cols, r, (float)Config.Scale, b, r, a, cols, 1f, weight, cols);
    }

    /// <summary>
    /// Writes an adapter in PEFT's format: adapter_config.json and adapter_model.safetensors with
    /// <c>base_model.model.{module}.lora_A.weight</c> (r × in) and <c>lora_B.weight</c> (out × r).
    /// </summary>
    public static void Write(string directory, LoraConfig config, IReadOnlyList<(string BaseWeight, float[] A, float[] B, int Out, int In)> layers,
        TensorDType dtype, IEnumerable<string> inputs, bool overwrite = false)
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
        output.Commit();
    }

    /// <summary>Releases the weights file.</summary>
    public void Dispose() => File.Dispose();

    private static (Dictionary<string, LoraPair>, Dictionary<string, TensorEntry>) ReadTensors(string path, ITensorFile file, LoraConfig config)
    {
        var a = new Dictionary<string, TensorEntry>(StringComparer.Ordinal);
        var b = new Dictionary<string, TensorEntry>(StringComparer.Ordinal);
        var replacements = new Dictionary<string, TensorEntry>(StringComparer.Ordinal);
        foreach (var t in file.Tensors)
        {
            if (!t.Name.StartsWith(Prefix, StringComparison.Ordinal))
                throw new IrrException($"{path}: tensor '{t.Name}' does not start with '{Prefix}' (not a PEFT causal-LM adapter)");
            if (!t.DType.IsFloatingSupported())
                throw new IrrException($"{path}: tensor '{t.Name}': unsupported dtype {t.DType}");
            string key = t.Name[Prefix.Length..];
            if (key.EndsWith(".lora_A.weight", StringComparison.Ordinal))
                a[key[..^".lora_A.weight".Length] + ".weight"] = t;
            else if (key.EndsWith(".lora_B.weight", StringComparison.Ordinal))
                b[key[..^".lora_B.weight".Length] + ".weight"] = t;
            else if (key.Contains(".lora_", StringComparison.Ordinal) || key.Contains("lora_magnitude_vector", StringComparison.Ordinal))
                throw new IrrException($"{path}: tensor '{t.Name}' is not supported (irr merges lora_A/lora_B weights; LoRA biases, DoRA and embedding adapters are not supported)");
            else
                replacements[key] = t; // modules_to_save or bias="all": a full tensor of the base model
        }
        var pairs = new Dictionary<string, LoraPair>(StringComparer.Ordinal);
        foreach (var (weight, ta) in a)
        {
            if (!b.TryGetValue(weight, out var tb))
                throw new IrrException($"{path}: '{ta.Name}' has no matching lora_B");
            if (ta.Shape.Count != 2 || tb.Shape.Count != 2 || ta.Shape[0] != tb.Shape[1])
                throw new IrrException($"{path}: LoRA for '{weight}': A {ta.ShapeText} and B {tb.ShapeText} do not share a rank");
            if (ta.Shape[0] != config.R)
                throw new IrrException($"{path}: LoRA for '{weight}' has rank {ta.Shape[0]} but adapter_config.json says r = {config.R}");
            pairs[weight] = new LoraPair(weight, ta, tb);
        }
        foreach (var weight in b.Keys.Where(w => !a.ContainsKey(w)))
            throw new IrrException($"{path}: '{b[weight].Name}' has no matching lora_A");
        return (pairs, replacements);
    }
}
