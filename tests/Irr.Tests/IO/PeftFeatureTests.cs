using Irr.IO;

namespace Irr.Tests.IO;

/// <summary>
/// PEFT features merged as PEFT merges them, or refused by name (issue 23, item 5). Expected tensors are computed in the
/// test from PEFT's documented rules: trainable tokens (tuners/trainable_tokens/layer.py: <c>index_copy</c> of
/// <c>trainable_tokens_delta</c> rows at <c>token_indices</c>; heads tied per utils/other.set_additional_trainable_modules),
/// LoRA on an embedding (tuners/lora/layer.py Embedding.get_delta_weight: <c>transpose(B·A)·scaling</c>), and
/// rank_pattern/alpha_pattern (utils/other.get_pattern_key: the first key k with <c>re.match(r"(.*\.)?(k)$", module)</c>).
/// </summary>
public class PeftFeatureTests
{
    private const string Embed = "model.embed_tokens.weight", Head = "lm_head.weight";
    private const int V = 64, C = 16;

    private static float[] Load(IWeightSource source, string name)
    {
        float[] scratch = [];
        return source.Load(name, ref scratch).ToArray();
    }

    // `original` with rows `indices` replaced by the rows of `delta`.
    private static float[] WithRows(float[] original, int[] indices, float[] delta)
    {
        var w = (float[])original.Clone();
        for (int i = 0; i < indices.Length; i++) Array.Copy(delta, i * C, w, indices[i] * C, C);
        return w;
    }

    private static string Base(TempDir dir, bool tied) => TinyModels.Create(dir["base"], AdapterFiles.TinyConfig(tied), TensorDType.F32);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void TrainableTokenIndicesWriteTheirRowsIntoTheEmbeddingAndATiedHeadFollows(bool tied)
    {
        using var dir = new TempDir();
        string baseModel = Base(dir, tied);
        int[] ids = [3, 10, 63];
        var delta = AdapterFiles.Random(1, ids.Length * C);
        string adapter = AdapterFiles.Write(dir["adapter"], """{"peft_type":"LORA","r":2,"lora_alpha":4,"target_modules":["q_proj"],"trainable_token_indices":[3,10,63]}""",
            [("base_model.model.model.embed_tokens.token_adapter.trainable_tokens_delta", [3, C], delta)]);
        using var weights = CheckpointWeights.Open(baseModel, adapter);
        var expected = WithRows(AdapterFiles.Stored(baseModel, Embed), ids, delta);
        Assert.Equal(expected, Load(weights, Embed));
        // PEFT ties the head's token adapter to the embedding's: the model stays tied (or keeps its own head).
        Assert.Equal(tied, weights.Config.TieWordEmbeddings);
        if (!tied) Assert.Equal(AdapterFiles.Stored(baseModel, Head), Load(weights, Head));
        var row = new float[C];
        weights.LoadRows(Embed, 10, 1, row);
        Assert.Equal(delta.AsSpan(C, C).ToArray(), row);
        weights.LoadRows(Embed, 11, 1, row);
        Assert.Equal(AdapterFiles.Stored(baseModel, Embed).AsSpan(11 * C, C).ToArray(), row);
    }

    [Fact]
    public void TrainableTokensWithOtherIndicesForTheHeadUntieATiedBase()
    {
        using var dir = new TempDir();
        string baseModel = Base(dir, tied: true);
        var de = AdapterFiles.Random(2, 2 * C);
        var dh = AdapterFiles.Random(3, 1 * C);
        string adapter = AdapterFiles.Write(dir["adapter"], """{"peft_type":"LORA","r":2,"lora_alpha":4,"target_modules":["q_proj"],"trainable_token_indices":{"embed_tokens":[3,10],"lm_head":[5]}}""",
            [("base_model.model.model.embed_tokens.token_adapter.trainable_tokens_delta", [2, C], de),
             ("base_model.model.lm_head.token_adapter.trainable_tokens_delta", [1, C], dh)]);
        using var weights = CheckpointWeights.Open(baseModel, adapter);
        var original = AdapterFiles.Stored(baseModel, Embed);
        Assert.False(weights.Config.TieWordEmbeddings);
        Assert.Equal(WithRows(original, [3, 10], de), Load(weights, Embed));
        Assert.Equal(WithRows(original, [5], dh), Load(weights, Head));
    }

