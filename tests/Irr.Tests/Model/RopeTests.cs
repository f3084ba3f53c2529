using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Model;

namespace Irr.Tests.Model;

public class RopeTests
{
    private static Rope RopeOf(Action<JsonObject> edit) =>
        new(ModelConfig.Parse(TransformerTests.Variant("""
            {"architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "intermediate_size": 8, "num_hidden_layers": 1,
             "num_attention_heads": 32, "vocab_size": 8, "rope_theta": 500000.0}
            """, edit), "config.json"));

    private static double Default(int i) => 1.0 / Math.Pow(500000.0, 2.0 * i / 128);

    private static void Close(double expected, float actual) =>
        Assert.True(Math.Abs(expected - actual) <= 2e-6 * Math.Abs(expected), $"{actual} ≠ {expected}");

    [Fact]
    public void DefaultFrequencies()
    {
        var rope = RopeOf(_ => { });
        Assert.Equal(64, rope.InverseFrequencies.Length); // head_dim 128
        foreach (int i in new[] { 0, 1, 30, 63 }) Close(Default(i), rope.InverseFrequencies[i]);
        rope.Ensure(3);
        // cos/sin of position 2 · inv_freq
        Close(Math.Cos(2 * Default(5)), rope.Cos[2 * 64 + 5]);
        Close(Math.Sin(2 * Default(5)), rope.Sin[2 * 64 + 5]);
    }

    [Fact]
    public void LinearScalingDividesEveryFrequency()
    {
        var rope = RopeOf(o => o["rope_scaling"] = JsonNode.Parse("""{"type": "linear", "factor": 4.0}"""));
        foreach (int i in new[] { 0, 17, 63 }) Close(Default(i) / 4, rope.InverseFrequencies[i]);
    }

    [Fact]
    public void Llama3ScalingHasThreeRegimes()
    {
        // Llama-3.1's values: factor 8, low_freq_factor 1, high_freq_factor 4, original context 8192.
        // Wavelength 2π/f below 8192/4 = 2048: unchanged; above 8192/1: divided by 8; between: a blend
        // (1 − s)·f/8 + s·f with s = (8192/wavelength − 1)/(4 − 1).
        var rope = RopeOf(o => o["rope_scaling"] = JsonNode.Parse("""{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}"""));
        Close(Default(0), rope.InverseFrequencies[0]);    // wavelength 2π
        Close(Default(20), rope.InverseFrequencies[20]);  // 2π·500000^(40/128) ≈ 380
        Close(Default(63) / 8, rope.InverseFrequencies[63]);
        Close(Default(40) / 8, rope.InverseFrequencies[40]); // ≈ 2π·500000^(80/128) ≈ 22,900 > 8192
        double f = Default(30), wavelength = 2 * Math.PI / f; // ≈ 4,200: in between
        Assert.InRange(wavelength, 2048, 8192);
        double s = (8192 / wavelength - 1) / 3;
        Close((1 - s) * f / 8 + s * f, rope.InverseFrequencies[30]);
    }
}
