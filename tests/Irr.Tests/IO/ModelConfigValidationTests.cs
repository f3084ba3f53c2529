using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Tests.Text;
using Irr.Tests.Model;

namespace Irr.Tests.IO;

/// <summary>
/// Values of config.json that make no model are refused by name (issue 24), before anything is sized by them. The
/// reference for what a value means is transformers' config classes and modeling_rope_utils: where transformers raises
/// (layer_types of another length, a missing rope key) irr refuses too; where it only warns or accepts a value that gives
/// NaN or a division by zero (rope_theta ≤ 0, rms_norm_eps &lt; 0, a factor ≤ 0, llama3's high_freq_factor ≤ low_freq_factor)
/// irr is stricter and refuses.
/// </summary>
public class ModelConfigValidationTests
{
    private static string With(Action<JsonObject> edit)
    {
        var o = JsonNode.Parse(TinyModels.LlamaConfig)!.AsObject();
        edit(o);
        return o.ToJsonString();
    }

    private static string Refused(string json)
    {
        var e = Assert.Throws<IrrException>(() => ModelConfig.Parse(json, "dir/config.json"));
        Assert.StartsWith("dir/config.json", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        return e.Message;
    }

    [Theory]
    [InlineData("num_hidden_layers", "1000000000", "IRR_MAX_LAYERS")]
    [InlineData("num_hidden_layers", "0", "must be positive")]
    [InlineData("num_hidden_layers", "-3", "must be positive")]
    [InlineData("hidden_size", "0", "must be positive")]
    [InlineData("hidden_size", "-16", "must be positive")]
    [InlineData("hidden_size", "1073741824", "IRR_MAX_MODEL_DIM")]
    [InlineData("intermediate_size", "2000000000", "IRR_MAX_MODEL_DIM")]
    [InlineData("intermediate_size", "0", "must be positive")]
    [InlineData("num_attention_heads", "0", "must be positive")]
    [InlineData("num_key_value_heads", "-2", "must be positive")]
    [InlineData("num_key_value_heads", "3", "not a positive multiple")]
    [InlineData("num_key_value_heads", "8", "not a positive multiple")]
    [InlineData("head_dim", "0", "must be positive")]
    [InlineData("head_dim", "5", "odd")]
    [InlineData("head_dim", "200000", "num_attention_heads × head_dim")]
    [InlineData("vocab_size", "0", "must be positive")]
    [InlineData("vocab_size", "2147483647", "IRR_MAX_VOCAB_SIZE")]
    [InlineData("vocab_size", "2147483648", "from -2,147,483,648 to 2,147,483,647")]
    [InlineData("vocab_size", "1e300", "an integer")]
    [InlineData("num_hidden_layers", "\"2\"", "an integer")]
    [InlineData("num_hidden_layers", "2.5", "an integer")]
    [InlineData("max_position_embeddings", "0", "must be positive")]
    [InlineData("max_position_embeddings", "-1", "must be positive")]
    [InlineData("rope_theta", "0", "rope_theta 0 must be positive")]
    [InlineData("rope_theta", "-10000", "must be positive")]
    [InlineData("rope_theta", "1e400", "a finite number")]
    [InlineData("rms_norm_eps", "-1e-05", "must not be negative")]
    [InlineData("rms_norm_eps", "-1e400", "a finite number")]
    [InlineData("rms_norm_eps", "\"1e-5\"", "a number")]
    public void ASizeOrConstantThatMakesNoModelIsRefusedByName(string key, string value, string expected)
    {
        string message = Refused(With(o => o[key] = JsonNode.Parse(value)));
        Assert.Contains(key, message);
        Assert.Contains(expected, message);
    }

    [Theory]
    [InlineData("""{"rope_type": "linear", "factor": 0}""", "factor 0 must be positive")]
    [InlineData("""{"rope_type": "linear", "factor": -2}""", "factor -2 must be positive")]
    [InlineData("""{"rope_type": "linear", "factor": 1e999}""", "a finite number")]
    [InlineData("""{"rope_type": "linear"}""", "missing \"factor\"")]
    [InlineData("""{"rope_type": "llama3", "factor": 8, "low_freq_factor": 4, "high_freq_factor": 4, "original_max_position_embeddings": 8192}""", "high_freq_factor 4 must be greater than low_freq_factor 4")]
    [InlineData("""{"rope_type": "llama3", "factor": 8, "low_freq_factor": 4, "high_freq_factor": 1, "original_max_position_embeddings": 8192}""", "must be greater than")]
    [InlineData("""{"rope_type": "llama3", "factor": 8, "low_freq_factor": 0, "high_freq_factor": 4, "original_max_position_embeddings": 8192}""", "low_freq_factor 0 must be positive")]
    [InlineData("""{"rope_type": "llama3", "factor": 0, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 8192}""", "factor 0 must be positive")]
    [InlineData("""{"rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 0}""", "original_max_position_embeddings 0 must be positive")]
    [InlineData("""{"rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 1e10}""", "original_max_position_embeddings")]
    public void RopeScalingThatGivesNaNOrDividesByZeroIsRefused(string scaling, string expected)
    {
        string message = Refused(With(o => o["rope_scaling"] = JsonNode.Parse(scaling)));
        Assert.Contains("rope_scaling", message);
        Assert.Contains(expected, message);
        // transformers v5's rope_parameters holds the same keys
        message = Refused(With(o => o["rope_parameters"] = JsonNode.Parse(scaling)));
        Assert.Contains("rope_parameters", message);
    }

    [Fact]
    public void RopeThetaInsideRopeParametersIsCheckedToo() =>
        Assert.Contains("rope_theta -1 must be positive", Refused(With(o => o["rope_parameters"] = JsonNode.Parse("""{"rope_type": "default", "rope_theta": -1}"""))));

    [Theory]
    [InlineData("llama", """["full_attention"]""", "layer_types has 1 entries for 2 layers")]
    [InlineData("mistral", """["full_attention", "full_attention", "full_attention"]""", "layer_types has 3 entries for 2 layers")]
    [InlineData("qwen2", """[]""", "layer_types has 0 entries for 2 layers")]
    [InlineData("qwen2", """["full_attention", "chunked_attention"]""", "layer_types[1] 'chunked_attention' is not supported")]
    [InlineData("qwen2", """["full_attention", 1]""", "layer_types[1] must be a string")]
    [InlineData("qwen2", "\"full_attention\"", "layer_types must be a list")]
    public void LayerTypesOfAnotherLengthAreRefusedAsTransformersDoes(string modelType, string types, string expected)
    {
        // transformers' layer_type_validation raises ValueError for a list whose length is not num_hidden_layers
        string message = Refused(With(o =>
        {
            o["model_type"] = modelType;
            o["architectures"] = new JsonArray(modelType switch { "llama" => "LlamaForCausalLM", "mistral" => "MistralForCausalLM", _ => "Qwen2ForCausalLM" });
            o["layer_types"] = JsonNode.Parse(types);
        }));
        Assert.Contains(expected, message);
    }

    [Fact]
    public void RmsNormEpsZeroAndSmallRopeFactorsAreAcceptedAsTransformersAccepts()
    {
        // eps = 0 is valid arithmetic (transformers takes it); a linear factor of 0.5 compresses positions (transformers warns).
        var c = ModelConfig.Parse(With(o =>
        {
            o["rms_norm_eps"] = 0;
            o["rope_scaling"] = JsonNode.Parse("""{"rope_type": "linear", "factor": 0.5}""");
        }), "config.json");
        Assert.Equal(0, c.RmsNormEps);
        Assert.Equal(0.5, c.RopeScaling!.Factor);
    }

    [SharedFixtureTheory("configs/qwen2.5-0.5b-instruct/config.json")]
    [InlineData("configs/llama-3.2-1b-instruct/config.json", 16, 32.0)]
    [InlineData("configs/qwen2.5-0.5b-instruct/config.json", 24, null)]
    public void RealConfigsStillLoad(string relative, int layers, double? factor)
    {
        var c = ModelConfig.Load(Fixtures.Shared(relative));
        Assert.Equal(layers, c.NumHiddenLayers);
        Assert.Equal(factor, c.RopeScaling?.Factor);
    }

    // ---- the families of issue 26: real configs read as transformers reads them, and every refusal by name ----------

    private static readonly Dictionary<string, string> ArchitectureOf = new()
    {
        ["llama"] = "LlamaForCausalLM", ["mistral"] = "MistralForCausalLM", ["qwen2"] = "Qwen2ForCausalLM", ["qwen3"] = "Qwen3ForCausalLM", ["gemma2"] = "Gemma2ForCausalLM",
        ["gemma3_text"] = "Gemma3ForCausalLM", ["phi3"] = "Phi3ForCausalLM",
    };

    // The tiny config (hidden 8, 2 heads of 4, 1 KV head, 2 layers) as a model of `modelType`, edited
    private static string Family(string modelType, Action<JsonObject>? edit = null) => TransformerTests.Variant(TransformerTests.Tiny, o =>
    {
        o["architectures"] = new JsonArray(ArchitectureOf[modelType]);
        o["model_type"] = modelType;
        edit?.Invoke(o);
    });

    private static ModelConfig Parsed(string json) => ModelConfig.Parse(json, "dir/config.json");

    [SharedFixtureFact("configs/gemma-2-2b-it/config.json")]
    public void Gemma2sRealConfigReadsAsTransformersReadsIt()
    {
        var c = ModelConfig.Load(Fixtures.Shared("configs/gemma-2-2b-it/config.json"));
        Assert.Equal(("Gemma2ForCausalLM", "gemma2"), (c.Architecture, c.ModelType));
        Assert.True(c.TieWordEmbeddings);                      // absent: Gemma2Config's default is True
        Assert.Equal(256, c.HeadDim);                          // given, ≠ 2304 / 8 = 288
        Assert.Equal((8, 4), (c.NumAttentionHeads, c.NumKeyValueHeads));
        // layer_types absent: "sliding_attention" if (i + 1) % 2 else "full_attention" — layers 0, 2, … slide
        Assert.Equal(Enumerable.Range(0, 26).Select(i => i % 2 == 0 ? 4096 : 0), c.SlidingWindows);
        Assert.Equal((50.0, 30.0), (c.AttnLogitSoftcapping, c.FinalLogitSoftcapping));
        Assert.Equal(256.0, c.QueryPreAttnScalar);
        Assert.Equal("gelu_pytorch_tanh", c.HiddenAct);        // hidden_activation (hidden_act is a legacy key Gemma2MLP does not read)
        Assert.Equal(1e-6, c.RmsNormEps);
        Assert.Equal(1f, c.NormWeightOffset);
        Assert.True(c.SandwichNorms && c.ScaleEmbeddings);
        Assert.False(c.QkNorm || c.FusedProjections || c.QkvBias || c.OutputBias);
        Assert.All(Enumerable.Range(0, 26), l => Assert.Equal(new RotaryParameters(10000.0, null), c.RotaryOf(l)));
        Assert.Equal(8192, c.MaxPositionEmbeddings);
        Assert.Equal(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], c.LinearModules);
        Assert.Equal(["model.layers.3.input_layernorm.weight", "model.layers.3.post_attention_layernorm.weight",
            "model.layers.3.pre_feedforward_layernorm.weight", "model.layers.3.post_feedforward_layernorm.weight"], c.NormWeightNames(3));
        Assert.DoesNotContain(c.ExpectedTensors(), t => t.Name == "lm_head.weight");
    }

