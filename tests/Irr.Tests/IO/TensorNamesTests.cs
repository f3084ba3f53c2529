using System.Text.Json;
using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Tests.Cli;

namespace Irr.Tests.IO;

/// <summary>
/// <see cref="TensorNames"/>: safety vectors and Fisher files saved from a wrapped model's named_parameters() read under
/// Hugging Face names, checked against hand-written names and against the names torch itself gave (tests/fixtures/torch).
/// </summary>
public class TensorNamesTests
{
    private const string Q0 = "model.layers.0.self_attn.q_proj.weight";

    // A safetensors file of F32 tensors, built by hand: each key with its values, one-dimensional.
    private static string Write(string path, params (string Key, float[] Values)[] tensors)
    {
        var header = new JsonObject();
        var data = new List<byte>();
        foreach (var (key, values) in tensors)
        {
            header[key] = new JsonObject { ["dtype"] = "F32", ["shape"] = new JsonArray(values.Length), ["data_offsets"] = new JsonArray(data.Count, data.Count + 4 * values.Length) };
            data.AddRange(RawSafetensors.Floats(values));
        }
        return RawSafetensors.Write(path, header.ToJsonString(), data.ToArray());
    }

    private static (TensorNames File, List<string> Warnings) Open(string path)
    {
        var warnings = new List<string>();
        using (Diagnostics.Listen(warnings.Add)) return (TensorNames.OpenHfKeyed(path), warnings);
    }

    [Theory]
    [InlineData("model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.q_proj.weight")]
    [InlineData("lm_head.weight", "lm_head.weight")]
    [InlineData("model.norm.weight", "model.norm.weight")]
    [InlineData("base_model.model.model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.q_proj.weight")]
    [InlineData("base_model.model.model.layers.7.self_attn.v_proj.base_layer.weight", "model.layers.7.self_attn.v_proj.weight")]
    [InlineData("base_model.model.model.layers.2.self_attn.k_proj.base_layer.bias", "model.layers.2.self_attn.k_proj.bias")]
    [InlineData("base_model.model.lm_head.weight", "lm_head.weight")]
    [InlineData("module.model.layers.3.mlp.down_proj.weight", "model.layers.3.mlp.down_proj.weight")]
    [InlineData("_orig_mod.model.layers.3.mlp.gate_proj.weight", "model.layers.3.mlp.gate_proj.weight")]
    [InlineData("layers.0.self_attn.o_proj.weight", "model.layers.0.self_attn.o_proj.weight")]
    [InlineData("embed_tokens.weight", "model.embed_tokens.weight")]
    [InlineData("norm.weight", "model.norm.weight")]
    // Combinations, in any order.
    [InlineData("module._orig_mod.base_model.model.model.layers.1.mlp.up_proj.base_layer.weight", "model.layers.1.mlp.up_proj.weight")]
    [InlineData("_orig_mod.module.layers.1.mlp.up_proj.weight", "model.layers.1.mlp.up_proj.weight")]
    [InlineData("base_model.model.module.model.layers.1.self_attn.q_proj.weight", "model.layers.1.self_attn.q_proj.weight")]
    [InlineData("module.base_model.model.layers.4.self_attn.q_proj.weight", "model.layers.4.self_attn.q_proj.weight")] // PEFT on the inner model
    // Not model tensors: LoRA factors and modules_to_save copies keep their keys.
    [InlineData("base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight", "base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight")]
    [InlineData("module.layers.0.self_attn.q_proj.lora_B.weight", "module.layers.0.self_attn.q_proj.lora_B.weight")]
    [InlineData("base_model.model.lm_head.modules_to_save.default.weight", "base_model.model.lm_head.modules_to_save.default.weight")]
    // A prefix alone is no key to strip to nothing; "model." is not a wrapper prefix.
    [InlineData("module.", "module.")]
    [InlineData("model.model.layers.0.self_attn.q_proj.weight", "model.model.layers.0.self_attn.q_proj.weight")]
    public void KeysReadAsHuggingFaceNames(string key, string expected) => Assert.Equal(expected, TensorNames.HfName(key));

