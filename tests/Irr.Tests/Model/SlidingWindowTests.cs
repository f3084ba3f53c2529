using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Model;

namespace Irr.Tests.Model;

/// <summary>
/// Sliding-window attention as transformers applies it (Mistral: every layer; Qwen2: layers ≥
/// max_window_layers when use_sliding_window). Logits and whole-model gradients against the naive
/// reference are in <see cref="TransformerTests"/> (variants mistral-window and qwen2-window).
/// </summary>
public class SlidingWindowTests
{
    private static ModelConfig Mistral(JsonNode? window) => ModelConfig.Parse(TransformerTests.Variant(TransformerTests.Tiny, o =>
    {
        o["architectures"] = new JsonArray("MistralForCausalLM");
        o["sliding_window"] = window;
    }), "config.json");

    /// <summary>log p(token t + 1 | tokens 0..t) for every t, from one forward of <paramref name="tokens"/> alone.</summary>
    internal static double[] TokenLogProbs(Transformer model, int[] tokens)
    {
        var logits = model.Logits(Batch.Create([tokens]));
        int v = model.Config.VocabSize;
        var result = new double[tokens.Length - 1];
        for (int t = 0; t + 1 < tokens.Length; t++)
        {
            var row = logits.AsSpan(t * v, v);
            double max = double.NegativeInfinity, z = 0;
            foreach (float x in row) max = Math.Max(max, x);
            foreach (float x in row) z += Math.Exp(x - max);
            result[t] = row[tokens[t + 1]] - max - Math.Log(z);
        }
        return result;
    }

    // The reported case: sliding_window 4 on a record of 40 tokens changes the per-token log-probs;
    // a window at least as long as the record does not.
    [Fact]
    public void AWindowOfFourChangesTheLogProbsOfALongRecordAndALongWindowDoesNot()
    {
        var rng = new Random(7);
        int[] tokens = Enumerable.Range(0, 40).Select(_ => rng.Next(11)).ToArray();
        var none = Mistral(null);
        var weights = TransformerTests.RandomParameters(none, seed: 8, scale: 0.8f);
        double[] Scores(ModelConfig c)
        {
            var p = new ParameterSet(c);
            foreach (var (name, _) in c.ExpectedTensors()) p.Set(name, weights[name]);
            return TokenLogProbs(new Transformer(p), tokens);
        }
        var full = Scores(none);
        var four = Scores(Mistral(4));
        Assert.Equal(full[..4], four[..4]); // the first 4 queries see all their keys anyway
        Assert.True(Enumerable.Range(4, full.Length - 4).Max(t => Math.Abs(full[t] - four[t])) > 1e-3);
        Assert.Equal(full, Scores(Mistral(40)));
        Assert.Equal(full, Scores(Mistral(4096)));
    }

    [Fact]
    public void WindowsPerLayerFollowTransformers()
    {
        string qwen2 = TransformerTests.Variant(TransformerTests.Tiny, o => { o["architectures"] = new JsonArray("Qwen2ForCausalLM"); o["num_hidden_layers"] = 4; });
        ModelConfig Parse(string json, Action<JsonObject> edit) => ModelConfig.Parse(TransformerTests.Variant(json, edit), "config.json");
        int[] Windows(ModelConfig c) => Enumerable.Range(0, c.NumHiddenLayers).Select(c.SlidingWindowOf).ToArray();

        // Mistral: every layer; MistralConfig's default is 4096 when the key is absent, null is none
        Assert.Equal([5, 5], Windows(Mistral(5)));
        Assert.Equal([0, 0], Windows(Mistral(null)));
        Assert.Equal([4096, 4096], Windows(Parse(TransformerTests.Tiny, o => o["architectures"] = new JsonArray("MistralForCausalLM"))));
        // Qwen2: none unless use_sliding_window; then layers i >= max_window_layers (default 28), or layer_types
        Assert.Equal([0, 0, 0, 0], Windows(Parse(qwen2, o => o["sliding_window"] = 5)));
        Assert.Equal([0, 0, 5, 5], Windows(Parse(qwen2, o => { o["use_sliding_window"] = true; o["sliding_window"] = 5; o["max_window_layers"] = 2; })));
        Assert.Equal([0, 0, 0, 0], Windows(Parse(qwen2, o => { o["use_sliding_window"] = true; o["sliding_window"] = 5; })));
        Assert.Equal([0, 0, 0, 0], Windows(Parse(qwen2, o => { o["use_sliding_window"] = true; o["sliding_window"] = null; o["max_window_layers"] = 0; })));
        Assert.Equal([4096, 4096, 4096, 4096], Windows(Parse(qwen2, o => { o["use_sliding_window"] = true; o["max_window_layers"] = 0; })));
        Assert.Equal([5, 0, 5, 0], Windows(Parse(qwen2, o =>
        {
            o["use_sliding_window"] = true; o["sliding_window"] = 5;
            o["layer_types"] = new JsonArray("sliding_attention", "full_attention", "sliding_attention", "full_attention");
        })));
        // Llama has no sliding window (LlamaConfig does not take the key)
        Assert.Equal([0, 0], Windows(Parse(TransformerTests.Tiny, o => o["sliding_window"] = 3)));

        Assert.Contains("config.json: sliding_window 0 must be positive or null", Assert.Throws<IrrException>(() => Mistral(0)).Message);
        Assert.Contains("layer_types[1] 'chunked_attention' is not supported", Assert.Throws<IrrException>(() => Parse(qwen2, o =>
        {
            o["use_sliding_window"] = true;
            o["layer_types"] = new JsonArray("full_attention", "chunked_attention", "full_attention", "full_attention");
        })).Message);
    }

