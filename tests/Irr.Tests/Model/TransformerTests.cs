using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Model;
using Irr.Tests.IO;

namespace Irr.Tests.Model;

public class TransformerTests
{
    // vocab 11, hidden 8, intermediate 12, 2 layers, 2 heads of 4, 1 KV head (GQA).
    internal const string Tiny = """
        {"architectures": ["LlamaForCausalLM"], "hidden_size": 8, "intermediate_size": 12, "num_hidden_layers": 2,
         "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 11, "rms_norm_eps": 1e-5, "rope_theta": 100.0}
        """;

    internal static string Variant(string json, Action<JsonObject> edit)
    {
        var o = JsonNode.Parse(json)!.AsObject();
        edit(o);
        return o.ToJsonString();
    }

    /// <summary>Random resident weights (seeded) for a config; norms around 1.</summary>
    internal static ParameterSet RandomParameters(ModelConfig config, int seed, float scale = 0.3f)
    {
        var rng = new Random(seed);
        var set = new ParameterSet(config);
        foreach (var (name, shape) in config.ExpectedTensors())
        {
            var values = GradientCheck.Random(rng, (int)shape.Aggregate(1L, (a, d) => a * d), scale);
            if (name.EndsWith("norm.weight", StringComparison.Ordinal))
                for (int i = 0; i < values.Length; i++) values[i] += 1f;
            set.Set(name, values);
        }
        return set;
    }

    public static TheoryData<string> Variants() => new()
    {
        "llama",
        "qwen2-tied",
        "llama-mha",
        "llama-biases-head-dim",
        "mistral-window",
        "qwen2-window",
    };

    /// <summary>The newer families: Qwen3, Gemma-2, Gemma-3 text and Phi-3, each with the features that set it apart.</summary>
    public static TheoryData<string> FamilyVariants() => new()
    {
        "qwen3",
        "gemma2",
        "gemma3",
        "phi3",
        "phi3-longrope",
    };

    internal static ModelConfig ConfigOf(string variant) => ModelConfig.Parse(variant switch
    {
        // q_norm/k_norm per head, head_dim 6 ≠ hidden / heads, attention_bias on q, k, v and o
        "qwen3" => Variant(Tiny, o => { o["architectures"] = new JsonArray("Qwen3ForCausalLM"); o["head_dim"] = 6; o["attention_bias"] = true; }),
        // GeGLU, (1 + w) sandwich norms, √hidden embedding scale, soft-capped scores and logits, query_pre_attn_scalar,
        // a window of 2 in layer 0 (layer 1 full), tied head by default
        "gemma2" => Variant(Tiny, o =>
        {
            o["architectures"] = new JsonArray("Gemma2ForCausalLM"); o["model_type"] = "gemma2"; o["sliding_window"] = 2; o["head_dim"] = 4;
            o["attn_logit_softcapping"] = 1.5; o["final_logit_softcapping"] = 2.0; o["query_pre_attn_scalar"] = 3;
        }),
        // Gemma-3: qk-norm (1 + w), layer 0 sliding with the local base, layer 1 global with linear scaling
        "gemma3" => Variant(Tiny, o =>
        {
            o["architectures"] = new JsonArray("Gemma3ForCausalLM"); o["model_type"] = "gemma3_text"; o["sliding_window"] = 3; o["head_dim"] = 4;
            o["layer_types"] = new JsonArray("sliding_attention", "full_attention"); o["rope_local_base_freq"] = 7.0;
            o["rope_scaling"] = new JsonObject { ["rope_type"] = "linear", ["factor"] = 3.0 }; o["final_logit_softcapping"] = 2.5;
        }),
        // fused qkv_proj and gate_up_proj, a window of 3
        "phi3" => Variant(Tiny, o => { o["architectures"] = new JsonArray("Phi3ForCausalLM"); o["model_type"] = "phi3"; o["sliding_window"] = 3; }),
        // longrope: sequences of 5 use the long factors (> original 4), of 3 the short ones
        "phi3-longrope" => Variant(Tiny, o =>
        {
            o["architectures"] = new JsonArray("Phi3ForCausalLM"); o["model_type"] = "phi3"; o["original_max_position_embeddings"] = 4;
            o["max_position_embeddings"] = 16;
            o["rope_scaling"] = new JsonObject { ["type"] = "su", ["short_factor"] = new JsonArray(1.0, 1.5), ["long_factor"] = new JsonArray(2.0, 5.0) };
        }),
        "qwen2-tied" => Variant(Tiny, o => { o["architectures"] = new JsonArray("Qwen2ForCausalLM"); o["tie_word_embeddings"] = true; }),
        "llama-mha" => Variant(Tiny, o => o["num_key_value_heads"] = 2),
        // attention_bias (q/k/v/o), mlp_bias (gate/up/down) and a head_dim other than hidden / heads
        "llama-biases-head-dim" => Variant(Tiny, o => { o["attention_bias"] = true; o["mlp_bias"] = true; o["head_dim"] = 6; }),
        // a window of 3 in every layer, shorter than the sequences
        "mistral-window" => Variant(Tiny, o => { o["architectures"] = new JsonArray("MistralForCausalLM"); o["sliding_window"] = 3; }),
        // Qwen2: full attention in layer 0 (< max_window_layers), a window of 2 in layer 1
        "qwen2-window" => Variant(Tiny, o => { o["architectures"] = new JsonArray("Qwen2ForCausalLM"); o["use_sliding_window"] = true; o["sliding_window"] = 2; o["max_window_layers"] = 1; }),
        _ => Tiny,
    }, "config.json");

