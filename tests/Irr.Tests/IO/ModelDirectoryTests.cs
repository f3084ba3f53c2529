using System.Text.Json.Nodes;
using Irr.IO;

namespace Irr.Tests.IO;

public class ModelDirectoryTests
{
    private static string WithConfig(string json, Action<JsonObject> edit)
    {
        var o = JsonNode.Parse(json)!.AsObject();
        edit(o);
        return o.ToJsonString();
    }

    [Fact]
    public void OpensASingleFileModelAndItsConfig()
    {
        using var dir = new TempDir();
        using var model = ModelDirectory.Open(TinyModels.Create(dir["m"]));
        var c = model.Config;
        Assert.Equal("LlamaForCausalLM", c.Architecture);
        Assert.Equal((16, 40, 2, 4, 2, 4, 64), (c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim, c.VocabSize));
        Assert.Equal(1e-5, c.RmsNormEps);
        Assert.Equal(TensorDType.BF16, c.TorchDType);
        Assert.Equal([2], c.EosTokenIds);
        Assert.Null(model.IndexPath);
        Assert.Single(model.Shards);
        Assert.Equal(TinyModels.LlamaParameters, model.ParameterCount);
        Assert.Equal([8L, 16L], model.Info("model.layers.1.self_attn.k_proj.weight").Shape);
        Assert.Equal(40 * 16, model.ReadSingle("model.layers.0.mlp.up_proj.weight").Length);
    }

    [Fact]
    public void OpensAShardedModelThroughItsIndex()
    {
        using var dir = new TempDir();
        using var single = ModelDirectory.Open(TinyModels.Create(dir["single"], seed: 3));
        using var sharded = ModelDirectory.Open(TinyModels.Create(dir["sharded"], seed: 3, maxShardBytes: 4096));
        Assert.NotNull(sharded.IndexPath);
        Assert.True(sharded.Shards.Count > 3);
        // Same seed, same values: sharding changes only the layout.
        foreach (var t in single.Tensors)
            Assert.Equal(single.ReadSingle(t.Name), sharded.ReadSingle(t.Name));
    }

    [Fact]
    public void Qwen2HasQkvBiasesAndTiedEmbeddingsDropLmHead()
    {
        string qwen = WithConfig(TinyModels.LlamaConfig, o =>
        {
            o["architectures"] = new JsonArray("Qwen2ForCausalLM");
            o["model_type"] = "qwen2";
            o["tie_word_embeddings"] = true;
        });
        var config = ModelConfig.Parse(qwen, "config.json");
        var names = config.ExpectedTensors().ToDictionary(t => t.Name, t => t.Shape);
        Assert.Equal([16L], names["model.layers.0.self_attn.q_proj.bias"]);
        Assert.Equal([8L], names["model.layers.1.self_attn.v_proj.bias"]);
        Assert.False(names.ContainsKey("model.layers.0.self_attn.o_proj.bias"));
        Assert.False(names.ContainsKey("lm_head.weight"));
        using var dir = new TempDir();
        using var model = ModelDirectory.Open(TinyModels.Create(dir["q"], qwen));
        Assert.True(model.Contains("model.layers.0.self_attn.k_proj.bias"));
    }

    [Fact]
    public void ConfigFieldsAsHuggingFaceWritesThem()
    {
        string json = WithConfig(TinyModels.LlamaConfig, o =>
        {
            o["eos_token_id"] = new JsonArray(128001, 128008, 128009);
            o["rope_scaling"] = JsonNode.Parse("""{"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192, "rope_type": "llama3"}""");
            o["rope_theta"] = 500000.0;
            o.Remove("torch_dtype");
            o["dtype"] = "float16"; // newer transformers
            o.Remove("num_key_value_heads");
            o["head_dim"] = 8;
            o["attention_bias"] = true;
            o["mlp_bias"] = true;
        });
        var c = ModelConfig.Parse(json, "config.json");
        Assert.Equal([128001, 128008, 128009], c.EosTokenIds);
        Assert.Equal(new RopeScaling("llama3", 8, 1, 4, 8192), c.RopeScaling);
        Assert.Equal(500000.0, c.RopeTheta);
        Assert.Equal(TensorDType.F16, c.TorchDType);
        Assert.Equal(4, c.NumKeyValueHeads);
        Assert.Equal(8, c.HeadDim);
        var names = c.ExpectedTensors().ToDictionary(t => t.Name, t => t.Shape);
        Assert.Equal([32L, 16L], names["model.layers.0.self_attn.q_proj.weight"]); // 4 heads × head_dim 8
        Assert.Equal([16L], names["model.layers.0.self_attn.o_proj.bias"]);
        Assert.Equal([40L], names["model.layers.0.mlp.up_proj.bias"]);

        var linear = ModelConfig.Parse(WithConfig(TinyModels.LlamaConfig, o => o["rope_scaling"] = JsonNode.Parse("""{"type": "linear", "factor": 2.0}""")), "c");
        Assert.Equal("linear", linear.RopeScaling!.Type);
        Assert.Equal(2.0, linear.RopeScaling.Factor);
    }