    [Fact]
    public void BiasKeysAndRopeParametersAreReadAsTransformersReadsThem()
    {
        // MistralConfig and Qwen2Config do not take attention_bias / mlp_bias: Mistral has no biases, Qwen2 q/k/v only
        var mistral = ModelConfig.Parse(TransformerTests.Variant(TransformerTests.Tiny, o =>
        {
            o["architectures"] = new JsonArray("MistralForCausalLM"); o["attention_bias"] = true; o["mlp_bias"] = true;
        }), "config.json");
        Assert.DoesNotContain(mistral.ExpectedTensors(), t => t.Name.EndsWith(".bias", StringComparison.Ordinal));
        var qwen2 = ModelConfig.Parse(TransformerTests.Variant(TransformerTests.Tiny, o =>
        {
            o["architectures"] = new JsonArray("Qwen2ForCausalLM"); o["attention_bias"] = true; o["mlp_bias"] = true;
        }), "config.json");
        Assert.Equal(3 * qwen2.NumHiddenLayers, qwen2.ExpectedTensors().Count(t => t.Name.EndsWith(".bias", StringComparison.Ordinal)));
        Assert.False(qwen2.OutputBias);

        // transformers v5 writes rope_theta and the scaling inside rope_parameters
        var v5 = ModelConfig.Parse(TransformerTests.Variant(TransformerTests.Tiny, o =>
        {
            o.Remove("rope_theta");
            o["rope_parameters"] = JsonNode.Parse("""{"rope_type": "linear", "factor": 2.0, "rope_theta": 500000.0}""");
        }), "config.json");
        Assert.Equal(500000.0, v5.RopeTheta);
        Assert.Equal("linear", v5.RopeScaling!.Type);
        var v5Default = ModelConfig.Parse(TransformerTests.Variant(TransformerTests.Tiny, o =>
            o["rope_parameters"] = JsonNode.Parse("""{"rope_type": "default", "rope_theta": 1000000.0}""")), "config.json");
        Assert.Equal(1000000.0, v5Default.RopeTheta);
        Assert.Null(v5Default.RopeScaling);
        // attention_dropout only acts in training mode in transformers; accepted
        Assert.NotNull(ModelConfig.Parse(TransformerTests.Variant(TransformerTests.Tiny, o => o["attention_dropout"] = 0.1), "config.json"));
    }

    // Generating token by token with the KV cache (which keeps every key and masks those outside the
    // window) equals greedy decoding by full forward passes, with windows shorter than the sequence.
    [Theory]
    [InlineData("mistral-window")]
    [InlineData("qwen2-window")]
    public void KvCacheGenerationWithAWindowEqualsFullForwardPasses(string variant)
    {
        var config = TransformerTests.ConfigOf(variant);
        var model = new Transformer(TransformerTests.RandomParameters(config, seed: 11, scale: 1.5f));
        int[][] prompts = [[1, 2, 3, 4, 5], [6], [7, 3, 3, 10, 0, 9, 2]];
        const int steps = 8;
        var cached = Generation.Generate(model, prompts, new GenerationOptions { MaxNewTokens = steps, BatchSize = 2 });
        int v = config.VocabSize;
        for (int p = 0; p < prompts.Length; p++)
        {
            var seq = prompts[p].ToList();
            var cache = new KvCache(config, 1);
            IReadOnlyList<int> next = prompts[p];
            for (int step = 0; step < steps; step++)
            {
                var full = model.Logits(Batch.Create([seq.ToArray()])).AsSpan((seq.Count - 1) * v, v).ToArray();
                var stepLogits = model.NextTokenLogits([next], cache, [0]);
                for (int j = 0; j < v; j++) Assert.Equal(full[j], stepLogits[j], 1e-4);
                int token = Array.IndexOf(full, full.Max());
                Assert.Equal(token, cached[p][step]);
                seq.Add(token);
                next = [token];
            }
        }
    }
}