    [SharedFixtureFact("tokenizers/gemma-3-1b-it/config.json")]
    public void Gemma3sRealConfigReadsAsTransformersReadsIt()
    {
        var c = ModelConfig.Load(Fixtures.Shared("tokenizers/gemma-3-1b-it/config.json"));
        Assert.Equal(("Gemma3ForCausalLM", "gemma3_text"), (c.Architecture, c.ModelType));
        Assert.True(c.TieWordEmbeddings);
        Assert.Equal((4, 1, 256), (c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim));
        // sliding_window_pattern 6: every 6th layer (5, 11, 17, 23) global, the others a window of 512
        int[] global = [5, 11, 17, 23];
        Assert.Equal(Enumerable.Range(0, 26).Select(i => global.Contains(i) ? 0 : 512), c.SlidingWindows);
        // local layers rope_local_base_freq 10000, global ones rope_theta 1e6 (rope_scaling null)
        Assert.All(Enumerable.Range(0, 26), l => Assert.Equal(new RotaryParameters(global.Contains(l) ? 1_000_000.0 : 10000.0, null), c.RotaryOf(l)));
        Assert.Null(c.AttnLogitSoftcapping);                   // null in the file (Gemma3TextConfig's default too)
        Assert.Null(c.FinalLogitSoftcapping);
        Assert.Equal(256.0, c.QueryPreAttnScalar);
        Assert.True(c.QkNorm && c.SandwichNorms && c.ScaleEmbeddings);
        Assert.Equal(1f, c.NormWeightOffset);
        Assert.Equal("gelu_pytorch_tanh", c.HiddenAct);
        Assert.Equal(1e-6, c.RmsNormEps);
        Assert.Equal(32768, c.MaxPositionEmbeddings);
        Assert.Equal(["model.layers.0.input_layernorm.weight", "model.layers.0.self_attn.q_norm.weight", "model.layers.0.self_attn.k_norm.weight",
            "model.layers.0.post_attention_layernorm.weight", "model.layers.0.pre_feedforward_layernorm.weight",
            "model.layers.0.post_feedforward_layernorm.weight"], c.NormWeightNames(0));
    }