    [Theory]
    [MemberData(nameof(Variants))]
    public void LogitsMatchANaiveDoublePrecisionModel(string variant)
    {
        var config = ConfigOf(variant);
        var weights = RandomParameters(config, seed: 1);
        var model = new Transformer(weights);
        int[] a = [1, 5, 2, 9, 3, 3, 0], b = [7, 4];
        var batch = Batch.Create([a, b]);
        var logits = model.Logits(batch);
        int v = config.VocabSize, offset = 0;
        foreach (var seq in new[] { a, b })
        {
            var expected = NaiveLlama.Logits(config, n => weights[n], seq);
            for (int t = 0; t < seq.Length; t++)
                for (int j = 0; j < v; j++)
                    Assert.True(Math.Abs(logits[(offset + t) * v + j] - expected[t, j]) < 1e-4,
                        $"{variant}: logit[{t},{j}] = {logits[(offset + t) * v + j]}, naive {expected[t, j]}");
            offset += seq.Length;
        }
    }

    [Theory]
    [MemberData(nameof(Variants))]
    [MemberData(nameof(FamilyVariants))]
    public void GradientsOfTheWholeModelMatchFiniteDifferences(string variant)
    {
        var config = ConfigOf(variant);
        var weights = RandomParameters(config, seed: 2);
        var model = new Transformer(weights);
        var batch = Batch.Create([[1, 5, 2, 9, 3], [7, 4, 4]], [[-100, -100, 2, 9, 3], [-100, 4, 4]]);
        var names = config.ExpectedTensors().Select(t => t.Name).ToList();
        var grads = Gradients.For(config, names);
        model.ForwardBackward(batch, grads);
        var rng = new Random(3);
        foreach (string name in names)
        {
            var values = weights[name];
            // A sample of entries per tensor keeps the test quick; the embedding rows used are included.
            var picks = Enumerable.Range(0, 6).Select(_ => rng.Next(values.Length)).Append(values.Length - 1).Distinct().ToArray();
            var sub = picks.Select(i => values[i]).ToArray();
            var analytic = picks.Select(i => grads[name][i]).ToArray();
            GradientCheck.Check(name, sub, analytic, () =>
            {
                for (int k = 0; k < picks.Length; k++) values[picks[k]] = sub[k];
                double loss = model.Loss(batch).Loss;
                return loss;
            }, h: 2e-3f, relative: 3e-2, absolute: 3e-4); // a step small enough for Gemma-2's sharp, soft-capped attention
            for (int k = 0; k < picks.Length; k++) values[picks[k]] = sub[k];
        }
    }

    [Fact]
    public void ASubsetOfGradientsEqualsTheSameEntriesOfTheFullGradient()
    {
        var config = ConfigOf("llama");
        var weights = RandomParameters(config, seed: 4);
        var model = new Transformer(weights);
        var batch = Batch.Create([[1, 5, 2, 9, 3, 8]], [[1, 5, 2, 9, 3, 8]]);
        var all = Gradients.For(config, config.ExpectedTensors().Select(t => t.Name));
        model.ForwardBackward(batch, all);
        string[] subset = ["model.layers.0.self_attn.q_proj.weight", "model.layers.1.self_attn.v_proj.weight"];
        var some = Gradients.For(config, subset);
        var loss = model.ForwardBackward(batch, some);
        foreach (string name in subset) Assert.Equal(all[name], some[name]);
        Assert.Equal(model.Loss(batch).Loss, loss.Loss, 1e-6);
        Assert.Equal(2, some.Names.Count());
    }

