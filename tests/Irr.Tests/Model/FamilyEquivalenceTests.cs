using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Model;

namespace Irr.Tests.Model;

/// <summary>
/// The newer families (<see cref="TransformerTests.FamilyVariants"/>) against references that do not share their code
/// path: the KV cache against the whole sequence's forward (and, where transformers' longrope switches factors
/// mid-generation, against a double-precision forward rotating each token as transformers does), kept against
/// recomputed activations, LoRA gradients against finite differences, and exact structural equivalences — Phi-3 is
/// the Llama/Mistral model whose q/k/v and gate/up are the row blocks of its fused matrices, Gemma-2 with caps of 1e9
/// is Gemma-2 without caps, Qwen3's q_norm/k_norm make attention blind to the scale of q_proj and k_proj.
/// </summary>
public class FamilyEquivalenceTests
{
    private static Transformer Model(string variant, int seed, float scale = 0.3f, LoraWeights? lora = null) =>
        new(TransformerTests.RandomParameters(TransformerTests.ConfigOf(variant), seed, scale), lora);

    // The logits of the last token of `tokens`, from one forward of the whole sequence.
    private static float[] LastLogits(Transformer model, IReadOnlyList<int> tokens)
    {
        int v = model.Config.VocabSize;
        return model.Logits(Batch.Create([tokens.ToArray()])).AsSpan((tokens.Count - 1) * v, v).ToArray();
    }