    [SharedFixtureFact("tokenizers/qwen3-0.6b/config.json")]
    public void Qwen3sRealConfigReadsAsTransformersReadsIt()
    {
        var c = ModelConfig.Load(Fixtures.Shared("tokenizers/qwen3-0.6b/config.json"));
        Assert.Equal(("Qwen3ForCausalLM", "qwen3"), (c.Architecture, c.ModelType));
        Assert.Equal(128, c.HeadDim);                          // ≠ 1024 / 16 = 64
        Assert.Equal((16 * 128, 1024), c.LinearShape("q_proj"));
        Assert.Equal((1024, 16 * 128), c.LinearShape("o_proj"));
        Assert.Equal((8 * 128, 1024), c.LinearShape("k_proj"));
        Assert.True(c.TieWordEmbeddings);
        Assert.True(c.QkNorm);
        Assert.False(c.SandwichNorms || c.ScaleEmbeddings || c.FusedProjections || c.QkvBias || c.OutputBias);
        Assert.Equal(0f, c.NormWeightOffset);
        Assert.Equal("silu", c.HiddenAct);
        Assert.All(c.SlidingWindows, w => Assert.Equal(0, w)); // use_sliding_window false
        Assert.Equal(28, c.SlidingWindows.Count);
        Assert.Null(c.AttnLogitSoftcapping);
        Assert.Null(c.FinalLogitSoftcapping);
        Assert.Null(c.QueryPreAttnScalar);                     // scores × head_dim^-½
        Assert.Equal(1_000_000.0, c.RopeTheta);
        Assert.Null(c.RopeScaling);
        Assert.Equal(1e-6, c.RmsNormEps);
        Assert.Contains(c.ExpectedTensors(), t => t.Name == "model.layers.0.self_attn.k_norm.weight" && t.Shape.SequenceEqual([128L]));
    }

