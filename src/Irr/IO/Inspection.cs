using System.Globalization;
using System.Text.Json.Nodes;

namespace Irr.IO;

/// <summary>
/// What a model directory, a PEFT adapter directory, a .safetensors file or a PyTorch state dict holds, as one JSON
/// description (<c>irr inspect</c> prints it as JSON or as aligned text): kind, architecture, parameters, dtypes, shards,
/// and optionally every tensor.
/// </summary>
public static class Inspection
{
    /// <summary>The description of whatever is at <paramref name="path"/>.</summary>
    /// <param name="path">A model or adapter directory, or a tensor file.</param>
    /// <param name="listTensors">Whether to list every tensor (name, dtype, shape).</param>
    /// <param name="check">Whether to check a model's tensors against its config.json.</param>
    /// <exception cref="IrrException">Nothing is at the path, or what is there cannot be read.</exception>
    public static JsonObject Describe(string path, bool listTensors, bool check)
    {
        if (File.Exists(path))
        {
            using var file = TensorFiles.Open(path);
            if (file is TorchFile torch)
            {
                var t = new JsonObject { ["kind"] = "pytorch", ["path"] = path, ["format"] = torch.Format == TorchFormat.Zip ? "zip" : "legacy" };
                AddTensorSummary(t, file.Tensors, [(file, Path.GetFileName(path))], listTensors);
                return t;
            }
            var safetensors = (SafetensorsFile)file;
            var o = new JsonObject { ["kind"] = "safetensors", ["path"] = path };
            AddTensorSummary(o, file.Tensors, [(file, Path.GetFileName(path))], listTensors);
            o["metadata"] = new JsonObject(safetensors.Metadata.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value)));
            return o;
        }
        if (!Directory.Exists(path)) throw new IrrException($"{path}: no such file or directory");
        var described = File.Exists(Path.Combine(path, LoraAdapter.ConfigFile)) ? DescribeAdapter(path, listTensors) : DescribeModel(path, listTensors, check);
        if (HubCache.RepoOfSnapshot(path) is var (repoId, commit)) described["hub"] = new JsonObject { ["repo_id"] = repoId, ["commit"] = commit };
        return described;
    }

    private static JsonObject DescribeModel(string path, bool listTensors, bool check)
    {
        using var model = ModelDirectory.Open(path, validate: check);
        var c = model.Config;
        var o = new JsonObject
        {
            ["kind"] = "model",
            ["path"] = path,
            ["architecture"] = c.Architecture,
            ["model_type"] = c.ModelType,
            ["num_hidden_layers"] = c.NumHiddenLayers,
            ["hidden_size"] = c.HiddenSize,
            ["intermediate_size"] = c.IntermediateSize,
            ["num_attention_heads"] = c.NumAttentionHeads,
            ["num_key_value_heads"] = c.NumKeyValueHeads,
            ["head_dim"] = c.HeadDim,
            ["vocab_size"] = c.VocabSize,
            ["tie_word_embeddings"] = c.TieWordEmbeddings,
            ["max_position_embeddings"] = c.MaxPositionEmbeddings,
            ["rope_theta"] = GlobalRotary(c).Theta,
            ["rope_scaling"] = RopeScalingOf(GlobalRotary(c).Scaling),
            ["rope_local_base_freq"] = LocalRopeTheta(c),
            ["torch_dtype"] = c.TorchDType?.ToTorchName(),
            // the family's features (docs/model.md, Families)
            ["hidden_act"] = c.HiddenAct,
            ["sliding_windows"] = new JsonArray(c.SlidingWindows.Select(w => (JsonNode?)w).ToArray()),
            ["query_pre_attn_scalar"] = c.QueryPreAttnScalar,
            ["attn_logit_softcapping"] = c.AttnLogitSoftcapping,
            ["final_logit_softcapping"] = c.FinalLogitSoftcapping,
            ["qk_norm"] = c.QkNorm,
            ["norm_weight_offset"] = c.NormWeightOffset,
            ["sandwich_norms"] = c.SandwichNorms,
            ["scale_embeddings"] = c.ScaleEmbeddings,
            ["fused_projections"] = c.FusedProjections,
            ["linear_modules"] = new JsonArray(c.LinearModules.Select(m => (JsonNode?)m).ToArray()),
        };
        o["weights"] = Path.GetFileName(model.WeightsPath);
        var files = model.Shards.Select(s => (s, Path.GetFileName(s.Path))).ToArray();
        AddTensorSummary(o, model.Tensors, files, listTensors);
        o["checked_against_config"] = check;
        return o;
    }

    // rope_scaling as read (longrope: its context ratio, original context and attention factor), or null
    private static JsonObject? RopeScalingOf(RopeScaling? rs) => rs switch
    {
        null => null,
        { Type: "longrope" } => new JsonObject
        {
            ["rope_type"] = rs.Type, ["factor"] = rs.Factor, ["original_max_position_embeddings"] = rs.OriginalMaxPositionEmbeddings,
            ["attention_factor"] = rs.AttentionFactor,
        },
        _ => new JsonObject { ["rope_type"] = rs.Type, ["factor"] = rs.Factor },
    };

    // The rotary embedding of the full-attention layers (the first layer's when every layer slides); v5's rope_parameters
    // keyed by layer type give it only per layer
    private static RotaryParameters GlobalRotary(ModelConfig c) =>
        c.RotaryOf(Enumerable.Range(0, c.NumHiddenLayers).FirstOrDefault(l => c.SlidingWindowOf(l) == 0));

    // The rope base of the sliding layers when their rotary embedding differs (Gemma-3's rope_local_base_freq), else null
    private static double? LocalRopeTheta(ModelConfig c) =>
        Enumerable.Range(0, c.NumHiddenLayers).Select(c.RotaryOf).FirstOrDefault(r => r != GlobalRotary(c))?.Theta;

    // "full causal", "sliding window 2047 in every layer", "sliding window 512 in 22 of 26 layers (full: 5, 11, 17, 23)"
    private static string WindowSummary(JsonArray windows)
    {
        var w = windows.Select(x => (int)x!).ToArray();
        var sizes = w.Where(x => x > 0).Distinct().ToArray();
        if (sizes.Length == 0) return "full causal";
        if (w.All(x => x == w[0])) return $"sliding window {w[0]} in every layer";
        var full = Enumerable.Range(0, w.Length).Where(i => w[i] == 0).ToArray();
        string listed = string.Join(", ", full.Take(8)) + (full.Length > 8 ? ", …" : "");
        return $"sliding window {string.Join("/", sizes)} in {w.Length - full.Length} of {w.Length} layers (full: {listed})";
    }

    private static JsonObject DescribeAdapter(string path, bool listTensors)
    {
        using var adapter = LoraAdapter.Open(path);
        var c = adapter.Config;
        var o = new JsonObject
        {
            ["kind"] = "lora_adapter",
            ["path"] = path,
            ["r"] = c.R,
            ["lora_alpha"] = c.LoraAlpha,
            ["use_rslora"] = c.UseRslora,
            ["scale"] = c.Scale,
            ["target_modules"] = c.TargetModulesRegex is { } regex
                ? regex
                : new JsonArray(c.TargetModules.Select(t => (JsonNode?)t).ToArray()),
            ["bias"] = c.Bias,
            ["base_model_name_or_path"] = c.BaseModelNameOrPath,
            ["adapted_layers"] = adapter.Pairs.Count,
            ["full_replacements"] = new JsonArray(adapter.Replacements.Keys.Order(StringComparer.Ordinal).Select(k => (JsonNode?)k).ToArray()),
            ["adapted_embeddings"] = new JsonArray(adapter.EmbeddingPairs.Keys.Order(StringComparer.Ordinal).Select(k => (JsonNode?)k).ToArray()),
            ["trainable_tokens"] = new JsonObject(adapter.Tokens.OrderBy(t => t.Key, StringComparer.Ordinal)
                .Select(t => KeyValuePair.Create(t.Key, (JsonNode?)t.Value.Indices.Count))),
            ["ensure_weight_tying"] = c.EnsureWeightTying,
            ["warnings"] = new JsonArray(adapter.Warnings.Select(w => (JsonNode?)w).ToArray()),
        };
        AddTensorSummary(o, adapter.File.Tensors, [(adapter.File, Path.GetFileName(adapter.File.Path))], listTensors);
        return o;
    }

    private static void AddTensorSummary(JsonObject o, IEnumerable<TensorEntry> all, (ITensorFile File, string Name)[] files, bool listTensors)
    {
        var list = all.ToList();
        o["tensor_count"] = list.Count;
        o["parameters"] = list.Sum(t => t.ElementCount);
        o["dtypes"] = new JsonObject(list.GroupBy(t => t.DType).OrderByDescending(g => g.Count())
            .Select(g => KeyValuePair.Create(g.Key.ToString(), (JsonNode?)g.Count())));
        o["files"] = new JsonArray(files.Select(f => (JsonNode?)new JsonObject { ["name"] = f.Name, ["bytes"] = f.File.FileLength }).ToArray());
        o["total_bytes"] = files.Sum(f => f.File.FileLength);
        if (!listTensors) return;
        o["tensors"] = new JsonArray(files.SelectMany(f => f.File.Tensors.Select(t => (JsonNode?)new JsonObject
        {
            ["name"] = t.Name,
            ["dtype"] = t.DType.ToString(),
            ["shape"] = new JsonArray(t.Shape.Select(d => (JsonNode?)d).ToArray()),
            ["file"] = f.Name,
        })).ToArray());
    }

    /// <summary>
    /// A description (<see cref="Describe"/>) as <c>irr inspect</c> prints it: aligned "key  value" rows, then with
    /// tensors listed, one line per tensor (name, dtype, shape, and the file when sharded). Text from the files is escaped.
    /// </summary>
    public static string ToText(JsonObject d)
    {
        var output = new StringWriter();
        var rows = new List<(string Key, string Value)>();
        string kind = (string)d["kind"]!;
        rows.Add((kind switch { "model" => "Model", "lora_adapter" => "LoRA adapter", _ => "File" }, (string)d["path"]!));
        if (d["hub"] is JsonObject hub) rows.Add(("Hub repo", $"{(string?)hub["repo_id"]} at commit {(string?)hub["commit"]}"));
        if (kind == "pytorch") rows.Add(("Format", $"PyTorch state dict ({(string)d["format"]! switch { "zip" => "zip archive, torch ≥ 1.6", _ => "legacy layout: torch < 1.6, or _use_new_zipfile_serialization=False" }})"));
        if (kind == "model")
        {
            rows.Add(("Architecture", $"{d["architecture"]} ({d["model_type"]})"));
            rows.Add(("Layers", $"{d["num_hidden_layers"]}"));
            rows.Add(("Hidden size", $"{d["hidden_size"]} (intermediate {d["intermediate_size"]})"));
            rows.Add(("Heads", $"{d["num_attention_heads"]} query, {d["num_key_value_heads"]} key/value, head_dim {d["head_dim"]}"));
            rows.Add(("Vocabulary", $"{d["vocab_size"]}{((bool)d["tie_word_embeddings"]! ? ", embeddings tied to lm_head" : "")}"));
            string rope = $"theta {d["rope_theta"]}";
            if (d["rope_scaling"] is JsonObject rs)
                rope += (string?)rs["rope_type"] == "longrope"
                    ? $", longrope (long factors beyond {rs["original_max_position_embeddings"]} positions, ×{Number((double)rs["factor"]!)} context, attention factor {(double)rs["attention_factor"]!:0.####})"
                    : $", {rs["rope_type"]} scaling ×{rs["factor"]}";
            if (d["rope_local_base_freq"] is { } local) rope += d["rope_scaling"] is null ? $"; sliding layers theta {local}" : $" (global layers); sliding layers theta {local}, unscaled";
            rows.Add(("RoPE", rope));
            rows.Add(("torch_dtype", d["torch_dtype"]?.ToString() ?? "(not given)"));
            if (d["hidden_act"] is { } act) // descriptions written before the families lack these keys
            {
                rows.Add(("Activation", (string)act! == "gelu_pytorch_tanh" ? "gelu_pytorch_tanh (GeGLU)" : $"{act} (SwiGLU)"));
                var attention = new List<string> { WindowSummary((JsonArray)d["sliding_windows"]!) };
                if (d["query_pre_attn_scalar"] is { } qs) attention.Add($"scores × query_pre_attn_scalar^-½ ({qs})");
                if ((bool)d["qk_norm"]!) attention.Add("q_norm/k_norm per head before RoPE");
                rows.Add(("Attention", string.Join("; ", attention)));
                var caps = new List<string>();
                if (d["attn_logit_softcapping"] is { } ac) caps.Add($"attention scores {ac}");
                if (d["final_logit_softcapping"] is { } fc) caps.Add($"final logits {fc}");
                if (caps.Count > 0) rows.Add(("Soft-caps", string.Join(", ", caps) + " (c·tanh(x/c))"));
                var norms = new List<string>();
                if ((float)d["norm_weight_offset"]! != 0) norms.Add($"RMSNorm x̂·({d["norm_weight_offset"]} + w) in float32");
                if ((bool)d["sandwich_norms"]!) norms.Add("four per layer (input, post-attention, pre- and post-feedforward)");
                if ((bool)d["scale_embeddings"]!) norms.Add("embeddings × √hidden_size");
                if (norms.Count > 0) rows.Add(("Norms", string.Join("; ", norms)));
                if ((bool)d["fused_projections"]!) rows.Add(("Projections", "fused qkv_proj (q, k, v rows) and gate_up_proj (gate, up rows)"));
                rows.Add(("Modules", string.Join(", ", ((JsonArray)d["linear_modules"]!).Select(m => (string)m!))));
            }
        }
        else if (kind == "lora_adapter")
        {
            rows.Add(("Rank, alpha", $"r {d["r"]}, alpha {d["lora_alpha"]}, scale {Number((double)d["scale"]!)}{((bool)d["use_rslora"]! ? " (rsLoRA: alpha/√r)" : " (alpha/r)")}"));
            rows.Add(("Targets", d["target_modules"] is JsonArray targets ? string.Join(", ", targets.Select(t => (string)t!)) : d["target_modules"]?.ToString() == "all-linear" ? "all-linear (every linear module but the head)" : $"regex {d["target_modules"]}"));
            rows.Add(("Adapted layers", $"{d["adapted_layers"]}"));
            if (d["full_replacements"] is JsonArray { Count: > 0 } full) rows.Add(("Replaces", string.Join(", ", full.Select(t => (string)t!))));
            if (d["adapted_embeddings"] is JsonArray { Count: > 0 } emb) rows.Add(("Adapted embeddings", string.Join(", ", emb.Select(t => (string)t!))));
            if (d["trainable_tokens"] is JsonObject { Count: > 0 } tok) rows.Add(("Trainable tokens", string.Join(", ", tok.Select(t => $"{t.Key} ({t.Value} rows)"))));
            rows.Add(("Base model", d["base_model_name_or_path"]?.ToString() ?? "(not given)"));
        }
        long parameters = (long)d["parameters"]!;
        rows.Add(("Parameters", parameters < 1000 ? $"{parameters}" : $"{Grouped(parameters)} ({Scaled(parameters, "")})"));
        rows.Add(("Tensors", $"{d["tensor_count"]}, stored as {string.Join(", ", ((JsonObject)d["dtypes"]!).Select(kv => $"{kv.Key} ({kv.Value})"))}"));
        var files = (JsonArray)d["files"]!;
        if (kind is "model" or "lora_adapter")
            rows.Add((files.Count == 1 ? "File" : "Shards", files.Count == 1 ? (string)files[0]!["name"]! : $"{files.Count}: {files[0]!["name"]} … {files[^1]!["name"]}"));
        rows.Add(("Size", $"{Grouped((long)d["total_bytes"]!)} bytes ({Scaled((long)d["total_bytes"]!, "B")})"));
        if (d["metadata"] is JsonObject { Count: > 0 } meta) rows.Add(("Metadata", string.Join(", ", meta.Select(kv => $"{kv.Key}={kv.Value}"))));
        // The adapter's warnings are printed once, on standard error, as every command prints the library's warnings (--json keeps them in "warnings").
        if (kind == "model" && !(bool)d["checked_against_config"]!) rows.Add(("Note", "tensors not checked against config.json (--no-check)"));

        int width = rows.Max(r => r.Key.Length) + 2;
        // Names, metadata and paths come from the file: escaped, so that each row stays one line and nothing drives the terminal.
        foreach (var (key, value) in rows) output.WriteLine(key.PadRight(width) + Diagnostics.Escape(value));

        if (d["tensors"] is JsonArray tensors)
        {
            output.WriteLine();
            var lines = tensors.Select(t => (Name: Diagnostics.Escape((string)t!["name"]!), DType: (string)t["dtype"]!, Shape: "[" + string.Join(", ", ((JsonArray)t["shape"]!).Select(x => x!.ToString())) + "]", File: Diagnostics.Escape((string)t["file"]!))).ToList();
            int nameWidth = lines.Max(l => l.Name.Length) + 2, shapeWidth = lines.Max(l => l.Shape.Length) + 2;
            foreach (var l in lines)
                output.WriteLine($"{l.Name.PadRight(nameWidth)}{l.DType,-6}{(files.Count > 1 ? l.Shape.PadRight(shapeWidth) + l.File : l.Shape)}");
        }
        return output.ToString();
    }

    private static string Grouped(long n) => n.ToString("N0", CultureInfo.InvariantCulture);

    // 1.10 B parameters, 2.20 GB: decimal units as Hugging Face uses.
    private static string Scaled(long n, string unit)
    {
        string[] prefixes = unit == "B" ? ["B", "kB", "MB", "GB", "TB"] : ["", "K", "M", "B", "T"];
        double v = n;
        int i = 0;
        while (v >= 1000 && i < prefixes.Length - 1) { v /= 1000; i++; }
        return unit == "B" || i > 0 ? $"{Number(v)} {prefixes[i]}".TrimEnd() : Number(v);
    }

    private static string Number(double v) => v.ToString(v >= 100 ? "0" : v >= 10 ? "0.0" : "0.00", CultureInfo.InvariantCulture);
}
