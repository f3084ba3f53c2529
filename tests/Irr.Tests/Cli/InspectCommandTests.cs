using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Tests.IO;

namespace Irr.Tests.Cli;

public class InspectCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    [Fact]
    public void DescribesAModel()
    {
        using var dir = new TempDir();
        string m = TinyModels.Create(dir["m"], maxShardBytes: 8192);
        var (code, output, error) = Run("inspect", m);
        Assert.True(code == 0, error);
        Assert.Contains("Architecture  LlamaForCausalLM (llama)", output);
        Assert.Contains("Layers        2", output);
        Assert.Contains("Heads         4 query, 2 key/value, head_dim 4", output);
        Assert.Contains("Parameters    7,504 (7.50 K)", output);
        Assert.Contains("stored as BF16 (", output);
        Assert.Contains("Shards        ", output);
        long bytes = Directory.GetFiles(m, "*.safetensors").Sum(f => new FileInfo(f).Length);
        Assert.Contains($"Size          {bytes:N0} bytes", output);
    }

    [Fact]
    public void ShowsWhatSetsEachFamilyApart()
    {
        using var dir = new TempDir();
        string Model(string name, string variant) => TinyModels.Create(dir[name], Irr.Tests.Model.TransformerTests.ConfigOf(variant).Json.ToJsonString());
        string Rows(string model)
        {
            var (code, output, error) = Run("inspect", model);
            Assert.True(code == 0, error);
            return output.Replace("\r", "");
        }

        var llama = Rows(TinyModels.Create(dir["llama"]));
        Assert.Contains("Activation    silu (SwiGLU)\n", llama);
        Assert.Contains("Attention     full causal\n", llama);
        Assert.Contains("Modules       q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj\n", llama);
        Assert.DoesNotContain("Soft-caps", llama);
        Assert.DoesNotContain("Norms", llama);
        Assert.DoesNotContain("Projections", llama);

        // Gemma-2: GeGLU, a window in layer 0, query_pre_attn_scalar 3, caps 1.5 and 2, (1 + w) sandwich norms
        var gemma2 = Rows(Model("gemma2", "gemma2"));
        Assert.Contains("Architecture  Gemma2ForCausalLM (gemma2)", gemma2);
        Assert.Contains("Activation    gelu_pytorch_tanh (GeGLU)", gemma2);
        Assert.Contains("Attention     sliding window 2 in 1 of 2 layers (full: 1); scores × query_pre_attn_scalar^-½ (3)\n", gemma2);
        Assert.Contains("Soft-caps     attention scores 1.5, final logits 2 (c·tanh(x/c))", gemma2);
        Assert.Contains("Norms         RMSNorm x̂·(1 + w) in float32; four per layer (input, post-attention, pre- and post-feedforward); embeddings × √hidden_size", gemma2);
        Assert.Contains("embeddings tied to lm_head", gemma2);

        // Gemma-3: qk-norm, the local rope base of the sliding layer, linear scaling on the global one
        var gemma3 = Rows(Model("gemma3", "gemma3"));
        Assert.Contains("RoPE          theta 100, linear scaling ×3 (global layers); sliding layers theta 7, unscaled", gemma3);
        Assert.Contains("q_norm/k_norm per head before RoPE", gemma3);
        Assert.Contains("Soft-caps     final logits 2.5 (c·tanh(x/c))", gemma3);

        // Qwen3: qk-norm, no caps, no Gemma norms
        var qwen3 = Rows(Model("qwen3", "qwen3"));
        Assert.Contains("Attention     full causal; q_norm/k_norm per head before RoPE\n", qwen3);
        Assert.Contains("head_dim 6", qwen3);
        Assert.DoesNotContain("Norms", qwen3);

        // Phi-3: fused projections, a window in every layer; longrope's switch and attention factor √(1 + ln 4 / ln 4)
        var phi3 = Rows(Model("phi3", "phi3"));
        Assert.Contains("Attention     sliding window 3 in every layer\n", phi3);
        Assert.Contains("Projections   fused qkv_proj (q, k, v rows) and gate_up_proj (gate, up rows)", phi3);
        Assert.Contains("Modules       qkv_proj, o_proj, gate_up_proj, down_proj\n", phi3);
        var longrope = Rows(Model("longrope", "phi3-longrope"));
        Assert.Contains("RoPE          theta 100, longrope (long factors beyond 4 positions, ×4.00 context, attention factor 1.4142)", longrope);

        var (_, json, _) = Run("inspect", dir["longrope"], "--json");
        var d = JsonNode.Parse(json)!;
        Assert.Equal("longrope", (string)d["rope_scaling"]!["rope_type"]!);
        Assert.Equal(4, (int)d["rope_scaling"]!["original_max_position_embeddings"]!);
        Assert.Equal(Math.Sqrt(2), (double)d["rope_scaling"]!["attention_factor"]!, 12);
        Assert.True((bool)d["fused_projections"]!);
        Assert.Equal([0, 0], d["sliding_windows"]!.AsArray().Select(x => (int)x!));
        (_, json, _) = Run("inspect", dir["gemma3"], "--json");
        d = JsonNode.Parse(json)!;
        Assert.Equal(7.0, (double)d["rope_local_base_freq"]!);
        Assert.Equal([3, 0], d["sliding_windows"]!.AsArray().Select(x => (int)x!));
        Assert.True((bool)d["qk_norm"]!);
        Assert.Equal(1f, (float)d["norm_weight_offset"]!);

        // transformers v5's rope_parameters keyed by layer type: the global layers' base and scaling, the local base
        string v5 = TinyModels.Create(dir["v5"], Irr.Tests.Model.TransformerTests.Variant(Irr.Tests.Model.TransformerTests.Tiny, o =>
        {
            o["architectures"] = new JsonArray("Gemma3ForCausalLM"); o["model_type"] = "gemma3_text"; o.Remove("rope_theta");
            o["layer_types"] = new JsonArray("sliding_attention", "full_attention");
            o["rope_parameters"] = JsonNode.Parse("""
                {"full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 500000.0}, "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}
                """);
        }));
        Assert.Contains("RoPE          theta 500000, linear scaling ×8 (global layers); sliding layers theta 10000, unscaled", Rows(v5));
    }

    [Fact]
    public void JsonOutputIsMachineReadable()
    {
        using var dir = new TempDir();
        string m = TinyModels.Create(dir["m"]);
        var (code, output, _) = Run("inspect", m, "--json", "--tensors");
        Assert.Equal(0, code);
        var d = JsonNode.Parse(output)!;
        Assert.Equal("model", (string)d["kind"]!);
        Assert.Equal(2, (int)d["num_hidden_layers"]!);
        Assert.Equal(16, (int)d["hidden_size"]!);
        Assert.Equal(2, (int)d["num_key_value_heads"]!);
        Assert.Equal(TinyModels.LlamaParameters, (long)d["parameters"]!);
        Assert.Equal(2 + 9 * 2 + 1, (int)d["tensor_count"]!); // embed, lm_head, 9 per layer, final norm
        var tensors = d["tensors"]!.AsArray();
        var down = tensors.Single(t => (string)t!["name"]! == "model.layers.1.mlp.down_proj.weight")!;
        Assert.Equal("BF16", (string)down["dtype"]!);
        Assert.Equal([16L, 40L], down["shape"]!.AsArray().Select(x => (long)x!));
    }

    [Fact]
    public void TensorListShowsNameDTypeAndShape()
    {
        using var dir = new TempDir();
        string m = TinyModels.Create(dir["m"], dtype: TensorDType.F16);
        var (code, output, _) = Run("inspect", m, "--tensors");
        Assert.Equal(0, code);
        var line = output.Split('\n').Single(l => l.StartsWith("model.layers.0.self_attn.k_proj.weight ", StringComparison.Ordinal));
        Assert.Matches(@"^model\.layers\.0\.self_attn\.k_proj\.weight\s+F16\s+\[8, 16\]$", line.TrimEnd());
    }

    [Fact]
    public void DescribesAnAdapterAndASafetensorsFile()
    {
        using var dir = new TempDir();
        string m = TinyModels.Create(dir["m"]);
        var config = LoraConfig.Create(4, 16, ["q_proj", "v_proj"], "meta-llama/Llama-2-7b-chat-hf");
        LoraAdapter.Write(dir["a"], config,
            [("model.layers.0.self_attn.q_proj.weight", new float[4 * 16], new float[16 * 4], 16, 16),
             ("model.layers.0.self_attn.v_proj.weight", new float[4 * 16], new float[8 * 4], 8, 16)], TensorDType.BF16, [m]);
        var (code, output, _) = Run("inspect", dir["a"]);
        Assert.Equal(0, code);
        Assert.Contains("LoRA adapter", output);
        Assert.Contains("r 4, alpha 16, scale 4.00 (alpha/r)", output);
        Assert.Contains("Targets         q_proj, v_proj", output);
        Assert.Contains("Adapted layers  2", output);
        Assert.Contains("meta-llama/Llama-2-7b-chat-hf", output);
        Assert.Contains("Parameters      224\n", output.Replace("\r", "")); // A 4·16 + B 16·4 (q_proj), A 4·16 + B 8·4 (v_proj)

        // PEFT's "all-linear" is a keyword, not a regular expression
        AdapterFiles.Write(dir["all"], """{"peft_type":"LORA","r":2,"lora_alpha":4,"target_modules":"all-linear"}""", []);
        (code, output, _) = Run("inspect", dir["all"]);
        Assert.Equal(0, code);
        Assert.Contains("Targets         all-linear (every linear module but the head)", output);

        (code, output, _) = Run("inspect", Path.Combine(m, "model.safetensors"), "--json");
        Assert.Equal(0, code);
        var d = JsonNode.Parse(output)!;
        Assert.Equal("safetensors", (string)d["kind"]!);
        Assert.Equal("pt", (string)d["metadata"]!["format"]!);
        Assert.Equal(TinyModels.LlamaParameters, (long)d["parameters"]!);
    }

    [Fact]
    public void BadInputExitsWithTwoAndOneLineNamingTheFile()
    {
        using var dir = new TempDir();
        string bad = RawSafetensors.Write(dir["broken.safetensors"], "{\"w\":", []);
        var (code, output, error) = Run("inspect", bad);
        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.StartsWith($"error: {bad}: header is not valid JSON", error);
        Assert.Single(error.TrimEnd().Split('\n'));

        (code, _, error) = Run("inspect", dir["nothing-here"]);
        Assert.Equal(2, code);
        Assert.Contains("no such file or directory", error);

        string m = TinyModels.Create(dir["m"], include: (n, _) => n != "model.norm.weight");
        (code, _, error) = Run("inspect", m);
        Assert.Equal(2, code);
        Assert.Contains("missing model.norm.weight [16]", error);
        (code, var listing, _) = Run("inspect", m, "--no-check");
        Assert.Equal(0, code);
        Assert.Contains("not checked against config.json", listing);
    }

    public static TheoryData<string> BadInputs() => new()
    {
        "truncated", "header-too-long", "broken-json", "overlap", "out-of-range", "unknown-dtype",
        "missing-shard", "index-outside", "tensor-missing", "tensor-extra",
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void EveryKindOfBadInputIsOneLineAndExitCodeTwo(string kind)
    {
        using var dir = new TempDir();
        string F32(string name, string offsets, int count) => $$$"""{"{{{name}}}":{"dtype":"F32","shape":[{{{count}}}],"data_offsets":{{{offsets}}}}}""";
        string path = kind switch
        {
            "truncated" => WriteBytes(dir["t.safetensors"], RawSafetensors.Build(F32("w", "[0,16]", 4), new byte[16])[..^3]),
            "header-too-long" => WriteBytes(dir["h.safetensors"], [0xFF, 0xFF, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'}']),
            "broken-json" => RawSafetensors.Write(dir["j.safetensors"], "{\"w\": [", []),
            "overlap" => RawSafetensors.Write(dir["o.safetensors"], """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", new byte[12]),
            "out-of-range" => RawSafetensors.Write(dir["r.safetensors"], F32("w", "[8,24]", 4), new byte[16]),
            "unknown-dtype" => RawSafetensors.Write(dir["d.safetensors"], """{"w":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}""", new byte[1]),
            _ => dir["m"],
        };
        if (kind is "missing-shard" or "index-outside")
        {
            TinyModels.Create(path, maxShardBytes: 4096);
            if (kind == "missing-shard") File.Delete(Directory.GetFiles(path, "model-00003-of-*")[0]);
            else
            {
                string index = Path.Combine(path, "model.safetensors.index.json");
                File.WriteAllText(index, File.ReadAllText(index).Replace("\"model-00001-of-", "\"../model-00001-of-"));
            }
        }
        if (kind == "tensor-missing") TinyModels.Create(path, include: (n, _) => n != "model.layers.0.mlp.gate_proj.weight");
        if (kind == "tensor-extra")
        {
            TinyModels.Create(path, TinyModels.LlamaConfig.Replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3"));
            File.WriteAllText(Path.Combine(path, "config.json"), TinyModels.LlamaConfig);
        }

        var (code, output, error) = Run("inspect", path);
        Assert.Equal(2, code);
        Assert.Equal("", output);
        var lines = error.TrimEnd().Split('\n');
        Assert.Single(lines);
        Assert.StartsWith("error: " + path, lines[0]);
        Assert.DoesNotContain("Exception", lines[0]);
    }

    private static string WriteBytes(string path, byte[] bytes)
    {
        File.WriteAllBytes(path, bytes);
        return path;
    }
}