    [SharedFixtureFact("tokenizers/phi-3-mini-4k-instruct/config.json")]
    public void Phi3sRealConfigReadsAsTransformersReadsIt()
    {
        var c = ModelConfig.Load(Fixtures.Shared("tokenizers/phi-3-mini-4k-instruct/config.json"));
        Assert.Equal(("Phi3ForCausalLM", "phi3"), (c.Architecture, c.ModelType));
        Assert.Equal(Enumerable.Repeat(2047, 32), c.SlidingWindows); // sliding_window in every layer
        Assert.True(c.FusedProjections);
        Assert.Equal(["qkv_proj", "o_proj", "gate_up_proj", "down_proj"], c.LinearModules);
        Assert.Equal((3 * 3072, 3072), c.LinearShape("qkv_proj"));  // 32 heads and 32 KV heads of 96
        Assert.Equal((2 * 8192, 3072), c.LinearShape("gate_up_proj"));
        Assert.Equal("model.layers.7.self_attn.qkv_proj.weight", ModelConfig.LinearWeightName(7, "qkv_proj"));
        Assert.Equal("model.layers.7.mlp.gate_up_proj.weight", ModelConfig.LinearWeightName(7, "gate_up_proj"));
        Assert.False(c.TieWordEmbeddings);
        Assert.Equal(1e-5, c.RmsNormEps);
        Assert.Null(c.RopeScaling);
        Assert.Equal(10000.0, c.RopeTheta);
        Assert.False(c.QkNorm || c.SandwichNorms || c.ScaleEmbeddings || c.QkvBias || c.OutputBias || c.MlpBias);
        Assert.Null(c.AttnLogitSoftcapping);
        Assert.Contains(c.ExpectedTensors(), t => t.Name == "lm_head.weight");
        Assert.DoesNotContain(c.ExpectedTensors(), t => t.Name.Contains("q_proj") || t.Name.Contains(".gate_proj"));
    }

