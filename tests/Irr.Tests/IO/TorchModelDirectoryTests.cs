using System.Text.Json;
using Irr.IO;
using Irr.Model;
using Irr.Tests.Cli;
using Irr.Tests.Model;

namespace Irr.Tests.IO;

/// <summary>
/// Model and adapter directories with PyTorch weights (<c>pytorch_model.bin</c>, its shard index,
/// <c>adapter_model.bin</c>) written by real PyTorch (tests/fixtures/torch/make_models.py, torch 1.13), read
/// against the values torch wrote beside them and against a naive double-precision Llama.
/// </summary>
[Collection(nameof(TorchFileTests))]
public class TorchModelDirectoryTests
{
    private static string Fixture(string name) => Text.Fixtures.Local($"torch/models/{name}");

    // name → (dtype, shape, float32 values) as torch gave them.
    private static Dictionary<string, (string DType, long[] Shape, float[] Values)> Values(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Fixture(name + ".values.json")));
        return doc.RootElement.GetProperty("tensors").EnumerateObject().ToDictionary(p => p.Name, p =>
        {
            byte[] raw = Convert.FromBase64String(p.Value.GetProperty("float32").GetString()!);
            var values = new float[raw.Length / 4];
            Buffer.BlockCopy(raw, 0, values, 0, raw.Length);
            return (p.Value.GetProperty("dtype").GetString()!, p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray(), values);
        });
    }

    public static TheoryData<string, TensorDType, string> Layouts => new()
    {
        { "llama-bin", TensorDType.F32, ModelDirectory.TorchWeightsFile },
        { "llama-legacy", TensorDType.F16, ModelDirectory.TorchWeightsFile },
        { "llama-sharded", TensorDType.BF16, ModelDirectory.TorchIndexFile },
    };

    [Theory]
    [MemberData(nameof(Layouts))]
    public void ReadsEveryTensorAsTorchWroteIt(string name, TensorDType dtype, string weights)
    {
        var expected = Values(name);
        using var model = ModelDirectory.Open(Fixture(name));
        Assert.True(model.IsPyTorch);
        Assert.Equal(weights, Path.GetFileName(model.WeightsPath));
        Assert.Equal(name == "llama-sharded" ? 2 : 1, model.Shards.Count);
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), model.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
        foreach (var (tensor, (_, shape, values)) in expected)
        {
            var info = model.Info(tensor);
            Assert.Equal(shape, info.Shape);
            Assert.Equal(tensor.EndsWith("inv_freq") ? TensorDType.F32 : dtype, info.DType);
            Assert.Equal(values, model.ReadSingle(tensor));
        }
        // A row range, as the embedding is read one token at a time.
        var rows = new float[3 * 16];
        model.ReadRowsSingle("model.embed_tokens.weight", 10, 3, rows);
        Assert.Equal(expected["model.embed_tokens.weight"].Values.AsSpan(10 * 16, 3 * 16).ToArray(), rows);
    }

    [Fact]
    public void TiedWeightsShareOneStorage()
    {
        using var model = ModelDirectory.Open(Fixture("llama-bin"));
        var embed = (TorchTensorInfo)model.Info("model.embed_tokens.weight");
        var head = (TorchTensorInfo)model.Info("lm_head.weight");
        Assert.Same(embed.Storage, head.Storage);
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public void LogitsMatchANaiveModelOnTorchsValues(string name, TensorDType dtype, string weights)
    {
        _ = (dtype, weights);
        var expected = Values(name);
        using var source = CheckpointWeights.Open(Fixture(name));
        var config = source.Config;
        var model = new Transformer(source);
        int[] tokens = [1, 5, 2, 9, 3, 3, 0, 63, 17];
        var logits = model.Logits(Batch.Create([tokens]));
        var naive = NaiveLlama.Logits(config, n => expected[n].Values, tokens);
        for (int t = 0; t < tokens.Length; t++)
            for (int j = 0; j < config.VocabSize; j++)
                Assert.True(Math.Abs(logits[t * config.VocabSize + j] - naive[t, j]) < 1e-4, $"{name}: logit[{t},{j}] = {logits[t * config.VocabSize + j]}, naive {naive[t, j]}");
    }

    [Fact]
    public void ReadsAPeftAdapterSavedAsBin()
    {
        var a = Values("adapter-bin");
        var baseValues = Values("llama-legacy");
        using var adapter = LoraAdapter.Open(Fixture("adapter-bin"));
        Assert.IsType<TorchFile>(adapter.File);
        Assert.Equal(4, adapter.Pairs.Count);
        using var source = new CheckpointWeights(ModelDirectory.Open(Fixture("llama-legacy")), LoraAdapter.Open(Fixture("adapter-bin")));
        foreach (string weight in adapter.Pairs.Keys)
        {
            string prefix = "base_model.model." + weight[..^".weight".Length];
            var (A, B, W) = (a[prefix + ".lora_A.weight"], a[prefix + ".lora_B.weight"], baseValues[weight]);
            int rows = (int)W.Shape[0], cols = (int)W.Shape[1];
            float[] scratch = [];
            var merged = source.Load(weight, ref scratch);
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++)
                {
                    // W + (α/r)·B·A with α = 4, r = 2, in double.
                    double w = W.Values[i * cols + j];
                    for (int k = 0; k < 2; k++) w += 2.0 * B.Values[i * 2 + k] * A.Values[k * cols + j];
                    Assert.True(Math.Abs(merged[i * cols + j] - w) < 1e-5, $"{weight}[{i},{j}] = {merged[i * cols + j]}, expected {w}");
                }
        }
    }

    [Fact]
    public void LoadsWhatTransformersLoadsAndSaysWhatItIgnores()
    {
        using var dir = new TempDir();
        string both = dir["both"];
        Directory.CreateDirectory(both);
        foreach (string f in Directory.EnumerateFiles(Fixture("llama-sharded"))) File.Copy(f, Path.Combine(both, Path.GetFileName(f)));
        File.Copy(Path.Combine(Fixture("llama-bin"), ModelDirectory.TorchWeightsFile), Path.Combine(both, ModelDirectory.TorchWeightsFile));
        // pytorch_model.bin (float32 weights of another model) comes before pytorch_model.bin.index.json.
        var warnings = new List<string>();
        using (Diagnostics.Listen(warnings.Add))
        using (var model = ModelDirectory.Open(both, validate: false))
        {
            Assert.Equal(ModelDirectory.TorchWeightsFile, Path.GetFileName(model.WeightsPath));
            Assert.Equal(TensorDType.F32, model.Info("model.norm.weight").DType);
        }
        Assert.Equal([$"{both}: holds both pytorch_model.bin and pytorch_model.bin.index.json (+2 shards); loading pytorch_model.bin, as transformers does"], warnings);

        // model.safetensors comes before both.
        var (code, _, err) = CliRunner.Run("convert", Fixture("llama-legacy"), "-o", dir["converted"]);
        Assert.True(code == 0, err);
        File.Copy(Path.Combine(dir["converted"], ModelDirectory.WeightsFile), Path.Combine(both, ModelDirectory.WeightsFile));
        warnings.Clear();
        using (Diagnostics.Listen(warnings.Add))
        using (var model = ModelDirectory.Open(both, validate: false))
        {
            Assert.False(model.IsPyTorch);
            Assert.Equal(TensorDType.F16, model.Info("model.norm.weight").DType);
        }
        Assert.Equal([$"{both}: holds model.safetensors, pytorch_model.bin and pytorch_model.bin.index.json (+2 shards); loading model.safetensors, as transformers does"], warnings);
    }

    [Fact]
    public void CommandsReadPyTorchModelsAndRefuseHostileOnes()
    {
        using var dir = new TempDir();
        var (code, output, err) = CliRunner.Run("inspect", Fixture("llama-sharded"), "--json");
        Assert.True(code == 0, err);
        using (var doc = JsonDocument.Parse(output))
        {
            Assert.Equal("pytorch_model.bin.index.json", doc.RootElement.GetProperty("weights").GetString());
            Assert.Equal(2, doc.RootElement.GetProperty("files").GetArrayLength());
            Assert.True(doc.RootElement.GetProperty("checked_against_config").GetBoolean());
        }
        (code, output, err) = CliRunner.Run("inspect", Path.Combine(Fixture("llama-legacy"), ModelDirectory.TorchWeightsFile));
        Assert.True(code == 0, err);
        Assert.Contains("PyTorch state dict (legacy layout: torch < 1.6, or _use_new_zipfile_serialization=False)", output);

        // A pytorch_model.bin whose pickle calls os.system: refused by name, nothing run, in every command that opens it.
        string model = dir["hostile"], marker = dir["PWNED"];
        Directory.CreateDirectory(model);
        File.Copy(Path.Combine(Fixture("llama-bin"), "config.json"), Path.Combine(model, "config.json"));
        TorchFileTests.Archive(dir, TorchFileTests.Bytes("cos\nsystem\n(S'touch " + marker + "'\ntR."), "hostile/pytorch_model.bin");
        foreach (string[] args in new[] { new[] { "inspect", model }, ["convert", model, "-o", dir["out"]] })
        {
            (code, _, err) = CliRunner.Run(args);
            Assert.Equal(2, code);
            Assert.Equal($"error: {Path.Combine(model, "pytorch_model.bin")}: refuses the pickle global 'os.system' (only a state dict's tensors are read)", err.TrimEnd('\n'));
        }
        Assert.False(File.Exists(marker));
        Assert.False(Directory.Exists(dir["out"]));
    }

    [Fact]
    public void AnIrrRunOnPyTorchWeightsEqualsTheRunOnTheirSafetensorsConversion()
    {
        using var dir = new TempDir();
        string task = IrrCommandTests.Records(dir, "task.jsonl", 4, "compute");
        static void Ok((int Code, string Out, string Err) r) => Assert.True(r.Code == 0, r.Err);
        var outputs = new List<string>();
        foreach (string kind in new[] { "bin", "st" })
        {
            var models = new Dictionary<string, string>();
            foreach (string role in new[] { "aligned", "unaligned", "finetuned" })
            {
                string copy = dir[$"{kind}-{role}"];
                if (kind == "bin")
                {
                    Directory.CreateDirectory(copy);
                    foreach (string f in Directory.EnumerateFiles(Fixture("chat-" + role))) File.Copy(f, Path.Combine(copy, Path.GetFileName(f)));
                }
                else
                {
                    Ok(CliRunner.Run("convert", Fixture("chat-" + role), "-o", copy));
                }
                models[role] = ModelCommandTests.AddChatTokenizer(copy);
            }
            string run = dir[kind];
            Directory.CreateDirectory(run);
            Ok(CliRunner.Run("safety-vector", "--aligned", models["aligned"], "--unaligned", models["unaligned"], "--modules", "q_proj,v_proj", "-o", Path.Combine(run, "v.safetensors")));
            Ok(CliRunner.Run("fisher", "--model", models["aligned"], "--data", task, "--modules", "q_proj,v_proj", "--batch-size", "2", "-o", Path.Combine(run, "f.safetensors")));
            Ok(CliRunner.Run("realign", "--base", models["aligned"], "--finetuned", models["finetuned"], "--safety-vector", Path.Combine(run, "v.safetensors"),
                "--fisher", Path.Combine(run, "f.safetensors"), "--calibration", task, "--modules", "q_proj,v_proj", "--nsamples", "4", "-o", Path.Combine(run, "realigned")));
            Ok(CliRunner.Run("score", "--model", models["finetuned"], "--data", task, "-o", Path.Combine(run, "scores.json")));
            outputs.Add(run);
        }
        // The same tensors, bit for bit (the metadata names the input paths, which differ).
        foreach (string f in new[] { "v.safetensors", "f.safetensors", "realigned/model.safetensors" })
        {
            using var a = SafetensorsFile.Open(Path.Combine(outputs[0], f));
            using var b = SafetensorsFile.Open(Path.Combine(outputs[1], f));
            Assert.Equal(a.Tensors.Select(t => t.ToString()), b.Tensors.Select(t => t.ToString()));
            foreach (var t in a.Tensors)
            {
                using MemoryStream x = new(), y = new();
                a.CopyRawTo(t, x);
                b.CopyRawTo(b.Get(t.Name), y);
                Assert.True(x.ToArray().AsSpan().SequenceEqual(y.ToArray()), $"{f}: {t.Name} differs");
            }
        }
        Assert.Equal(File.ReadAllText(Path.Combine(outputs[1], "realigned/config.json")), File.ReadAllText(Path.Combine(outputs[0], "realigned/config.json")));
        static string Scores(string run) => System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(run, "scores.json")))!["scores"]!.ToJsonString();
        Assert.Equal(Scores(outputs[1]), Scores(outputs[0]));
        // The realigned model keeps the fine-tune's storage type (bfloat16, from the shards).
        using var realigned = ModelDirectory.Open(Path.Combine(outputs[0], "realigned"));
        Assert.Equal(TensorDType.BF16, realigned.Info("model.layers.0.self_attn.q_proj.weight").DType);
    }

    [Fact]
    public void ConvertsAPeftAdapterAndRefusesPyTorchNamesForSafetensorsOutputs()
    {
        using var dir = new TempDir();
        var (code, _, err) = CliRunner.Run("convert", Fixture("adapter-bin"), "-o", dir["adapter"]);
        Assert.True(code == 0, err);
        Assert.Equal(["README.md", "adapter_config.json", "adapter_model.safetensors"], Directory.EnumerateFiles(dir["adapter"]).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        var (card, _) = ModelCardTests.Parse(File.ReadAllText(Path.Combine(dir["adapter"], "README.md")));
        Assert.Equal("peft", ((YamlDotNet.RepresentationModel.YamlScalarNode)card[new YamlDotNet.RepresentationModel.YamlScalarNode("library_name")]).Value);
        var expected = Values("adapter-bin");
        using (var adapter = LoraAdapter.Open(dir["adapter"]))
        {
            Assert.IsType<SafetensorsFile>(adapter.File);
            Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), adapter.File.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
            foreach (var (name, (_, _, values)) in expected) Assert.Equal(values, adapter.File.ReadSingle(name));
        }

        // irr writes safetensors; an output named like a PyTorch file is refused before anything runs.
        (code, _, err) = CliRunner.Run("safety-vector", "--aligned", Fixture("chat-aligned"), "--unaligned", Fixture("chat-unaligned"), "-o", dir["v.pt"]);
        Assert.Equal(2, code);
        Assert.Equal($"error: safety-vector: {dir["v.pt"]}: irr writes safetensors, which torch.load cannot read; name the output .safetensors (safetensors.torch.load_file reads it in Python)", err.TrimEnd('\n'));
        Assert.False(File.Exists(dir["v.pt"]));
    }

    [Fact]
    public void AnAdapterOfALargerModelIsRefused()
    {
        using var dir = new TempDir();
        // adapter-bin adapts layers 0 and 1; this base has one layer of the same width.
        string small = TinyModels.Create(dir["small"], TinyModels.LlamaConfig.Replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1"));
        var e = Assert.Throws<IrrException>(() => CheckpointWeights.Open(small, Fixture("adapter-bin")).Dispose());
        Assert.Equal($"{Path.Combine(Fixture("adapter-bin"), "adapter_model.bin")}: the adapter adapts 'model.layers.1.self_attn.q_proj.weight', which {small} does not have", e.Message);
    }
}
