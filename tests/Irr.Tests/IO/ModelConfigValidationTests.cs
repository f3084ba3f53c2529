using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Tests.Text;

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
}