    private static void Near(float[] expected, float[] actual, double tolerance, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"{what}[{i}]: expected {expected[i]}, got {actual[i]}");
    }

    [Theory]
    [MemberData(nameof(TransformerTests.FamilyVariants), MemberType = typeof(TransformerTests))]
    public void KvCacheLogitsEqualTheWholeSequencesForward(string variant)
    {
        var model = Model(variant, seed: 31, scale: 0.6f);
        // Two sequences in one cache, fed a prompt then one token at a time, past the sliding windows (2 and 3). For
        // phi3-longrope both stay on one side of original_max_position_embeddings 4 in every call (the first ≤ 4 tokens,
        // the second > 4 from its prompt on), where transformers' factor choice is the same for the cache and the whole
        // sequence; the crossing is LongRopeGenerationRotatesEachTokenWithTheFactorsOfItsCall.
        int[][] sequences = variant == "phi3-longrope" ? [[3, 1, 4, 1], [5, 9, 2, 6, 5, 3, 5, 8]] : [[3, 1, 4, 1, 5, 9, 2], [6, 5, 3, 5, 8, 9, 7]];
        int[] prompts = variant == "phi3-longrope" ? [2, 5] : [3, 1];
        var cache = new KvCache(model.Config, 2);
        var fed = new[] { sequences[0][..prompts[0]].ToList(), sequences[1][..prompts[1]].ToList() };
        int[] next = [0, 1];
        var logits = model.NextTokenLogits([fed[0], fed[1]], cache, next);
        int v = model.Config.VocabSize;
        while (next.Length > 0)
        {
            // row k of the logits is sequence next[k]'s last token
            for (int k = 0; k < next.Length; k++)
                Near(LastLogits(model, fed[next[k]]), logits.AsSpan(k * v, v).ToArray(), 1e-4, $"{variant} sequence {next[k]} after {fed[next[k]].Count} tokens");
            next = [.. next.Where(s => fed[s].Count < sequences[s].Length)];
            foreach (int s in next) fed[s].Add(sequences[s][fed[s].Count]);
            if (next.Length > 0) logits = model.NextTokenLogits([.. next.Select(s => (IReadOnlyList<int>)[fed[s][^1]])], cache, next);
        }
    }

    [Theory]
    [MemberData(nameof(TransformerTests.FamilyVariants), MemberType = typeof(TransformerTests))]
    public void GreedyGenerationWithTheCacheEqualsRepeatedWholeForwards(string variant)
    {
        var model = Model(variant, seed: 32, scale: 1.5f);
        // phi3-longrope: prompts shorter and longer than original_max_position_embeddings 4; a sequence that grows past it
        // is run again whole with the long factors (transformers' Phi3ForCausalLM.prepare_inputs_for_generation drops the
        // cache then), so every step equals a whole forward of the sequence so far
        int[][] prompts = variant == "phi3-longrope" ? [[1, 2], [7, 3, 3, 10, 0, 9], [4, 4, 1], [2]] : [[1, 2, 3], [6], [7, 3, 3, 10, 0]];
        var cached = Generation.Generate(model, prompts, new GenerationOptions { MaxNewTokens = 6, BatchSize = 2 });
        for (int p = 0; p < prompts.Length; p++)
        {
            var seq = prompts[p].ToList();
            for (int i = 0; i < 6; i++)
            {
                var last = LastLogits(model, seq);
                seq.Add(Array.IndexOf(last, last.Max()));
            }
            Assert.Equal(seq.Skip(prompts[p].Length), cached[p]);
        }
    }

    /// <summary>
    /// transformers' longrope_frequency_update (modeling_rope_utils.dynamic_rope_update) picks the factors of a forward
    /// call from seq_len = max(position_ids) + 1: long when it exceeds original_max_position_embeddings, else short. A
    /// generation whose prompt fits the original context and grows past it rotates the prompt and the tokens up to
    /// position original − 1 with the short factors (their keys stay so in the cache) and the later ones with the long
    /// ones; a whole-sequence forward of the same tokens rotates all of them with the long factors. The reference is
    /// the double-precision Llama forward (Phi-3's fused matrices split into their row blocks) with each token's
    /// rotation chosen that way, cos and sin × attention_factor √(1 + ln 4 / ln 4).
    /// </summary>
    [Fact]
    public void LongRopeGenerationRotatesEachTokenWithTheFactorsOfItsCall()
    {
        var config = TransformerTests.ConfigOf("phi3-longrope"); // original 4, max 16, short [1, 1.5], long [2, 5], head_dim 4
        var weights = TransformerTests.RandomParameters(config, seed: 33, scale: 0.6f);
        var model = new Transformer(weights);
        int[] tokens = [3, 1, 4, 1, 5, 9, 2];
        double attention = Math.Sqrt(1 + Math.Log(16.0 / 4) / Math.Log(4));
        double[] InvFreq(double[] factors) => [.. Enumerable.Range(0, 2).Select(i => 1.0 / (factors[i] * Math.Pow(config.RopeTheta, 2.0 * i / 4)))];
        double[] shortFreq = InvFreq([1.0, 1.5]), longFreq = InvFreq([2.0, 5.0]);

        // prompt of 3 (seq_len 3), then positions 3 (seq_len 4: short), 4, 5, 6 (long)
        var cache = new KvCache(config, 1);
        var logits = model.NextTokenLogits([tokens[..3]], cache, [0]);
        for (int n = 3; ; n++)
        {
            var expected = NaiveLlama.Logits(config, SplitFused(config, weights), tokens[..n], position => position >= 4 ? longFreq : shortFreq, attention);
            Near(Row(expected, n - 1), logits, 1e-4, $"after {n} tokens");
            if (n == tokens.Length) break;
            logits = model.NextTokenLogits([[tokens[n]]], cache, [0]);
        }
        // the whole sequence in one call: every token long
        var whole = NaiveLlama.Logits(config, SplitFused(config, weights), tokens, _ => longFreq, attention);
        Near(Row(whole, tokens.Length - 1), LastLogits(model, tokens), 1e-4, "whole sequence");
        // and the short factors up to the original context
        var shortOnly = NaiveLlama.Logits(config, SplitFused(config, weights), tokens[..4], _ => shortFreq, attention);
        Near(Row(shortOnly, 3), LastLogits(model, tokens[..4]), 1e-4, "four tokens");
    }

    private static float[] Row(double[,] logits, int t) => [.. Enumerable.Range(0, logits.GetLength(1)).Select(j => (float)logits[t, j])];

    // Phi-3's weights as Llama names them: q/k/v the row blocks of qkv_proj (q, then k, then v), gate/up those of gate_up_proj
    private static Func<string, float[]> SplitFused(ModelConfig phi3, ParameterSet weights) => name =>
    {
        int q = phi3.NumAttentionHeads * phi3.HeadDim, kv = phi3.NumKeyValueHeads * phi3.HeadDim, i = phi3.IntermediateSize;
        string module = name.Split('.') is { Length: 6 } parts ? parts[4] : "";
        var (fused, first, rows) = module switch
        {
            "q_proj" => ("qkv_proj", 0, q),
            "k_proj" => ("qkv_proj", q, kv),
            "v_proj" => ("qkv_proj", q + kv, kv),
            "gate_proj" => ("gate_up_proj", 0, i),
            "up_proj" => ("gate_up_proj", i, i),
            _ => ("", 0, 0),
        };
        if (fused == "") return weights[name];
        int c = phi3.HiddenSize;
        return weights[name.Replace(module, fused)].AsSpan(first * c, rows * c).ToArray();
    };

    // The Mistral config of the same sizes and window as a Phi-3 config (Mistral: no biases, SwiGLU, one window in every layer)
    private static ModelConfig UnfusedOf(ModelConfig phi3) => ModelConfig.Parse(TransformerTests.Variant(phi3.Json.ToJsonString(), o =>
    {
        o["architectures"] = new JsonArray("MistralForCausalLM");
        o["model_type"] = "mistral";
        o["sliding_window"] = phi3.SlidingWindowOf(0) is > 0 and var w ? w : null;
    }), "config.json");

    [Fact]
    public void Phi3IsTheModelWhoseSeparateProjectionsAreTheRowBlocksOfItsFusedOnes()
    {
        var phi3 = TransformerTests.ConfigOf("phi3");
        var fusedWeights = TransformerTests.RandomParameters(phi3, seed: 34);
        var mistral = UnfusedOf(phi3);
        var split = SplitFused(phi3, fusedWeights);
        var separateWeights = new ParameterSet(mistral);
        foreach (var (name, _) in mistral.ExpectedTensors()) separateWeights.Set(name, split(name));
        var batch = Batch.Create([[1, 5, 2, 9, 3, 8], [7, 4, 4]], [[1, 5, 2, 9, 3, 8], [-100, 4, 4]]);
        var fused = new Transformer(fusedWeights);
        var separate = new Transformer(separateWeights);
        Near(separate.Logits(batch), fused.Logits(batch), 1e-5, "logits");

        // ∂L/∂qkv_proj is ∂L/∂q_proj, ∂L/∂k_proj, ∂L/∂v_proj stacked by rows; ∂L/∂gate_up_proj is ∂L/∂gate_proj over ∂L/∂up_proj
        var fusedGrads = Gradients.For(phi3, phi3.ExpectedTensors().Select(t => t.Name));
        var separateGrads = Gradients.For(mistral, mistral.ExpectedTensors().Select(t => t.Name));
        Assert.Equal(separate.ForwardBackward(batch, separateGrads).Loss, fused.ForwardBackward(batch, fusedGrads).Loss, 1e-6);
        for (int l = 0; l < phi3.NumHiddenLayers; l++)
        {
            foreach (var (fusedModule, parts) in new[] { ("qkv_proj", new[] { "q_proj", "k_proj", "v_proj" }), ("gate_up_proj", new[] { "gate_proj", "up_proj" }) })
            {
                var stacked = parts.SelectMany(m => separateGrads[ModelConfig.LinearWeightName(l, m)].ToArray()).ToArray();
                Near(stacked, fusedGrads[ModelConfig.LinearWeightName(l, fusedModule)].ToArray(), 1e-5, $"layer {l} {fusedModule}");
            }
        }
        foreach (var (name, _) in phi3.ExpectedTensors().Where(t => !t.Name.Contains("qkv_proj") && !t.Name.Contains("gate_up_proj")))
            Near(separateGrads[name].ToArray(), fusedGrads[name].ToArray(), 1e-5, name);
    }

    [Theory]
    [MemberData(nameof(TransformerTests.FamilyVariants), MemberType = typeof(TransformerTests))]
    public void CheckpointedAndKeptActivationsGiveTheSameGradients(string variant)
    {
        var config = TransformerTests.ConfigOf(variant);
        string[] targets = config.FusedProjections ? ["qkv_proj", "gate_up_proj"] : ["k_proj", "up_proj"];
        var model = Model(variant, seed: 35, lora: LoraWeights.Create(config, 2, 4, targets, false, 36));
        var batch = Batch.Create([[1, 5, 2, 9, 3], [7, 4, 4, 1, 6, 2]], [[1, 5, 2, 9, 3], [-100, 4, 4, 1, 6, 2]]);
        var lengths = config.ExpectedTensors().Select(t => (t.Name, Length: t.Shape.Aggregate(1L, (x, y) => x * y)))
            .Concat(model.Lora!.Parameters().Select(p => (p.Name, Length: (long)p.Values.Length))).ToDictionary(p => p.Name, p => p.Length);
        var names = lengths.Keys.ToList();
        var kept = new Gradients(names, n => lengths[n]);
        var a = model.ForwardBackward(batch, kept);
        model.ActivationMemoryBudget = 0; // forces per-layer checkpoints and recomputation
        var recomputed = new Gradients(names, n => lengths[n]);
        var b = model.ForwardBackward(batch, recomputed);
        Assert.Equal(a.Loss, b.Loss);
        foreach (string n in names) Assert.Equal(kept[n].ToArray(), recomputed[n].ToArray());
    }

    [Theory]
    [InlineData("phi3", new[] { "qkv_proj", "gate_up_proj", "o_proj" })]
    [InlineData("gemma2", new[] { "q_proj", "down_proj", "up_proj" })]
    [InlineData("qwen3", new[] { "k_proj", "gate_proj" })]
    public void LoraGradientsOnFamilyModulesMatchFiniteDifferences(string variant, string[] targets)
    {
        var config = TransformerTests.ConfigOf(variant);
        var model = Model(variant, seed: 37, lora: LoraWeights.Create(config, 2, 4, targets, rslora: false, seed: 38));
        var rng = new Random(39); // B starts at zero; give it values so dA is not trivially zero
        foreach (var (_, values) in model.Lora!.Parameters())
            for (int i = 0; i < values.Length; i++) values[i] = (float)(rng.NextDouble() - 0.5) * 0.5f;
        var batch = Batch.Create([[3, 1, 4, 1, 5, 9]], [[3, 1, 4, 1, 5, 9]]);
        var grads = model.Lora.CreateGradients();
        model.ForwardBackward(batch, grads);
        Assert.Equal(targets.Length * config.NumHiddenLayers * 2, model.Lora.Parameters().Count());
        foreach (var (name, values) in model.Lora.Parameters())
            GradientCheck.Check(name, values, grads[name].ToArray(), () => model.Loss(batch).Loss, h: 2e-3f, relative: 3e-2, absolute: 3e-4);
    }

    [Fact]
    public void Gemma2WithCapsOfABillionIsGemma2WithoutCaps()
    {
        // c·tanh(x/c) = x − x³/(3c²) + …: with c = 1e9 the difference is far below float32's resolution
        string Gemma(JsonNode? cap) => TransformerTests.Variant(TransformerTests.Tiny, o =>
        {
            o["architectures"] = new JsonArray("Gemma2ForCausalLM"); o["model_type"] = "gemma2"; o["sliding_window"] = 2; o["head_dim"] = 4;
            o["query_pre_attn_scalar"] = 3; o["attn_logit_softcapping"] = cap?.DeepClone(); o["final_logit_softcapping"] = cap?.DeepClone();
        });
        var capped = ModelConfig.Parse(Gemma(1e9), "config.json");
        var plain = ModelConfig.Parse(Gemma(null), "config.json");
        Assert.Equal(1e9, capped.AttnLogitSoftcapping);
        Assert.Null(plain.AttnLogitSoftcapping);
        Assert.Null(plain.FinalLogitSoftcapping);
        var weights = TransformerTests.RandomParameters(capped, seed: 40, scale: 1f);
        var batch = Batch.Create([[1, 5, 2, 9, 3, 8], [7, 4, 4]], [[1, 5, 2, 9, 3, 8], [-100, 4, 4]]);
        Near(new Transformer(weights).Logits(batch), new Transformer(weights).Logits(batch), 0, "determinism");
        var other = new ParameterSet(plain);
        foreach (var (name, _) in plain.ExpectedTensors()) other.Set(name, weights[name]);
        Near(new Transformer(other).Logits(batch), new Transformer(weights).Logits(batch), 1e-5, "logits");
        var names = capped.ExpectedTensors().Select(t => t.Name).ToList();
        var g1 = Gradients.For(capped, names);
        var g2 = Gradients.For(plain, names);
        new Transformer(weights).ForwardBackward(batch, g1);
        new Transformer(other).ForwardBackward(batch, g2);
        foreach (string n in names) Near(g2[n].ToArray(), g1[n].ToArray(), 1e-5, n);
    }

    [Fact]
    public void Gemma3IgnoresAttnLogitSoftcappingAsTransformersDoes()
    {
        // Gemma3TextConfig keeps attn_logit_softcapping, but Gemma3Attention.forward (modeling_gemma3.py, unlike
        // Gemma2Attention) passes no softcap to the attention function: a binding cap of 0.5 changes nothing there.
        // (Its final_logit_softcapping is applied, by Gemma3ForCausalLM.)
        string Gemma3(JsonNode? cap) => TransformerTests.Variant(TransformerTests.Tiny, o =>
        {
            o["architectures"] = new JsonArray("Gemma3ForCausalLM"); o["model_type"] = "gemma3_text"; o["head_dim"] = 4; o["sliding_window"] = 3;
            o["layer_types"] = new JsonArray("sliding_attention", "full_attention"); o["query_pre_attn_scalar"] = 1;
            o["attn_logit_softcapping"] = cap?.DeepClone();
        });
        var withCap = ModelConfig.Parse(Gemma3(0.5), "config.json");
        var plain = ModelConfig.Parse(Gemma3(null), "config.json");
        Assert.Null(withCap.AttnLogitSoftcapping);
        var weights = TransformerTests.RandomParameters(withCap, seed: 44, scale: 1f);
        var other = new ParameterSet(plain);
        foreach (var (name, _) in plain.ExpectedTensors()) other.Set(name, weights[name]);
        var batch = Batch.Create([[1, 5, 2, 9, 3, 8], [7, 4, 4]]);
        Near(new Transformer(other).Logits(batch), new Transformer(weights).Logits(batch), 0, "logits");
    }

    [Theory]
    [InlineData("gemma2", TensorDType.BF16, 2.828125f)]    // √8 = 2.8284271 rounded to bfloat16 (8 bits of mantissa)
    [InlineData("gemma3", TensorDType.F16, 2.828125f)]     // … and to float16 (11 bits): 2.828125 as well
    [InlineData("gemma2", TensorDType.F32, 2.8284271f)]
    public void GemmasEmbeddingsAreScaledBySqrtHiddenInTheEmbeddingsDType(string variant, TensorDType dtype, float normalizer)
    {
        // Gemma2Model: normalizer = torch.tensor(hidden_size ** 0.5, dtype=hidden_states.dtype); Gemma3: embed_scale.to(weight.dtype)
        using var dir = new Irr.Tests.IO.TempDir();
        string path = Irr.Tests.IO.TinyModels.Create(dir["m"], TransformerTests.ConfigOf(variant).Json.ToJsonString(), dtype);
        using var weights = CheckpointWeights.Open(path);
        var x = new Transformer(weights).Embed(Batch.Create([[3, 7]]));
        var rows = new float[2 * 8];
        weights.LoadRows("model.embed_tokens.weight", 3, 1, rows.AsSpan(0, 8));
        weights.LoadRows("model.embed_tokens.weight", 7, 1, rows.AsSpan(8, 8));
        Assert.Equal(rows.Select(r => r * normalizer), x);
    }

    [Fact]
    public void Gemma3sSlidingLayersRotateWithTheLocalBaseAndNoScaling()
    {
        // Both layers sliding with a window longer than the sequence, rope_local_base_freq 7 and linear scaling (global only):
        // the model of both layers full with rope_theta 7 and no scaling
        string Gemma3(Action<JsonObject> edit) => TransformerTests.Variant(TransformerTests.Tiny, o =>
        {
            o["architectures"] = new JsonArray("Gemma3ForCausalLM"); o["model_type"] = "gemma3_text"; o["head_dim"] = 4; o["sliding_window"] = 64;
            edit(o);
        });
        var local = ModelConfig.Parse(Gemma3(o =>
        {
            o["layer_types"] = new JsonArray("sliding_attention", "sliding_attention"); o["rope_theta"] = 1e6; o["rope_local_base_freq"] = 7.0;
            o["rope_scaling"] = new JsonObject { ["rope_type"] = "linear", ["factor"] = 5.0 };
        }), "config.json");
        var global = ModelConfig.Parse(Gemma3(o => { o["layer_types"] = new JsonArray("full_attention", "full_attention"); o["rope_theta"] = 7.0; }), "config.json");
        var weights = TransformerTests.RandomParameters(local, seed: 43, scale: 0.8f);
        var same = new ParameterSet(global);
        foreach (var (name, _) in global.ExpectedTensors()) same.Set(name, weights[name]);
        var batch = Batch.Create([[1, 5, 2, 9, 3, 8, 4, 4, 0]]);
        Near(new Transformer(same).Logits(batch), new Transformer(weights).Logits(batch), 0, "logits");
        // and the base matters: the global layers of the first config rotate with 1e6 and the factor 5
        var full = ModelConfig.Parse(Gemma3(o =>
        {
            o["layer_types"] = new JsonArray("full_attention", "full_attention"); o["rope_theta"] = 1e6;
            o["rope_scaling"] = new JsonObject { ["rope_type"] = "linear", ["factor"] = 5.0 };
        }), "config.json");
        var other = new ParameterSet(full);
        foreach (var (name, _) in full.ExpectedTensors()) other.Set(name, weights[name]);
        Assert.True(new Transformer(other).Logits(batch).Zip(new Transformer(weights).Logits(batch)).Max(p => Math.Abs(p.First - p.Second)) > 1e-3);
    }

    [Fact]
    public void AGemmaCheckpointLoadedForFullFineTuningScalesItsEmbeddingsAsWhenStreamed()
    {
        // bf16 Gemma-2 (hidden 32: √32 rounds to 5.65625 in bf16): the resident copy full fine-tuning trains keeps the
        // stored dtype, so its normalizer is rounded as the checkpoint's own forward rounds it
        using var weights = CheckpointWeights.Open(Text.Fixtures.Local("torch/families/gemma2-bf16"));
        var batch = Batch.Create([[5, 17, 99, 3, 42, 8]]);
        var streamed = new Transformer(weights).Logits(batch);
        var resident = new Transformer(ParameterSet.LoadAll(weights)).Logits(batch);
        Assert.Equal(streamed, resident);
    }

    [Fact]
    public void AHeadDimLargerThanTheHiddenSizeRuns()
    {
        // Llama with head_dim 12 > hidden_size 8 (attention width 2 × 12 = 24), against the double-precision reference
        var config = ModelConfig.Parse(TransformerTests.Variant(TransformerTests.Tiny, o => o["head_dim"] = 12), "config.json");
        var weights = TransformerTests.RandomParameters(config, seed: 42);
        int[] tokens = [1, 5, 2, 9, 3];
        var logits = new Transformer(weights).Logits(Batch.Create([tokens]));
        var expected = NaiveLlama.Logits(config, n => weights[n], tokens);
        for (int t = 0; t < tokens.Length; t++) Near(Row(expected, t), logits.AsSpan(t * config.VocabSize, config.VocabSize).ToArray(), 1e-4, $"logits[{t}]");
    }

    [Fact]
    public void Qwen3sQkNormMakesAttentionBlindToTheScaleOfQueryAndKeyProjections()
    {
        // q_norm and k_norm divide each head by its RMS: scaling q_proj and k_proj (weights and biases) by 16 changes
        // nothing but the eps term (1e-12 here); without qk-norm (Qwen2's layout, rows the same) it changes the logits.
        var config = ModelConfig.Parse(TransformerTests.Variant(TransformerTests.Tiny, o =>
        {
            o["architectures"] = new JsonArray("Qwen3ForCausalLM"); o["head_dim"] = 6; o["attention_bias"] = true; o["rms_norm_eps"] = 1e-12;
        }), "config.json");
        var weights = TransformerTests.RandomParameters(config, seed: 41);
        var scaled = new ParameterSet(config);
        foreach (var (name, _) in config.ExpectedTensors())
            scaled.Set(name, name.Contains("q_proj") || name.Contains("k_proj") ? [.. weights[name].Select(x => 16 * x)] : weights[name]);
        var batch = Batch.Create([[1, 5, 2, 9, 3, 8], [7, 4, 4]]);
        var a = new Transformer(weights).Logits(batch);
        Near(a, new Transformer(scaled).Logits(batch), 1e-5, "logits");
        // the norms are there: q_norm's weight changes the logits
        var normed = new ParameterSet(config);
        foreach (var (name, _) in config.ExpectedTensors())
            normed.Set(name, name.EndsWith("q_norm.weight", StringComparison.Ordinal) ? [.. weights[name].Select(x => 3 * x)] : weights[name]);
        Assert.True(a.Zip(new Transformer(normed).Logits(batch)).Max(p => Math.Abs(p.First - p.Second)) > 1e-2);
    }
}