    [Fact]
    public void APrefixedFileReadsUnderHuggingFaceNamesWithOneWarning()
    {
        using var dir = new TempDir();
        string path = Write(dir["sv.safetensors"],
            ("base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight", [1f, 2f]),
            ("base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight", [9f]),
            ("module._orig_mod.layers.1.mlp.up_proj.weight", [3f, -4f, 5f]));
        var (file, warnings) = Open(path);
        using (file)
        {
            Assert.Equal(path, file.Path);
            Assert.True(file.TryGetTensor(Q0, out var dtype, out var shape));
            Assert.Equal(TensorDType.F32, dtype);
            Assert.Equal([2L], shape);
            Assert.Equal([1f, 2f], file.ReadSingle(Q0));
            Assert.Equal([3f, -4f, 5f], file.ReadSingle("model.layers.1.mlp.up_proj.weight"));
            Assert.Equal([9f], file.ReadSingle("base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight"));
            // The file's own keys of renamed tensors are not names any more.
            Assert.False(file.TryGetTensor("base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight", out _, out _));
            Assert.False(file.TryGetTensor("model.layers.0.self_attn.q_proj.lora_A.default.weight", out _, out _));
            var missing = Assert.Throws<IrrException>(() => file.ReadSingle("module._orig_mod.layers.1.mlp.up_proj.weight"));
            Assert.Equal($"{path}: no tensor 'module._orig_mod.layers.1.mlp.up_proj.weight'", missing.Message);
            Assert.Equal(["base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight", Q0, "model.layers.1.mlp.up_proj.weight"],
                file.Names.Order(StringComparer.Ordinal));
        }
        Assert.Equal([$"{path}: tensor names read as Hugging Face names (removed prefixes 'base_model.model.', 'module.', '_orig_mod.'; " +
                      "'.base_layer.weight' → '.weight'; 'layers.' → 'model.layers.')"], warnings);
    }

    [Fact]
    public void TheWarningNamesOnlyTheRulesThatApplied()
    {
        using var dir = new TempDir();
        string path = Write(dir["f.safetensors"], ("base_model.model.model.layers.0.self_attn.q_proj.weight", [1f]), ("base_model.model.lm_head.weight", [2f]));
        var (file, warnings) = Open(path);
        file.Dispose();
        Assert.Equal([$"{path}: tensor names read as Hugging Face names (removed prefix 'base_model.model.')"], warnings);

        path = Write(dir["inner.safetensors"], ("layers.0.self_attn.q_proj.weight", [1f]), ("layers.1.self_attn.q_proj.weight", [2f]));
        (file, warnings) = Open(path);
        using (file) Assert.Equal([2f], file.ReadSingle("model.layers.1.self_attn.q_proj.weight"));
        Assert.Equal([$"{path}: tensor names read as Hugging Face names ('layers.' → 'model.layers.')"], warnings);
    }

    [Fact]
    public void HuggingFaceNamesReadUnchangedWithoutAWarning()
    {
        using var dir = new TempDir();
        string path = Write(dir["sv.safetensors"], (Q0, [1f, 2f]), ("lm_head.weight", [3f]),
            ("base_model.model.model.layers.0.self_attn.q_proj.lora_B.default.weight", [4f]));
        var (file, warnings) = Open(path);
        using (file)
        {
            Assert.Empty(file.Rules);
            Assert.Equal([1f, 2f], file.ReadSingle(Q0));
            Assert.Equal([3f], file.ReadSingle("lm_head.weight"));
            Assert.Equal(3, file.Names.Count);
        }
        Assert.Empty(warnings);
    }