    [Fact]
    public void TrainableTokensAdaptersMergeTheirRows()
    {
        using var dir = new TempDir();
        string baseModel = Base(dir, tied: true);
        var delta = AdapterFiles.Random(4, 2 * C);
        string adapter = AdapterFiles.Write(dir["adapter"], """{"peft_type":"TRAINABLE_TOKENS","token_indices":[2,4],"target_modules":["embed_tokens"],"init_weights":true}""",
            [("base_model.model.model.embed_tokens.trainable_tokens_delta", [2, C], delta)]);
        using var weights = CheckpointWeights.Open(baseModel, adapter);
        Assert.True(weights.Config.TieWordEmbeddings);
        Assert.Equal(WithRows(AdapterFiles.Stored(baseModel, Embed), [2, 4], delta), Load(weights, Embed));
    }

    [Fact]
    public void TrainableTokensThatDoNotFitAreRefusedByName()
    {
        using var dir = new TempDir();
        string baseModel = Base(dir, tied: true);
        AdapterFiles.Write(dir["far"], """{"peft_type":"LORA","r":2,"target_modules":["q_proj"],"trainable_token_indices":[64]}""",
            [("base_model.model.model.embed_tokens.token_adapter.trainable_tokens_delta", [1, C], new float[C])]);
        Assert.Contains("trainable token index 64 is beyond the 64 rows of model.embed_tokens.weight",
            Assert.Throws<IrrException>(() => CheckpointWeights.Open(baseModel, dir["far"]).Dispose()).Message);
        AdapterFiles.Write(dir["count"], """{"peft_type":"LORA","r":2,"target_modules":["q_proj"],"trainable_token_indices":[1,2]}""",
            [("base_model.model.model.embed_tokens.token_adapter.trainable_tokens_delta", [1, C], new float[C])]);
        Assert.Contains("gives 2 token indices for 'model.embed_tokens'", Assert.Throws<IrrException>(() => LoraAdapter.Open(dir["count"]).Dispose()).Message);
        AdapterFiles.Write(dir["none"], """{"peft_type":"LORA","r":2,"target_modules":["q_proj"]}""",
            [("base_model.model.model.embed_tokens.token_adapter.trainable_tokens_delta", [1, C], new float[C])]);
        Assert.Contains("gives no token indices", Assert.Throws<IrrException>(() => LoraAdapter.Open(dir["none"]).Dispose()).Message);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void LoraOnTheEmbeddingAddsTheTransposedProduct(bool tied, bool ensure)
    {
        using var dir = new TempDir();
        string baseModel = Base(dir, tied);
        const int r = 2;
        var a = AdapterFiles.Random(5, r * V);   // lora_embedding_A [r, V]
        var b = AdapterFiles.Random(6, C * r);   // lora_embedding_B [C, r]
        string adapter = AdapterFiles.Write(dir["adapter"], $$"""{"peft_type":"LORA","r":2,"lora_alpha":6,"target_modules":["embed_tokens"],"ensure_weight_tying":{{(ensure ? "true" : "false")}}}""",
            [("base_model.model.model.embed_tokens.lora_embedding_A", [r, V], a), ("base_model.model.model.embed_tokens.lora_embedding_B", [C, r], b)]);
        using var weights = CheckpointWeights.Open(baseModel, adapter);
        var original = AdapterFiles.Stored(baseModel, Embed);
        var merged = Load(weights, Embed);
        for (int v = 0; v < V; v++)
            for (int c = 0; c < C; c++)
            {
                // W[v, c] + (α/r)·Σ_k B[c, k]·A[k, v], α/r = 3
                double expected = original[v * C + c];
                for (int k = 0; k < r; k++) expected += 3.0 * b[c * r + k] * a[k * V + v];
                Assert.True(Math.Abs(merged[v * C + c] - expected) < 1e-6, $"embed[{v},{c}] = {merged[v * C + c]}, expected {expected}");
            }
        var row = new float[C];
        weights.LoadRows(Embed, 40, 1, row);
        Assert.Equal(merged.AsSpan(40 * C, C).ToArray(), row);
        // A tied head keeps the original embedding unless ensure_weight_tying (PEFT ties lm_head's LoRA to the embedding's).
        Assert.Equal(tied && ensure, weights.Config.TieWordEmbeddings);
        if (tied && !ensure) Assert.Equal(original, Load(weights, Head));
    }

    [Fact]
    public void SavedEmbeddingBaseLayersReplaceTheBaseBeforeTheDelta()
    {
        using var dir = new TempDir();
        string baseModel = Base(dir, tied: false);
        var saved = AdapterFiles.Random(7, V * C);
        var a = AdapterFiles.Random(8, 2 * V);
        var b = AdapterFiles.Random(9, C * 2);
        string adapter = AdapterFiles.Write(dir["adapter"], """{"peft_type":"LORA","r":2,"lora_alpha":2,"target_modules":["embed_tokens"]}""",
            [("base_model.model.model.embed_tokens.base_layer.weight", [V, C], saved),
             ("base_model.model.model.embed_tokens.lora_embedding_A", [2, V], a), ("base_model.model.model.embed_tokens.lora_embedding_B", [C, 2], b)]);
        using var weights = CheckpointWeights.Open(baseModel, adapter);
        var merged = Load(weights, Embed);
        for (int v = 0; v < V; v++)
            for (int c = 0; c < C; c++)
            {
                double expected = saved[v * C + c] + 1.0 * (b[c * 2] * (double)a[v] + b[c * 2 + 1] * (double)a[V + v]);
                Assert.True(Math.Abs(merged[v * C + c] - expected) < 1e-6, $"embed[{v},{c}]");
            }
    }

    [Fact]
    public void RankAndAlphaPatternsScaleEachModuleAsPeftMatchesThem()
    {
        var config = LoraConfig.Parse("""
            {"peft_type":"LORA","r":2,"lora_alpha":4,"target_modules":["q_proj","v_proj","down_proj"],
             "rank_pattern":{"layers.0.self_attn.q_proj":4,"proj":16},"alpha_pattern":{"v_proj|down_proj":12}}
            """, "adapter_config.json");
        Assert.Equal(4, config.RankOf("model.layers.0.self_attn.q_proj"));
        Assert.Equal(2, config.RankOf("model.layers.1.self_attn.q_proj"));   // no key ends the name
        Assert.Equal(2, config.RankOf("model.layers.10.self_attn.q_proj"));  // "layers.0" must start at a dot
        Assert.Equal(4.0 / 4, config.ScaleOf("model.layers.0.self_attn.q_proj"));
        Assert.Equal(12.0 / 2, config.ScaleOf("model.layers.1.mlp.down_proj"));
        Assert.Equal(12.0 / 2, config.ScaleOf("model.layers.0.self_attn.v_proj"));
        Assert.Equal(4.0 / 2, config.ScaleOf("model.layers.0.self_attn.k_proj"));

        using var dir = new TempDir();
        string baseModel = Base(dir, tied: false);
        const string q0 = "model.layers.0.self_attn.q_proj", q1 = "model.layers.1.self_attn.q_proj";
        var a0 = AdapterFiles.Random(10, 4 * C);
        var b0 = AdapterFiles.Random(11, C * 4);
        var a1 = AdapterFiles.Random(12, 2 * C);
        var b1 = AdapterFiles.Random(13, C * 2);
        string adapter = AdapterFiles.Write(dir["adapter"], """{"peft_type":"LORA","r":2,"lora_alpha":4,"target_modules":["q_proj"],"rank_pattern":{"layers.0.self_attn.q_proj":4},"alpha_pattern":{"layers.1.self_attn.q_proj":6}}""",
            [($"base_model.model.{q0}.lora_A.weight", [4, C], a0), ($"base_model.model.{q0}.lora_B.weight", [C, 4], b0),
             ($"base_model.model.{q1}.lora_A.weight", [2, C], a1), ($"base_model.model.{q1}.lora_B.weight", [C, 2], b1)]);
        using var model = ModelDirectory.Open(baseModel);
        using var lora = LoraAdapter.Open(adapter);
        foreach (var (module, a, b, r, scale) in new[] { (q0, a0, b0, 4, 4.0 / 4), (q1, a1, b1, 2, 6.0 / 2) })
        {
            var merged = lora.ReadMerged(model, module + ".weight");
            var w = AdapterFiles.Stored(baseModel, module + ".weight");
            for (int i = 0; i < C; i++)
                for (int j = 0; j < C; j++)
                {
                    double expected = w[i * C + j];
                    for (int k = 0; k < r; k++) expected += scale * b[i * r + k] * (double)a[k * C + j];
                    Assert.True(Math.Abs(merged[i * C + j] - expected) < 1e-6, $"{module}[{i},{j}]");
                }
        }
    }

    private static IrrException Refused(string configJson)
    {
        using var dir = new TempDir();
        AdapterFiles.Write(dir["adapter"], configJson, []);
        return Assert.Throws<IrrException>(() => LoraAdapter.Open(dir["adapter"]).Dispose());
    }

    [Theory]
    [InlineData("use_dora", "true")]
    [InlineData("layer_replication", "[[0, 2], [1, 2]]")]
    [InlineData("use_qalora", "true")]
    [InlineData("lora_bias", "true")]
    [InlineData("target_parameters", "[\"mlp.experts.gate_up_proj\"]")]
    [InlineData("megatron_config", "{\"tensor_model_parallel_size\": 2}")]
    [InlineData("alora_invocation_tokens", "[5, 6]")]
    [InlineData("use_bdlora", "{\"nblocks\": 2}")]
    [InlineData("velora_config", "{\"num_groups\": 2}")]
    [InlineData("kasa_config", "{\"beta\": 1}")]
    [InlineData("arrow_config", "{\"top_k\": 2}")]
    [InlineData("init_lora_weights", "\"pissa_niter_4\"")]
    [InlineData("init_lora_weights", "\"olora\"")]
    [InlineData("init_lora_weights", "\"corda\"")]
    public void KeysThatChangeTheFunctionAreRefusedByName(string key, string value)
    {
        var e = Refused($$"""{"peft_type":"LORA","r":2,"lora_alpha":4,"target_modules":["q_proj"],"{{key}}":{{value}}}""");
        Assert.Contains($"adapter_config.json: {key} is ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void MalformedPatternsAndKeysAreNamedOnOneLine()
    {
        var e = Refused("""{"peft_type":"LORA","r":2,"rank_pattern":{"q_proj(":4}}""");
        Assert.Contains("rank_pattern key 'q_proj(' is not a regular expression", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains("alpha_pattern['v_proj'] must be a number", Refused("""{"peft_type":"LORA","r":2,"alpha_pattern":{"v_proj":"x"}}""").Message);
        using var dir = new TempDir();
        AdapterFiles.Write(dir["adapter"], """{"peft_type":"LORA","r":2,"target_modules":["q_proj"],"bad\nkey":1}""", []);
        var warning = Assert.Single(AdapterFiles.Warnings(() => LoraAdapter.Open(dir["adapter"]).Dispose()));
        Assert.Contains("bad\\nkey", warning);
        Assert.DoesNotContain('\n', warning);
    }

    [Fact]
    public void OtherPeftTypesAreRefusedByName()
    {
        Assert.Contains("peft_type 'IA3' is not supported", Refused("""{"peft_type":"IA3"}""").Message);
        Assert.Contains("peft_type 'ADALORA' is not supported", Refused("""{"peft_type":"ADALORA","r":8}""").Message);
    }

    [Fact]
    public void KeysAtTheirDefaultsAndTrainingOnlyKeysAreAccepted()
    {
        using var dir = new TempDir();
        AdapterFiles.Write(dir["adapter"], """
            {"peft_type":"LORA","task_type":"CAUSAL_LM","r":2,"lora_alpha":4,"target_modules":["q_proj"],"use_dora":false,"layer_replication":null,
             "use_qalora":false,"qalora_group_size":16,"lora_bias":false,"target_parameters":null,"megatron_config":null,"megatron_core":"megatron.core",
             "alora_invocation_tokens":null,"init_lora_weights":"gaussian","lora_dropout":0.05,"loftq_config":{},"eva_config":null,"corda_config":null,
             "exclude_modules":null,"rank_pattern":{},"alpha_pattern":{},"runtime_config":{"ephemeral_gpu_offload":false},"inference_mode":true,
             "layers_to_transform":null,"layers_pattern":null,"modules_to_save":null,"trainable_token_indices":null,"ensure_weight_tying":false,
             "peft_version":"0.18.0","revision":null,"auto_mapping":null,"use_bdlora":null,"arrow_config":null,"kasa_config":null}
            """, []);
        var warnings = AdapterFiles.Warnings(() => LoraAdapter.Open(dir["adapter"]).Dispose());
        Assert.Empty(warnings);
    }

    [Fact]
    public void UnknownKeysAreWarnedAboutByNameAsPeftDoes()
    {
        using var dir = new TempDir();
        AdapterFiles.Write(dir["adapter"], """{"peft_type":"LORA","r":2,"target_modules":["q_proj"],"use_future_trick":true,"future_off":null}""", []);
        var warnings = AdapterFiles.Warnings(() => LoraAdapter.Open(dir["adapter"]).Dispose());
        var warning = Assert.Single(warnings);
        Assert.Contains("keys unknown to irr are ignored", warning);
        Assert.Contains("use_future_trick", warning);
        Assert.DoesNotContain("future_off", warning);

        // fan_in_fan_out (GPT-2's Conv1D) is ignored for Linear layers, as PEFT does, and said so through the warnings channel.
        AdapterFiles.Write(dir["fan"], """{"peft_type":"LORA","r":2,"target_modules":["q_proj"],"fan_in_fan_out":true}""", []);
        warning = Assert.Single(AdapterFiles.Warnings(() => LoraAdapter.Open(dir["fan"]).Dispose()));
        Assert.Contains("adapter_config.json: fan_in_fan_out is true", warning);
    }

    [Fact]
    public void LayersToTransformMustCoverTheTensorsPresent()
    {
        using var dir = new TempDir();
        const string q1 = "base_model.model.model.layers.1.self_attn.q_proj";
        AdapterFiles.Write(dir["adapter"], """{"peft_type":"LORA","r":2,"target_modules":["q_proj"],"layers_to_transform":[0],"layers_pattern":"layers"}""",
            [(q1 + ".lora_A.weight", [2, C], new float[2 * C]), (q1 + ".lora_B.weight", [C, 2], new float[C * 2])]);
        Assert.Contains("adapts layer 1, but layers_to_transform is [0]", Assert.Throws<IrrException>(() => LoraAdapter.Open(dir["adapter"]).Dispose()).Message);
        AdapterFiles.Write(dir["ok"], """{"peft_type":"LORA","r":2,"target_modules":["q_proj"],"layers_to_transform":1}""",
            [(q1 + ".lora_A.weight", [2, C], new float[2 * C]), (q1 + ".lora_B.weight", [C, 2], new float[C * 2])]);
        using var adapter = LoraAdapter.Open(dir["ok"]);
        Assert.Single(adapter.Pairs);
    }

    [Fact]
    public void RegularExpressionTargetsGiveTheModulesTheAdapterHas()
    {
        // PEFT: "all-linear" is every linear layer but the head; another string is re.fullmatch-ed against module names,
        // so the modules it matched are those with LoRA pairs in the file.
        using var dir = new TempDir();
        const string v0 = "base_model.model.model.layers.0.self_attn.v_proj", d1 = "base_model.model.model.layers.1.mlp.down_proj";
        AdapterFiles.Write(dir["regex"], """{"peft_type":"LORA","r":2,"target_modules":".*\\.(v_proj|down_proj)"}""",
            [(v0 + ".lora_A.weight", [2, C], new float[2 * C]), (v0 + ".lora_B.weight", [8, 2], new float[16]),
             (d1 + ".lora_A.weight", [2, 40], new float[80]), (d1 + ".lora_B.weight", [C, 2], new float[2 * C])]);
        using (var adapter = LoraAdapter.Open(dir["regex"]))
            Assert.Equal(["v_proj", "down_proj"], Irr.Realign.RealignJob.AdapterTargets(adapter));
        AdapterFiles.Write(dir["all"], """{"peft_type":"LORA","r":2,"target_modules":"all-linear"}""", []);
        using (var adapter = LoraAdapter.Open(dir["all"]))   // "all": every linear module of the base's family (FamilyAdapterTests: Phi-3's four)
            Assert.Equal(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                Irr.Realign.TargetModules.For(ModelConfig.Parse(TinyModels.LlamaConfig, "config.json"), Irr.Realign.RealignJob.AdapterTargets(adapter)));
        // a list entry matches as a suffix of the module's name (PEFT: key == target or key.endswith("." + target))
        AdapterFiles.Write(dir["suffix"], """{"peft_type":"LORA","r":2,"target_modules":["self_attn.v_proj","mlp.down_proj"]}""", []);
        using (var adapter = LoraAdapter.Open(dir["suffix"]))
            Assert.Equal(["v_proj", "down_proj"], Irr.Realign.RealignJob.AdapterTargets(adapter));
        AdapterFiles.Write(dir["none"], """{"peft_type":"LORA","r":2,"target_modules":".*embed_tokens"}""", []);
        using (var adapter = LoraAdapter.Open(dir["none"]))
            Assert.Contains("give the modules explicitly", Assert.Throws<IrrException>(() => Irr.Realign.RealignJob.AdapterTargets(adapter)).Message);
    }
}