    [Theory]
    [InlineData("qwen3", 1e-6, 10000.0, false, 32768)]
    [InlineData("gemma2", 1e-6, 10000.0, true, 8192)]
    [InlineData("gemma3_text", 1e-6, 1_000_000.0, true, 131072)]
    [InlineData("phi3", 1e-5, 10000.0, false, 4096)]
    public void AbsentKeysTakeTheirFamilysTransformersDefaults(string modelType, double eps, double theta, bool tied, int maxPositions)
    {
        var c = Parsed(Family(modelType, o => { o.Remove("rms_norm_eps"); o.Remove("rope_theta"); }));
        Assert.Equal((eps, theta, tied, maxPositions), (c.RmsNormEps, c.RopeTheta, c.TieWordEmbeddings, c.MaxPositionEmbeddings));
        bool gemma = modelType.StartsWith("gemma", StringComparison.Ordinal);
        Assert.Equal(gemma ? "gelu_pytorch_tanh" : "silu", c.HiddenAct);
        Assert.Equal(gemma ? 256.0 : null, c.QueryPreAttnScalar);
        // Gemma2Config's caps are 50 and 30; Gemma3TextConfig's None
        Assert.Equal(modelType == "gemma2" ? 50.0 : null, c.AttnLogitSoftcapping);
        Assert.Equal(modelType == "gemma2" ? 30.0 : null, c.FinalLogitSoftcapping);
        // sliding_window absent: Gemma's 4096 in its sliding layers (Gemma-2 from layer 0; Gemma-3 all but every 6th);
        // Qwen3's only with use_sliding_window; Phi3Config's None
        int[] expected = modelType switch { "gemma2" => [4096, 0], "gemma3_text" => [4096, 4096], _ => [0, 0] };
        Assert.Equal(expected, c.SlidingWindows);
        if (modelType == "gemma3_text")
        {
            Assert.Equal(new RotaryParameters(10000.0, null), c.RotaryOf(0)); // rope_local_base_freq's default
            Assert.Equal(new RotaryParameters(10000.0, null), c.RotaryOf(1));
        }
    }

    [Fact]
    public void Gemma3sLayerTypesAndPatternAndTheRopeOfEachKind()
    {
        var byPattern = Parsed(Family("gemma3_text", o => { o["num_hidden_layers"] = 7; o["sliding_window_pattern"] = 3; o["sliding_window"] = 5; }));
        Assert.Equal([5, 5, 0, 5, 5, 0, 5], byPattern.SlidingWindows);
        var byTypes = Parsed(Family("gemma3_text", o =>
        {
            o["layer_types"] = new JsonArray("full_attention", "sliding_attention"); o["sliding_window"] = 5; o["rope_theta"] = 5e5;
            o["rope_local_base_freq"] = 321.0; o["rope_scaling"] = new JsonObject { ["rope_type"] = "linear", ["factor"] = 8.0 };
        }));
        Assert.Equal([0, 5], byTypes.SlidingWindows);
        Assert.Equal(5e5, byTypes.RotaryOf(0).Theta);
        Assert.Equal(("linear", 8.0), (byTypes.RotaryOf(0).Scaling!.Type, byTypes.RotaryOf(0).Scaling!.Factor)); // scaling on global layers only
        Assert.Equal(new RotaryParameters(321.0, null), byTypes.RotaryOf(1));
        // transformers v5: rope_parameters keyed by layer type
        var v5 = Parsed(Family("gemma3_text", o =>
        {
            o.Remove("rope_theta");
            o["layer_types"] = new JsonArray("sliding_attention", "full_attention");
            o["rope_parameters"] = JsonNode.Parse("""
                {"full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0},
                 "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}
                """);
        }));
        Assert.Equal(new RotaryParameters(10000.0, null), v5.RotaryOf(0));
        Assert.Equal(1_000_000.0, v5.RotaryOf(1).Theta);
        Assert.Equal(("linear", 8.0), (v5.RotaryOf(1).Scaling!.Type, v5.RotaryOf(1).Scaling!.Factor));
    }

