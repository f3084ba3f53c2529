using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Model;
using Irr.Realign;
using Irr.Tests.Model;

namespace Irr.Tests.IO;

/// <summary>
/// PEFT LoRA adapters on each newer family merged as PEFT merges them (tuners/lora/layer.Linear.get_delta_weight:
/// W + (α/r)·B·A, for Phi-3 on the fused qkv_proj and gate_up_proj), every expected weight computed here by a naive
/// loop in double; and Gemma's head, tied when config.json does not say (Gemma2Config, Gemma3TextConfig), following
/// the tied-head rules of <see cref="TiedHeadTests"/>.
/// </summary>
public class FamilyAdapterTests
{
    private const int Rank = 2;
    private const double Alpha = 6; // α/r = 3

    private static string Base(TempDir dir, string variant) =>
        TinyModels.Create(dir["base"], TransformerTests.ConfigOf(variant).Json.ToJsonString(), TensorDType.F32);

    private static string PeftConfig(IEnumerable<string> targets, string extra = "") =>
        $$"""{"peft_type":"LORA","r":{{Rank}},"lora_alpha":{{Alpha}},"target_modules":[{{string.Join(",", targets.Select(t => $"\"{t}\""))}}]{{extra}}}""";

    private static float[] Load(IWeightSource source, string name)
    {
        float[] scratch = [];
        return source.Load(name, ref scratch).ToArray();
    }

    // W + (α/r)·B·A by a loop in double: W (out × in), B (out × r), A (r × in).
    private static float[] Merged(float[] w, float[] b, float[] a, int outDim, int inDim)
    {
        var merged = new float[w.Length];
        for (int i = 0; i < outDim; i++)
            for (int j = 0; j < inDim; j++)
            {
                double ba = 0;
                for (int k = 0; k < Rank; k++) ba += (double)b[i * Rank + k] * a[k * inDim + j];
                merged[i * inDim + j] = (float)(w[i * inDim + j] + Alpha / Rank * ba);
            }
        return merged;
    }

    [Theory]
    [InlineData("qwen3")]
    [InlineData("gemma2")]
    [InlineData("gemma3")]
    [InlineData("phi3")]
    public void EveryLinearModuleOfTheFamilyMergesAsPeftDoes(string variant)
    {
        using var dir = new TempDir();
        string baseModel = Base(dir, variant);
        var config = TransformerTests.ConfigOf(variant);
        var factors = new Dictionary<string, (float[] A, float[] B, int Out, int In)>();
        var tensors = new List<(string, long[], float[])>();
        int seed = 10;
        foreach (string name in TargetModules.WeightNames(config, TargetModules.All))
        {
            var module = name.Split('.')[^2];
            var (outDim, inDim) = config.LinearShape(module);
            var (a, b) = (AdapterFiles.Random(seed++, Rank * inDim), AdapterFiles.Random(seed++, outDim * Rank));
            factors[name] = (a, b, outDim, inDim);
            string key = "base_model.model." + name[..^".weight".Length];
            tensors.Add((key + ".lora_A.weight", [Rank, inDim], a));
            tensors.Add((key + ".lora_B.weight", [outDim, Rank], b));
        }
        string adapter = AdapterFiles.Write(dir["adapter"], PeftConfig(config.LinearModules), tensors);
        using var weights = CheckpointWeights.Open(baseModel, adapter);
        Assert.Equal(config.TieWordEmbeddings, weights.Config.TieWordEmbeddings);
        foreach (var (name, _) in config.ExpectedTensors())
        {
            var stored = AdapterFiles.Stored(baseModel, name);
            var loaded = Load(weights, name);
            if (!factors.TryGetValue(name, out var f))
            {
                Assert.Equal(stored, loaded);   // norms (q_norm, k_norm, Gemma's four), embeddings, head: the base's
                continue;
            }
            var expected = Merged(stored, f.B, f.A, f.Out, f.In);
            for (int i = 0; i < expected.Length; i++)
                Assert.True(Math.Abs(loaded[i] - expected[i]) <= 1e-6 * Math.Max(1, Math.Abs(expected[i])), $"{variant}: {name}[{i}] = {loaded[i]}, naive {expected[i]}");
        }
        // What irr realign --adapter realigns without --modules: the adapter's targets, and for "all-linear" the family's modules.
        Assert.Equal(config.LinearModules, TargetModules.For(config, RealignJob.AdapterTargets(weights.Adapter!)));
        AdapterFiles.Write(dir["all-linear"], PeftConfig([]).Replace("[]", "\"all-linear\""), tensors);
        using var allLinear = LoraAdapter.Open(dir["all-linear"]);
        Assert.Equal(config.LinearModules, TargetModules.For(config, RealignJob.AdapterTargets(allLinear)));
    }

