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
        if (File.Exists(Path.Combine(path, LoraAdapter.ConfigFile))) return DescribeAdapter(path, listTensors);
        return DescribeModel(path, listTensors, check);
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
            ["rope_theta"] = c.RopeTheta,
            ["rope_scaling"] = c.RopeScaling is { } rs
                ? new JsonObject { ["rope_type"] = rs.Type, ["factor"] = rs.Factor }
                : null,
            ["torch_dtype"] = c.TorchDType?.ToTorchName(),
        };
        o["weights"] = Path.GetFileName(model.WeightsPath);
        var files = model.Shards.Select(s => (s, Path.GetFileName(s.Path))).ToArray();
        AddTensorSummary(o, model.Tensors, files, listTensors);
        o["checked_against_config"] = check;
        return o;
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
}