    [Fact]
    public void Phi3sLongRopeIsReadAsTransformersComputesIt()
    {
        // "su" (and "yarn") are Phi3Config's older names of longrope; the ratio and attention factor come from
        // max_position_embeddings / original_max_position_embeddings (_compute_longrope_parameters), not rope_scaling's factor
        foreach (string type in new[] { "longrope", "su", "yarn" })
        {
            var c = Parsed(Family("phi3", o =>
            {
                o["max_position_embeddings"] = 131072; o["original_max_position_embeddings"] = 4096;
                o["rope_scaling"] = new JsonObject { ["type"] = type, ["short_factor"] = new JsonArray(1.0, 1.5), ["long_factor"] = new JsonArray(2.0, 5.0), ["factor"] = 99.0 };
            }));
            var s = c.RopeScaling!;
            Assert.Equal("longrope", s.Type);
            Assert.Equal(32.0, s.Factor);
            Assert.Equal(4096, s.OriginalMaxPositionEmbeddings);
            Assert.Equal(Math.Sqrt(1 + Math.Log(32) / Math.Log(4096)), s.AttentionFactor, 12);
            Assert.Equal([1.0, 1.5], s.ShortFactor);
            Assert.Equal([2.0, 5.0], s.LongFactor);
        }
        // attention_factor given; a ratio ≤ 1 gives 1
        Assert.Equal(0.7, Parsed(Family("phi3", o => o["rope_scaling"] = JsonNode.Parse("""{"type": "longrope", "short_factor": [1, 1], "long_factor": [1, 1], "attention_factor": 0.7}"""))).RopeScaling!.AttentionFactor);
        Assert.Equal(1.0, Parsed(Family("phi3", o => o["rope_scaling"] = JsonNode.Parse("""{"type": "longrope", "short_factor": [1, 1], "long_factor": [1, 1]}"""))).RopeScaling!.AttentionFactor);
    }