    [Fact]
    public void CheckpointedAndKeptActivationsGiveTheSameGradients()
    {
        var config = ConfigOf("llama");
        var model = new Transformer(RandomParameters(config, seed: 12), LoraWeights.Create(config, 2, 4, ["v_proj"], false, 13));
        var batch = Batch.Create([[1, 5, 2, 9, 3], [7, 4, 4, 1]], [[1, 5, 2, 9, 3], [-100, 4, 4, 1]]);
        var names = config.ExpectedTensors().Select(t => t.Name).ToList();
        var kept = Gradients.For(config, names);
        var a = model.ForwardBackward(batch, kept);
        model.ActivationMemoryBudget = 0; // forces per-layer checkpoints and recomputation
        var recomputed = Gradients.For(config, names);
        var b = model.ForwardBackward(batch, recomputed);
        Assert.Equal(a.Loss, b.Loss);
        foreach (string n in names) Assert.Equal(kept[n], recomputed[n]);
    }

    [Fact]
    public void LoraGradientsMatchFiniteDifferences()
    {
        var config = ConfigOf("llama");
        var model = new Transformer(RandomParameters(config, seed: 5), LoraWeights.Create(config, 2, 4, ["q_proj", "down_proj"], rslora: false, seed: 6));
        // B starts at zero; give it values so dA is not trivially zero.
        var rng = new Random(7);
        foreach (var (_, values) in model.Lora!.Parameters())
            for (int i = 0; i < values.Length; i++) values[i] = (float)(rng.NextDouble() - 0.5) * 0.5f;
        var batch = Batch.Create([[3, 1, 4, 1, 5, 9]], [[3, 1, 4, 1, 5, 9]]);
        var grads = model.Lora.CreateGradients();
        model.ForwardBackward(batch, grads);
        foreach (var (name, values) in model.Lora.Parameters())
        {
            var copy = (float[])values.Clone();
            GradientCheck.Check(name, values, grads[name], () => model.Loss(batch).Loss, h: 1e-2f, relative: 3e-2, absolute: 3e-4);
            Assert.Equal(copy, values);
        }
    }

    [Fact]
    public void StreamingFromACheckpointGivesTheSameLogitsAsResidentWeights()
    {
        using var dir = new TempDir();
        string path = TinyModels.Create(dir["m"], dtype: TensorDType.BF16, maxShardBytes: 4096);
        using var streamed = CheckpointWeights.Open(path);
        var resident = ParameterSet.LoadAll(streamed);
        var batch = Batch.Create([[1, 2, 3, 4, 5], [9, 8]]);
        Assert.Equal(new Transformer(resident).Logits(batch), new Transformer(streamed).Logits(batch));
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("gemma2")]
    public void FreshlyInitialisedNormsAreTheIdentityScaleAsTransformersInitialisesThem(string variant)
    {
        // LlamaRMSNorm starts at w = 1, Gemma2RMSNorm at w = 0 (it multiplies by 1 + w): both give x / √(mean(x²) + eps)
        var config = ConfigOf(variant);
        var model = new Transformer(ModelInit.Random(config, seed: 1));
        float[] x = [1, 2, 3, 4, 5, 6, 7, 8];
        double rms = Math.Sqrt(x.Sum(v => (double)v * v) / 8 + config.RmsNormEps);
        var normed = (float[])x.Clone();
        model.FinalNorm(normed, rows: 1);
        for (int i = 0; i < 8; i++) Assert.Equal(x[i] / rms, normed[i], 5);
    }

    [Fact]
    public void HooksSeeEveryTargetModuleInputOfEveryLayer()
    {
        var config = ConfigOf("llama");
        var model = new Transformer(RandomParameters(config, seed: 8));
        var seen = new List<(int, string, int, int)>();
        model.Hidden(Batch.Create([[1, 2, 3], [4]]), (layer, module, input, rows, cols) =>
        {
            Assert.Equal(rows * cols, input.Length);
            seen.Add((layer, module, rows, cols));
        });
        var expected = Enumerable.Range(0, 2).SelectMany(l => new[]
        {
            (l, "q_proj", 4, 8), (l, "k_proj", 4, 8), (l, "v_proj", 4, 8), (l, "o_proj", 4, 8),
            (l, "gate_proj", 4, 8), (l, "up_proj", 4, 8), (l, "down_proj", 4, 12),
        });
        Assert.Equal(expected, seen);
    }

    [Fact]
    public void PackedSequencesDoNotSeeEachOther()
    {
        // The logits of a sequence are the same alone and packed after another one.
        var config = ConfigOf("llama");
        var model = new Transformer(RandomParameters(config, seed: 9));
        var alone = model.Logits(Batch.Create([[4, 2, 7]]));
        var packed = model.Logits(Batch.Create([[1, 1, 5, 6], [4, 2, 7]]));
        for (int i = 0; i < alone.Length; i++) Assert.Equal(alone[i], packed[4 * config.VocabSize + i], 1e-5);
    }
}