    [Fact]
    public void APhi3AdapterOnQAndVOnlyNamesNoModuleOfTheFamily()
    {
        // PEFT finds no q_proj in Phi3ForCausalLM ("Target modules {'q_proj', 'v_proj'} not found in the base model"); irr says so
        // before any work rather than adapting nothing.
        using var dir = new TempDir();
        string baseModel = Base(dir, "phi3");
        string adapter = AdapterFiles.Write(dir["adapter"], PeftConfig(["q_proj", "v_proj"]),
            [("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", [Rank, 8], AdapterFiles.Random(1, Rank * 8)),
             ("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", [8, Rank], AdapterFiles.Random(2, 8 * Rank))]);
        var e = Assert.Throws<IrrException>(() => CheckpointWeights.Open(baseModel, adapter).Dispose());
        Assert.EndsWith("the adapter adapts 'model.layers.0.self_attn.q_proj.weight', which " + baseModel +
                        " does not have (q_proj is not a linear module of phi3; its modules: qkv_proj, o_proj, gate_up_proj, down_proj)", e.Message);
    }

    [Theory]
    [InlineData("gemma2")]
    [InlineData("gemma3")]
    public void GemmasHeadIsTiedWhenTheConfigDoesNotSayAndFollowsPeftsTiedHeadRules(string variant)
    {
        using var dir = new TempDir();
        string baseModel = Base(dir, variant);
        var config = TransformerTests.ConfigOf(variant);
        Assert.False(config.Json.ContainsKey("tie_word_embeddings"));
        Assert.True(config.TieWordEmbeddings);
        using (var model = ModelDirectory.Open(baseModel)) Assert.False(model.Contains("lm_head.weight"));
        int v = config.VocabSize, c = config.HiddenSize;
        var embed = AdapterFiles.Stored(baseModel, "model.embed_tokens.weight");

        // LoRA on lm_head of a tied base: the head is E + (α/r)·B·A, the embedding stays E, the model is untied (PEFT #2777).
        var a = AdapterFiles.Random(20, Rank * c);
        var b = AdapterFiles.Random(21, v * Rank);
        AdapterFiles.Write(dir["head-lora"], PeftConfig(["q_proj", "lm_head"]),
            [("base_model.model.lm_head.lora_A.weight", [Rank, c], a), ("base_model.model.lm_head.lora_B.weight", [v, Rank], b)]);
        using (var weights = CheckpointWeights.Open(baseModel, dir["head-lora"]))
        {
            Assert.False(weights.Config.TieWordEmbeddings);
            var expected = Merged(embed, b, a, v, c);
            var head = Load(weights, "lm_head.weight");
            for (int i = 0; i < head.Length; i++) Assert.True(Math.Abs(head[i] - expected[i]) < 1e-6, $"lm_head[{i}]");
            Assert.Equal(embed, Load(weights, "model.embed_tokens.weight"));
        }

        // modules_to_save on the embedding: the embedding is the adapter's copy and the head keeps the base's embedding.
        var saved = AdapterFiles.Random(22, v * c);
        AdapterFiles.Write(dir["embed-copy"], PeftConfig(["q_proj"], ""","modules_to_save":["embed_tokens"]"""),
            [("base_model.model.model.embed_tokens.weight", [v, c], saved)]);
        using (var weights = CheckpointWeights.Open(baseModel, dir["embed-copy"]))
        {
            Assert.False(weights.Config.TieWordEmbeddings);
            Assert.Equal(saved, Load(weights, "model.embed_tokens.weight"));
            Assert.Equal(embed, Load(weights, "lm_head.weight"));
        }

        // ensure_weight_tying: the head is the adapted embedding (the model stays tied: the head is read from the embedding).
        AdapterFiles.Write(dir["tied-copy"], PeftConfig(["q_proj"], ""","modules_to_save":["embed_tokens"],"ensure_weight_tying":true"""),
            [("base_model.model.model.embed_tokens.weight", [v, c], saved)]);
        using (var weights = CheckpointWeights.Open(baseModel, dir["tied-copy"]))
        {
            Assert.True(weights.Config.TieWordEmbeddings);
            Assert.Equal(saved, Load(weights, "model.embed_tokens.weight"));
        }
    }
}