    [Theory]
    [InlineData("architectures", "[\"GPT2LMHeadModel\"]", "unsupported architecture 'GPT2LMHeadModel'")]
    [InlineData("rope_scaling", "{\"rope_type\": \"yarn\", \"factor\": 4.0}", "rope_scaling type 'yarn' is not supported")]
    [InlineData("hidden_act", "\"gelu\"", "hidden_act 'gelu' is not supported")]
    [InlineData("hidden_size", "\"sixteen\"", "\"hidden_size\" must be an integer")]
    [InlineData("num_key_value_heads", "3", "not a positive multiple")]
    [InlineData("torch_dtype", "\"int8\"", "torch_dtype 'int8'")]
    [InlineData("rope_parameters", "{\"rope_type\": \"dynamic\", \"factor\": 2.0, \"rope_theta\": 10000.0}", "rope_parameters type 'dynamic' is not supported")]
    [InlineData("partial_rotary_factor", "0.5", "partial_rotary_factor 0.5 is not supported")]
    [InlineData("final_logit_softcapping", "30.0", "final_logit_softcapping 30 is not supported")]
    [InlineData("attn_logit_softcapping", "50.0", "attn_logit_softcapping 50 is not supported")]
    [InlineData("use_qk_norm", "true", "use_qk_norm true is not supported")]
    [InlineData("qk_layernorm", "true", "qk_layernorm true is not supported")]
    [InlineData("head_dim", "5", "head_dim 5 is odd")]
    public void BadConfigsAreNamed(string key, string value, string expected)
    {
        string json = WithConfig(TinyModels.LlamaConfig, o => o[key] = JsonNode.Parse(value));
        var e = Assert.Throws<IrrException>(() => ModelConfig.Parse(json, "/m/config.json"));
        Assert.StartsWith("/m/config.json: ", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.Contains("missing \"vocab_size\"", Assert.Throws<IrrException>(() => ModelConfig.Parse(WithConfig(TinyModels.LlamaConfig, o => o.Remove("vocab_size")), "c")).Message);
        Assert.Contains("not valid JSON", Assert.Throws<IrrException>(() => ModelConfig.Parse("{", "c")).Message);
    }

    [Fact]
    public void MissingShard()
    {
        using var dir = new TempDir();
        string m = TinyModels.Create(dir["m"], maxShardBytes: 4096);
        File.Delete(Path.Combine(m, "model-00002-of-" + Directory.GetFiles(m, "model-00001-of-*")[0][^17..]));
        var e = Assert.Throws<IrrException>(() => ModelDirectory.Open(m));
        Assert.Contains("model.safetensors.index.json: shard 'model-00002-of-", e.Message);
        Assert.Contains("is missing", e.Message);
    }

    [Theory]
    [InlineData("../outside.safetensors")]
    [InlineData("/etc/passwd")]
    [InlineData("sub/model.safetensors")]
    [InlineData("..")]
    public void IndexPointingOutsideTheDirectory(string shard)
    {
        using var dir = new TempDir();
        string m = TinyModels.Create(dir["m"], maxShardBytes: 4096);
        File.Copy(Directory.GetFiles(m, "model-00001-*")[0], dir["outside.safetensors"]);
        string indexPath = Path.Combine(m, "model.safetensors.index.json");
        var index = JsonNode.Parse(File.ReadAllText(indexPath))!;
        index["weight_map"]!["model.embed_tokens.weight"] = shard;
        File.WriteAllText(indexPath, index.ToJsonString());
        var e = Assert.Throws<IrrException>(() => ModelDirectory.Open(m));
        Assert.Contains($"points to '{shard}', which is not a plain file name", e.Message);
    }

    [Fact]
    public void IndexAndShardsMustAgree()
    {
        using var dir = new TempDir();
        string m = TinyModels.Create(dir["m"], maxShardBytes: 4096);
        string indexPath = Path.Combine(m, "model.safetensors.index.json");
        var index = JsonNode.Parse(File.ReadAllText(indexPath))!;
        string firstShard = (string)index["weight_map"]!["model.embed_tokens.weight"]!;
        index["weight_map"]!["model.norm.weight"] = firstShard;
        File.WriteAllText(indexPath, index.ToJsonString());
        // Either side of the disagreement may be found first; both name the tensor.
        var e = Assert.Throws<IrrException>(() => ModelDirectory.Open(m));
        Assert.Contains("'model.norm.weight'", e.Message);
        Assert.True(e.Message.Contains("says 'model.norm.weight' is in") || e.Message.Contains("does not assign to this shard"), e.Message);
    }

    [Fact]
    public void TensorMissingFromTheCheckpointIsNamed()
    {
        using var dir = new TempDir();
        string m = TinyModels.Create(dir["m"], include: (name, _) => name != "model.layers.1.mlp.down_proj.weight");
        var e = Assert.Throws<IrrException>(() => ModelDirectory.Open(m));
        Assert.Contains("tensors do not match config.json", e.Message);
        Assert.Contains("missing model.layers.1.mlp.down_proj.weight [16, 40]", e.Message);
        using var unchecked_ = ModelDirectory.Open(m, validate: false); // inspect --no-check still works
    }

    [Fact]
    public void TensorNotInTheConfigAndWrongShapesAreNamed()
    {
        using var dir = new TempDir();
        // A checkpoint with 3 layers under a config that says 2: layer 2 is unexpected.
        string three = WithConfig(TinyModels.LlamaConfig, o => o["num_hidden_layers"] = 3);
        string m = TinyModels.Create(dir["m"], three);
        File.WriteAllText(Path.Combine(m, "config.json"), TinyModels.LlamaConfig);
        var e = Assert.Throws<IrrException>(() => ModelDirectory.Open(m));
        Assert.Contains("unexpected model.layers.2.", e.Message);
        Assert.Contains("and 6 more", e.Message); // 9 tensors per layer

        // The same checkpoint under a config with another intermediate size: shapes disagree.
        File.WriteAllText(Path.Combine(m, "config.json"), WithConfig(three, o => o["intermediate_size"] = 48));
        var shapes = Assert.Throws<IrrException>(() => ModelDirectory.Open(m));
        Assert.Contains("model.layers.0.mlp.gate_proj.weight is [40, 16], config.json implies [48, 16]", shapes.Message);
    }

    [Fact]
    public void MismatchedShapesBetweenTwoModels()
    {
        using var dir = new TempDir();
        using var a = ModelDirectory.Open(TinyModels.Create(dir["a"]));
        using var same = ModelDirectory.Open(TinyModels.Create(dir["same"], seed: 9));
        Architecture.RequireSame(new CheckpointWeights(a, owns: false), new CheckpointWeights(same, owns: false));
        using var wider = ModelDirectory.Open(TinyModels.Create(dir["wider"], WithConfig(TinyModels.LlamaConfig, o => o["intermediate_size"] = 48)));
        var e = Assert.Throws<IrrException>(() => Architecture.RequireSame(new CheckpointWeights(a, owns: false), new CheckpointWeights(wider, owns: false)));
        Assert.Contains("does not share the architecture", e.Message);
        Assert.Contains("intermediate_size 48, not 40", e.Message);
    }

    [Fact]
    public void BrokenPickleWeightsAreRefusedNamingTheFile()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["p"]);
        File.WriteAllText(dir["p/config.json"], TinyModels.LlamaConfig);
        File.WriteAllBytes(dir["p/pytorch_model.bin"], [0x80, 0x02]);
        var e = Assert.Throws<IrrException>(() => ModelDirectory.Open(dir["p"]));
        Assert.Equal($"{dir["p/pytorch_model.bin"]}: magic number pickle is cut short (the file is truncated?)", e.Message);
        Assert.Contains("no config.json", Assert.Throws<IrrException>(() => ModelDirectory.Open(dir.Path)).Message);
    }

    [Fact]
    public void AuxiliaryFilesAreCopiedAndWeightsAreNot()
    {
        using var dir = new TempDir();
        string m = TinyModels.Create(dir["m"], maxShardBytes: 4096);
        File.WriteAllText(Path.Combine(m, "tokenizer.json"), "{}");
        File.WriteAllText(Path.Combine(m, ".hidden"), "x");
        File.WriteAllBytes(Path.Combine(m, "pytorch_model.bin"), [1]);
        Directory.CreateDirectory(Path.Combine(m, "original"));
        using (var output = OutputDirectory.Create(dir["copy"], [m]))
        {
            ModelDirectory.CopyAuxiliaryFiles(m, output, except: ["config.json"]);
            output.Commit();
        }
        Assert.Equal(["generation_config.json", "tokenizer.json", "tokenizer_config.json"],
            Directory.GetFileSystemEntries(dir["copy"]).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }
}