    [Theory]
    // partial_rotary_factor ≠ 1: irr rotates the whole head
    [InlineData("phi3", "partial_rotary_factor", "0.75", "partial_rotary_factor 0.75 is not supported")]
    [InlineData("qwen3", "partial_rotary_factor", "0.5", "partial_rotary_factor 0.5 is not supported")]
    // longrope's factor lists: head_dim / 2 = 2 numbers each, positive
    [InlineData("phi3", "rope_scaling", """{"type": "longrope", "short_factor": [1, 1, 1], "long_factor": [1, 1]}""", "need head_dim / 2 = 2 entries (they have 3 and 2)")]
    [InlineData("phi3", "rope_scaling", """{"type": "longrope", "short_factor": [1, 1], "long_factor": [1]}""", "need head_dim / 2 = 2 entries (they have 2 and 1)")]
    [InlineData("phi3", "rope_scaling", """{"type": "longrope", "short_factor": [1, 0], "long_factor": [1, 1]}""", "short_factor[1] must be a positive number")]
    [InlineData("phi3", "rope_scaling", """{"type": "longrope", "short_factor": [1, 1], "long_factor": "x"}""", "long_factor must be a list of numbers")]
    [InlineData("phi3", "rope_scaling", """{"type": "longrope", "short_factor": [1, 1], "long_factor": [1, 1], "attention_factor": -1}""", "attention_factor -1 must be positive")]
    // longrope and its older names are Phi-3's only
    [InlineData("llama", "rope_scaling", """{"rope_type": "longrope", "short_factor": [1, 1], "long_factor": [1, 1]}""", "type 'longrope' is not supported")]
    [InlineData("qwen3", "rope_scaling", """{"rope_type": "su", "short_factor": [1, 1], "long_factor": [1, 1]}""", "type 'su' is not supported")]
    [InlineData("gemma2", "rope_scaling", """{"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}""", "type 'yarn' is not supported")]
    [InlineData("qwen3", "rope_scaling", """{"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}""", "type 'yarn' is not supported")]
    // Gemma's sliding layers need a window
    [InlineData("gemma2", "sliding_window", "null", "sliding_window null is not supported for gemma2")]
    [InlineData("gemma3_text", "sliding_window", "null", "sliding_window null is not supported for gemma3_text")]
    [InlineData("gemma2", "sliding_window", "0", "sliding_window 0 must be positive or null")]
    [InlineData("gemma3_text", "use_bidirectional_attention", "true", "use_bidirectional_attention true is not supported")]
    [InlineData("gemma2", "use_bidirectional_attention", "true", "use_bidirectional_attention true is not supported")]
    // activations: Gemma reads hidden_activation, the others hidden_act
    [InlineData("gemma2", "hidden_activation", "\"gelu\"", "hidden_activation 'gelu' is not supported")]
    [InlineData("gemma3_text", "hidden_activation", "\"relu\"", "hidden_activation 'relu' is not supported")]
    [InlineData("qwen3", "hidden_act", "\"gelu\"", "hidden_act 'gelu' is not supported")]
    [InlineData("phi3", "hidden_act", "\"gelu_new\"", "hidden_act 'gelu_new' is not supported")]
    // Phi3ForCausalLM's projections have no bias
    [InlineData("phi3", "attention_bias", "true", "attention_bias true is not supported for phi3")]
    // soft-capping is Gemma's only
    [InlineData("llama", "attn_logit_softcapping", "50.0", "attn_logit_softcapping 50 is not supported for llama")]
    [InlineData("llama", "final_logit_softcapping", "30.0", "final_logit_softcapping 30 is not supported for llama")]
    [InlineData("qwen3", "final_logit_softcapping", "30.0", "final_logit_softcapping 30 is not supported for qwen3")]
    [InlineData("phi3", "attn_logit_softcapping", "50.0", "attn_logit_softcapping 50 is not supported for phi3")]
    [InlineData("gemma2", "attn_logit_softcapping", "0", "attn_logit_softcapping 0 must be positive or null")]
    [InlineData("gemma2", "final_logit_softcapping", "-30", "final_logit_softcapping -30 must be positive or null")]
    [InlineData("gemma2", "query_pre_attn_scalar", "0", "query_pre_attn_scalar 0 must be positive")]
    // query/key norms irr does not implement (other families' switches)
    [InlineData("llama", "qk_layernorm", "true", "qk_layernorm true is not supported")]
    [InlineData("qwen3", "use_qk_norm", "true", "use_qk_norm true is not supported")]
    // transformers v5's per-layer-type rope_parameters: each an object
    [InlineData("gemma3_text", "rope_parameters", """{"full_attention": 3, "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}""", "rope_parameters.full_attention must be an object")]
    [InlineData("gemma3_text", "rope_parameters", """{"full_attention": {"rope_type": "dynamic", "factor": 2.0}, "sliding_attention": {"rope_type": "default"}}""", "type 'dynamic' is not supported")]
    [InlineData("gemma3_text", "rope_parameters", """{"full_attention": {"rope_type": "default", "rope_theta": -1}, "sliding_attention": {"rope_type": "default"}}""", "rope base -1 must be positive")]
    [InlineData("gemma3_text", "rope_local_base_freq", "0", "rope base 0 must be positive")]
    [InlineData("gemma3_text", "rope_parameters", """{"full_attention": {"rope_type": "default", "rope_theta": 1000000.0, "partial_rotary_factor": 0.5}, "sliding_attention": {"rope_type": "default"}}""", "partial_rotary_factor 0.5 is not supported")]
    [InlineData("gemma3_text", "rope_parameters", """{"full_attention": {"rope_type": "default"}, "sliding_attention": {"rope_type": "default", "partial_rotary_factor": 0.25}}""", "partial_rotary_factor 0.25 is not supported")]
    public void AFamilyKeyIrrDoesNotImplementIsRefusedByName(string modelType, string key, string value, string expected)
    {
        string message = Refused(Family(modelType, o => o[key] = JsonNode.Parse(value)));
        Assert.Contains(expected, message);
    }

