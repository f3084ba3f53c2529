using System.Text.Json.Nodes;
using Irr.IO;

namespace Irr.Tests.IO;

/// <summary>
/// PEFT adapter directories built by hand for tests: adapter_config.json as given and adapter_model.safetensors with
/// float32 tensors under the keys given (safetensors bytes through <see cref="RawSafetensors"/>, not the project's writer).
/// </summary>
internal static class AdapterFiles
{
    public static string Write(string path, string configJson, IReadOnlyList<(string Key, long[] Shape, float[] Values)> tensors)
    {
        Directory.CreateDirectory(path);
        File.WriteAllText(Path.Combine(path, LoraAdapter.ConfigFile), configJson);
        var header = new JsonObject();
        var data = new MemoryStream();
        foreach (var (key, shape, values) in tensors)
        {
            if (values.Length != shape.Aggregate(1L, (a, d) => a * d)) throw new ArgumentException($"{key}: {values.Length} values for [{string.Join(", ", shape)}]");
            long start = data.Length;
            data.Write(RawSafetensors.Floats(values));
            header[key] = new JsonObject
            {
                ["dtype"] = "F32",
                ["shape"] = new JsonArray(shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(start, data.Length),
            };
        }
        RawSafetensors.Write(Path.Combine(path, LoraAdapter.WeightsFile), header.ToJsonString(), data.ToArray());
        return path;
    }

    /// <summary>Seeded values in [−0.5, 0.5).</summary>
    public static float[] Random(int seed, int count)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
    }

    /// <summary>Reads a tensor of a safetensors file or model directory independently of the project's merge: the stored float32 values.</summary>
    public static float[] Stored(string modelDirectory, string name)
    {
        using var file = SafetensorsFile.Open(Path.Combine(modelDirectory, "model.safetensors"));
        return file.ReadSingle(name);
    }

    /// <summary>The warnings <paramref name="action"/> gives through <see cref="Diagnostics"/>.</summary>
    public static List<string> Warnings(Action action)
    {
        var warnings = new List<string>();
        using (Diagnostics.Listen(warnings.Add)) action();
        return warnings;
    }

    /// <summary>A config for the tiny Llama with tie_word_embeddings set.</summary>
    public static string TinyConfig(bool tied)
    {
        var o = JsonNode.Parse(TinyModels.LlamaConfig)!.AsObject();
        o["tie_word_embeddings"] = tied;
        o["torch_dtype"] = "float32";
        return o.ToJsonString();
    }
}