    [Fact]
    public void TwoKeysReadAsOneNameAreAnErrorNamingBoth()
    {
        using var dir = new TempDir();
        string path = Write(dir["sv.safetensors"], ("module." + Q0, [1f]), (Q0, [2f]));
        var e = Assert.Throws<IrrException>(() => Open(path));
        Assert.Equal($"{path}: tensors '{Q0}' and 'module.{Q0}' both read as the Hugging Face name '{Q0}'; keep one of them", e.Message);

        // Two renamed keys: a LoRA layer's base_layer beside a plain copy of the weight.
        path = Write(dir["f.safetensors"], ("base_model.model." + Q0, [1f]), ("base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight", [2f]));
        e = Assert.Throws<IrrException>(() => Open(path));
        Assert.StartsWith($"{path}: tensors '", e.Message);
        Assert.Contains($"'base_model.model.{Q0}'", e.Message);
        Assert.Contains("'base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight'", e.Message);
        Assert.EndsWith($"both read as the Hugging Face name '{Q0}'; keep one of them", e.Message);
    }

    // State dicts torch wrote from dict(named_parameters()) of a DataParallel(PEFT LoRA model) and of the inner model under
    // torch.compile's _orig_mod; the .json gives, per key, the name of the same parameter in the plain model (object identity).
    // Plain tensors: per layer q_proj, v_proj, up_proj (2 layers: 6), embed_tokens, norm weight and bias, and lm_head (not in
    // the inner model): 10 and 9; the LoRA factors, A and B of q_proj and v_proj per layer: 8.
    [Theory]
    [InlineData("peft_ddp", 10, "removed prefixes 'base_model.model.', 'module.'; '.base_layer.weight' → '.weight'")]
    [InlineData("compiled_inner", 9, "removed prefix '_orig_mod.'; '.base_layer.weight' → '.weight'; 'embed_tokens.' → 'model.embed_tokens.'; " +
                                  "'layers.' → 'model.layers.'; 'norm.' → 'model.norm.'")]
    public void TorchSavedWrapperDictsReadUnderTheNamesOfThePlainModel(string name, int plainCount, string rules)
    {
        string path = Text.Fixtures.Local($"torch/state_dicts/{name}.pt");
        var (file, warnings) = Open(path);
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.ChangeExtension(path, ".json")));
        int plain = 0;
        using (file)
        {
            foreach (var p in doc.RootElement.GetProperty("tensors").EnumerateObject())
            {
                var hf = p.Value.GetProperty("hf_name");
                // A LoRA factor has no plain name and keeps its key.
                string expected = hf.ValueKind == JsonValueKind.Null ? p.Name : hf.GetString()!;
                plain += hf.ValueKind == JsonValueKind.Null ? 0 : 1;
                Assert.True(file.TryGetTensor(expected, out _, out var shape), expected);
                Assert.Equal(p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()), shape);
                Assert.Equal(p.Value.GetProperty("values").EnumerateArray().Select(e => (float)e.GetDouble()), file.ReadSingle(expected));
                if (expected != p.Name) Assert.False(file.TryGetTensor(p.Name, out _, out _));
            }
            Assert.Equal(doc.RootElement.GetProperty("tensors").EnumerateObject().Count(), file.Names.Count);
        }
        Assert.Equal(plainCount, plain);
        Assert.Equal(plainCount + 8, doc.RootElement.GetProperty("tensors").EnumerateObject().Count());
        Assert.Equal([$"{path}: tensor names read as Hugging Face names ({rules})"], warnings);
    }

    // A copy of a safetensors file with each key renamed, the bytes and metadata unchanged.
    private static string Renamed(string source, string target, Func<string, string> rename)
    {
        using var file = SafetensorsFile.Open(source);
        var header = new JsonObject { ["__metadata__"] = new JsonObject(file.Metadata.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))) };
        using var data = new MemoryStream();
        foreach (var t in file.Tensors)
        {
            long begin = data.Length;
            file.CopyRawTo(t, data);
            header[rename(t.Name)] = new JsonObject
            {
                ["dtype"] = t.DType.ToString(),
                ["shape"] = new JsonArray(t.Shape.Select(d => (JsonNode?)d).ToArray()),
                ["data_offsets"] = new JsonArray(begin, data.Length),
            };
        }
        return RawSafetensors.Write(target, header.ToJsonString(), data.ToArray());
    }

    [Fact]
    public void RealignWithPeftKeyedInputsWritesTheSameModelAsWithHuggingFaceKeys()
    {
        using var dir = new TempDir();
        var (aligned, unaligned, finetuned) = ModelCommandTests.ThreeModels(dir);
        string task = IrrCommandTests.Records(dir, "task.jsonl", 4, "compute");
        static void Ok((int Code, string Out, string Err) r) => Assert.True(r.Code == 0, r.Err);
        Ok(CliRunner.Run("safety-vector", "--aligned", aligned, "--unaligned", unaligned, "--modules", "q_proj,v_proj", "-o", dir["v.safetensors"]));
        Ok(CliRunner.Run("fisher", "--model", aligned, "--data", task, "--modules", "q_proj,v_proj", "--batch-size", "2", "-o", dir["f.safetensors"]));
        // As saved from a PEFT model: the prefix on every key, and q_proj as a LoRA layer's base_layer.
        string PeftKey(string name) => "base_model.model." + name.Replace("q_proj.weight", "q_proj.base_layer.weight", StringComparison.Ordinal);
        string v = Renamed(dir["v.safetensors"], dir["v-peft.safetensors"], PeftKey);
        string f = Renamed(dir["f.safetensors"], dir["f-peft.safetensors"], PeftKey);
        using (var check = SafetensorsFile.Open(v)) Assert.True(check.Contains("base_model.model.model.layers.1.self_attn.q_proj.base_layer.weight"));

        (int, string, string) Realign(string vector, string fisher, string output) => CliRunner.Run("realign", "--base", aligned, "--finetuned", finetuned,
            "--safety-vector", vector, "--fisher", fisher, "--calibration", task, "--modules", "q_proj,v_proj", "--blocksize", "8", "--nsamples", "4", "-o", output);
        var plain = Realign(dir["v.safetensors"], dir["f.safetensors"], dir["plain"]);
        Ok(plain);
        Assert.DoesNotContain("warning", plain.Item3);
        var peft = Realign(v, f, dir["peft"]);
        Ok(peft);
        foreach (string file in new[] { v, f })
            Assert.Contains($"warning: {file}: tensor names read as Hugging Face names (removed prefix 'base_model.model.'; '.base_layer.weight' → '.weight')\n", peft.Item3);

        var written = Directory.GetFiles(dir["plain"]).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(written, Directory.GetFiles(dir["peft"]).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Contains("model.safetensors", written);
        foreach (string? name in written.Where(n => n != "irr-report.json"))
            Assert.True(File.ReadAllBytes(Path.Combine(dir["plain"], name!)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(dir["peft"], name!))), $"{name} differs");
        // The same removals, matrix by matrix.
        static JsonNode? Layers(string run) => JsonNode.Parse(File.ReadAllText(Path.Combine(run, "irr-report.json")))!["layers"];
        var a = Layers(dir["plain"])!.AsArray().SelectMany(l => l!["modules"]!.AsArray()).Select(m => (long)m!["removed"]!).ToList();
        Assert.Equal(a, Layers(dir["peft"])!.AsArray().SelectMany(l => l!["modules"]!.AsArray()).Select(m => (long)m!["removed"]!));
        Assert.Contains(a, r => r > 0);

        // Keys of another naming scheme (GPT-2 style) match no tensor even once mapped: refused, saying what they look like.
        string foreign = Renamed(dir["v.safetensors"], dir["v-gpt.safetensors"], n => n.Replace("model.layers.", "transformer.h.", StringComparison.Ordinal));
        var (code, _, err) = Realign(foreign, dir["f.safetensors"], dir["gpt"]);
        Assert.Equal(2, code);
        Assert.Equal($"error: {foreign}: the safety vector lacks 4 target weights: model.layers.0.self_attn.q_proj.weight, model.layers.0.self_attn.v_proj.weight, " +
                     "model.layers.1.self_attn.q_proj.weight, model.layers.1.self_attn.v_proj.weight (none of its 4 keys, such as 'transformer.h.0.self_attn.q_proj.weight', is a tensor name of this model)",
            err.TrimEnd('\n'));
        Assert.False(Directory.Exists(dir["gpt"]));
    }
}