    [Fact]
    public void KeysTransformersDoesNotReadForAFamilyAreNotRefused()
    {
        // Gemma2MLP reads hidden_activation; a legacy hidden_act beside it is ignored by transformers, and by irr
        Assert.Equal("gelu_pytorch_tanh", Parsed(Family("gemma2", o => o["hidden_act"] = "gelu")).HiddenAct);
        // null caps are none; false qk switches are nothing; Qwen3's sliding_window without use_sliding_window is none
        Assert.Null(Parsed(Family("llama", o => o["final_logit_softcapping"] = null)).FinalLogitSoftcapping);
        Assert.Null(Parsed(Family("gemma2", o => o["attn_logit_softcapping"] = null)).AttnLogitSoftcapping);
        Assert.False(Parsed(Family("llama", o => o["qk_layernorm"] = false)).QkNorm);
        Assert.Equal([0, 0], Parsed(Family("qwen3", o => o["sliding_window"] = 3)).SlidingWindows);
        Assert.Equal([0, 3], Parsed(Family("qwen3", o => { o["use_sliding_window"] = true; o["sliding_window"] = 3; o["max_window_layers"] = 1; })).SlidingWindows);
        // Qwen3's and Gemma's attention_bias: q, k, v and o
        var biased = Parsed(Family("qwen3", o => o["attention_bias"] = true));
        Assert.True(biased.QkvBias && biased.OutputBias);
        Assert.True(Parsed(Family("gemma2", o => o["attention_bias"] = true)).OutputBias);
    }

    [Fact]
    public void ArchitectureAndModelTypeMustAgree()
    {
        Assert.Contains("irr runs Gemma-3's text model, Gemma3ForCausalLM with a gemma3_text config",
            Refused(Family("gemma3_text", o => { o["architectures"] = new JsonArray("Gemma3ForConditionalGeneration"); o["model_type"] = "gemma3"; })));
        Assert.Contains("model_type 'gemma3' does not belong to Gemma3ForCausalLM (expected 'gemma3_text')",
            Refused(Family("gemma3_text", o => o["model_type"] = "gemma3")));
        Assert.Contains("model_type 'phi' does not belong to Phi3ForCausalLM (expected 'phi3')", Refused(Family("phi3", o => o["model_type"] = "phi")));
        Assert.Contains("model_type 'qwen2' does not belong to Qwen3ForCausalLM", Refused(Family("qwen3", o => o["model_type"] = "qwen2")));
        Assert.Contains("unsupported architecture 'Phi3SmallForCausalLM'", Refused(Family("phi3", o => o["architectures"] = new JsonArray("Phi3SmallForCausalLM"))));
        // model_type alone names the architecture
        Assert.Equal("Gemma2ForCausalLM", Parsed(Family("gemma2", o => o.Remove("architectures"))).Architecture);
    }

    // ---- found by this audit and fixed (transformers read these keys otherwise) ----------------------------------------

    [Theory]
    [InlineData("qwen3", 128, 32)]
    [InlineData("gemma2", 256, 4)]
    [InlineData("gemma3_text", 256, 4)]
    [InlineData("qwen2", 2, 32)]    // Qwen2Config: num_key_value_heads 32
    [InlineData("mistral", 2, 8)]   // MistralConfig: num_key_value_heads 8, head_dim None → hidden / heads
    [InlineData("llama", 2, 64)]    // LlamaConfig: num_key_value_heads None → num_attention_heads
    [InlineData("phi3", 2, 64)]     // Phi3Config: the same
    public void AbsentHeadDimAndKeyValueHeadsTakeTheFamilysDefault(string modelType, int headDim, int kvHeads)
    {
        var c = Parsed(Family(modelType, o => { o.Remove("num_key_value_heads"); o["num_attention_heads"] = 64; o["hidden_size"] = 128; }));
        Assert.Equal((headDim, kvHeads), (c.HeadDim, c.NumKeyValueHeads));
    }

    [Theory]
    [InlineData("""{"rope_type": "linear", "factor": 2.0}""")]
    [InlineData("""{"rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 8192}""")]
    public void Phi3RefusesRopeTypesPhi3ConfigRefuses(string scaling) =>
        Assert.Contains("rope_scaling", Refused(Family("phi3", o => o["rope_scaling"] = JsonNode.Parse(scaling))));

    [Fact]
    public void PartialRotaryFactorInsideRopeParametersIsRefused() =>
        Assert.Contains("partial_rotary_factor", Refused(Family("phi3", o => o["rope_parameters"] = JsonNode.Parse("""{"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.75}"""))));
}
