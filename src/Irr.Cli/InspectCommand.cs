using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Irr.IO;

namespace Irr.Cli;

/// <summary>
/// <c>irr inspect PATH</c>: what a model directory, a PEFT adapter directory, a single
/// .safetensors file or a PyTorch state dict (.pt, .pth, .bin) holds. The description is built once as JSON; <c>--json</c> prints it and
/// the default prints it as aligned text.
/// </summary>
internal static class InspectCommand
{
    public static Command Create()
    {
        var path = new Argument<string>("PATH") { Description = "A model directory, a PEFT adapter directory, a .safetensors file or a PyTorch state dict (.pt, .pth, .bin)" };
        var tensors = new Option<bool>("--tensors") { Description = "List every tensor: name, dtype and shape" };
        var json = new Option<bool>("--json") { Description = "Print machine-readable JSON" };
        var noCheck = new Option<bool>("--no-check") { Description = "Do not check a model's tensors against its config.json" };
        var command = new Command("inspect", "Describe a model, an adapter, a safetensors file or a PyTorch state dict (architecture, parameters, dtypes, shards)")
        {
            path, tensors, json, noCheck,
        };
        command.SetAction(parseResult =>
        {
            var description = Inspection.Describe(parseResult.GetValue(path)!, parseResult.GetValue(tensors), !parseResult.GetValue(noCheck));
            var output = parseResult.InvocationConfiguration.Output;
            if (parseResult.GetValue(json))
                output.WriteLine(description.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
            else
                WriteText(description, output);
            return 0;
        });
        return command;
    }

    private static void WriteText(JsonObject d, TextWriter output)
    {
        var rows = new List<(string Key, string Value)>();
        string kind = (string)d["kind"]!;
        rows.Add((kind switch { "model" => "Model", "lora_adapter" => "LoRA adapter", _ => "File" }, (string)d["path"]!));
        if (kind == "pytorch") rows.Add(("Format", $"PyTorch state dict ({(string)d["format"]! switch { "zip" => "zip archive, torch ≥ 1.6", _ => "legacy layout: torch < 1.6, or _use_new_zipfile_serialization=False" }})"));
        if (kind == "model")
        {
            rows.Add(("Architecture", $"{d["architecture"]} ({d["model_type"]})"));
            rows.Add(("Layers", $"{d["num_hidden_layers"]}"));
            rows.Add(("Hidden size", $"{d["hidden_size"]} (intermediate {d["intermediate_size"]})"));
            rows.Add(("Heads", $"{d["num_attention_heads"]} query, {d["num_key_value_heads"]} key/value, head_dim {d["head_dim"]}"));
            rows.Add(("Vocabulary", $"{d["vocab_size"]}{((bool)d["tie_word_embeddings"]! ? ", embeddings tied to lm_head" : "")}"));
            string rope = $"theta {d["rope_theta"]}";
            if (d["rope_scaling"] is JsonObject rs) rope += $", {rs["rope_type"]} scaling ×{rs["factor"]}";
            rows.Add(("RoPE", rope));
            rows.Add(("torch_dtype", d["torch_dtype"]?.ToString() ?? "(not given)"));
        }
        else if (kind == "lora_adapter")
        {
            rows.Add(("Rank, alpha", $"r {d["r"]}, alpha {d["lora_alpha"]}, scale {Number((double)d["scale"]!)}{((bool)d["use_rslora"]! ? " (rsLoRA: alpha/√r)" : " (alpha/r)")}"));
            rows.Add(("Targets", d["target_modules"] is JsonArray targets ? string.Join(", ", targets.Select(t => (string)t!)) : $"regex {d["target_modules"]}"));
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
