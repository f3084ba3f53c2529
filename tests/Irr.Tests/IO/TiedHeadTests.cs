using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Model;
using Irr.Tests.Model;

namespace Irr.Tests.IO;

/// <summary>
/// Tied embeddings and heads as PEFT and transformers compute them (issue 23, item 1). Every expected model is built in
/// the test by the documented rule from the stored tensors (PEFT: utils/other.set_additional_trainable_modules,
/// ModulesToSaveWrapper, tuners_utils._check_tied_modules, huggingface/peft#2777; transformers v5:
/// PreTrainedModel.tie_weights, "…present in the checkpoints with different values, so we will NOT tie them"), and its
/// logits come from the naive float64 Llama (<see cref="NaiveLlama"/>).
/// </summary>
public class TiedHeadTests
{
    private const string Embed = "model.embed_tokens.weight", Head = "lm_head.weight";
    private const int V = 64, C = 16;
    private static readonly int[] Tokens = [1, 7, 3, 63, 7, 0];

    private static string TiedBase(TempDir dir) => TinyModels.Create(dir["base"], AdapterFiles.TinyConfig(tied: true), TensorDType.F32);

    private static string Config(string extra = "") =>
        $$"""{"peft_type":"LORA","r":2,"lora_alpha":4,"target_modules":["q_proj"]{{extra}}}""";

    // The logits of `source` equal the naive model's with config `tied` and the weights `w`.
    private static void AssertLogits(IWeightSource source, bool tied, Func<string, float[]> w, int vocab = V, int[]? tokens = null)
    {
        tokens ??= Tokens;
        var json = JsonNode.Parse(AdapterFiles.TinyConfig(tied))!.AsObject();
        json["vocab_size"] = vocab;
        var expectedConfig = ModelConfig.Parse(json.ToJsonString(), "config.json");
        Assert.Equal(tied, source.Config.TieWordEmbeddings);
        Assert.Equal(vocab, source.Config.VocabSize);
        var logits = new Transformer(source).Logits(Batch.Create([tokens]));
        var expected = NaiveLlama.Logits(expectedConfig, w, tokens);
        for (int t = 0; t < tokens.Length; t++)
            for (int j = 0; j < vocab; j++)
                Assert.True(Math.Abs(logits[t * vocab + j] - expected[t, j]) < 1e-4, $"logit[{t},{j}] = {logits[t * vocab + j]}, naive {expected[t, j]}");
    }

    private static float[] Load(IWeightSource source, string name)
    {
        float[] scratch = [];
        return source.Load(name, ref scratch).ToArray();
    }

    [Fact]
    public void EmbedOnlyModulesToSaveOnATiedBaseKeepsTheOriginalHeadAndUnties()
    {
        using var dir = new TempDir();
        string baseModel = TiedBase(dir);
        var embed = AdapterFiles.Random(5, V * C);
        string adapter = AdapterFiles.Write(dir["adapter"], Config(""","modules_to_save":["embed_tokens"]"""),
            [("base_model.model.model.embed_tokens.weight", [V, C], embed)]);
        CheckpointWeights? weights = null;
        var warnings = AdapterFiles.Warnings(() => weights = CheckpointWeights.Open(baseModel, adapter));
        using (weights)
        {
            // PEFT's warning, once: the head keeps the base's embedding.
            Assert.Single(warnings, w => w.Contains("huggingface/peft#2777") && w.Contains("keeps the base's embedding"));
            var original = AdapterFiles.Stored(baseModel, Embed);
            Assert.Equal(original, Load(weights!, Head));
            Assert.Equal(embed, Load(weights!, Embed));
            // Rows read one by one (the embedding lookup) are the adapter's.
            var row = new float[C];
            weights!.LoadRows(Embed, 63, 1, row);
            Assert.Equal(embed.AsSpan(63 * C, C).ToArray(), row);
            AssertLogits(weights!, tied: false, n => n == Embed ? embed : n == Head ? original : AdapterFiles.Stored(baseModel, n));

            // Written (the library's merge), the model holds both tensors and says untied, so transformers loads the same function.
            ParameterSet.LoadAll(weights!).Save(dir["merged"], TensorDType.F32, baseModel);
        }
        var config = JsonNode.Parse(File.ReadAllText(dir["merged/config.json"]))!;
        Assert.False((bool)config["tie_word_embeddings"]!);
        Assert.Equal(AdapterFiles.Stored(baseModel, Embed), AdapterFiles.Stored(dir["merged"], Head));
        Assert.Equal(embed, AdapterFiles.Stored(dir["merged"], Embed));
        using var merged = CheckpointWeights.Open(dir["merged"]);
        AssertLogits(merged, tied: false, n => AdapterFiles.Stored(dir["merged"], n));
    }

    [Fact]
    public void EnsureWeightTyingMakesTheHeadTheAdaptedEmbedding()
    {
        using var dir = new TempDir();
        string baseModel = TiedBase(dir);
        var embed = AdapterFiles.Random(6, V * C);
        string adapter = AdapterFiles.Write(dir["adapter"], Config(""","modules_to_save":["embed_tokens"],"ensure_weight_tying":true"""),
            [("base_model.model.model.embed_tokens.weight", [V, C], embed)]);
        CheckpointWeights? weights = null;
        var warnings = AdapterFiles.Warnings(() => weights = CheckpointWeights.Open(baseModel, adapter));
        using (weights)
        {
            Assert.Empty(warnings);
            AssertLogits(weights!, tied: true, n => n == Embed ? embed : AdapterFiles.Stored(baseModel, n));
        }

        // PEFT saves the tied lm_head copy too: accepted when it is the embedding, refused by name when it is not.
        AdapterFiles.Write(dir["adapter2"], Config(""","modules_to_save":["embed_tokens","lm_head"],"ensure_weight_tying":true"""),
            [("base_model.model.model.embed_tokens.weight", [V, C], embed), ("base_model.model.lm_head.weight", [V, C], embed)]);
        using (var w2 = CheckpointWeights.Open(baseModel, dir["adapter2"])) AssertLogits(w2, tied: true, n => n == Embed ? embed : AdapterFiles.Stored(baseModel, n));
        AdapterFiles.Write(dir["adapter3"], Config(""","modules_to_save":["embed_tokens","lm_head"],"ensure_weight_tying":true"""),
            [("base_model.model.model.embed_tokens.weight", [V, C], embed), ("base_model.model.lm_head.weight", [V, C], AdapterFiles.Random(7, V * C))]);
        var e = Assert.Throws<IrrException>(() => CheckpointWeights.Open(baseModel, dir["adapter3"]).Dispose());
        Assert.Contains("ensure_weight_tying is true", e.Message);
    }

    [Fact]
    public void EnsureWeightTyingAcceptsTheHeadsTiedLoraFactors()
    {
        // PEFT (lora/model.py _create_and_replace): the tied lm_head's lora_A is lora_embedding_Bᵀ and its lora_B is
        // lora_embedding_Aᵀ, saved with the adapter; the head is the adapted embedding.
        using var dir = new TempDir();
        string baseModel = TiedBase(dir);
        var a = AdapterFiles.Random(20, 2 * V);   // lora_embedding_A [r, V]
        var b = AdapterFiles.Random(21, C * 2);   // lora_embedding_B [C, r]
        float[] T(float[] x, int rows, int cols) => Enumerable.Range(0, x.Length).Select(k => x[k % rows * cols + k / rows]).ToArray();
        var headA = T(b, C, 2);                   // [2, C]
        var headB = T(a, 2, V);                   // [V, 2]
        const string config = """{"peft_type":"LORA","r":2,"lora_alpha":4,"target_modules":["embed_tokens","lm_head"],"ensure_weight_tying":true}""";
        AdapterFiles.Write(dir["tied"], config,
            [("base_model.model.model.embed_tokens.lora_embedding_A", [2, V], a), ("base_model.model.model.embed_tokens.lora_embedding_B", [C, 2], b),
             ("base_model.model.lm_head.lora_A.weight", [2, C], headA), ("base_model.model.lm_head.lora_B.weight", [V, 2], headB)]);
        using (var weights = CheckpointWeights.Open(baseModel, dir["tied"]))
        {
            var original = AdapterFiles.Stored(baseModel, Embed);
            var embed = new float[V * C];
            for (int v = 0; v < V; v++)
                for (int c = 0; c < C; c++)
                    embed[v * C + c] = (float)(original[v * C + c] + 2.0 * (b[c * 2] * (double)a[v] + b[c * 2 + 1] * (double)a[V + v]));
            AssertLogits(weights, tied: true, n => n == Embed ? embed : AdapterFiles.Stored(baseModel, n));
        }
        headA[0] += 1;
        AdapterFiles.Write(dir["other"], config,
            [("base_model.model.model.embed_tokens.lora_embedding_A", [2, V], a), ("base_model.model.model.embed_tokens.lora_embedding_B", [C, 2], b),
             ("base_model.model.lm_head.lora_A.weight", [2, C], headA), ("base_model.model.lm_head.lora_B.weight", [V, 2], headB)]);
        Assert.Contains("ensure_weight_tying is true", Assert.Throws<IrrException>(() => CheckpointWeights.Open(baseModel, dir["other"]).Dispose()).Message);
    }

    [Theory]
    [InlineData(true)]   // LlamaFactory additional_target: [embed_tokens, lm_head]
    [InlineData(false)]  // lm_head only
    public void ModulesToSaveWithLmHeadOnATiedBaseUnties(bool withEmbed)
    {
        using var dir = new TempDir();
        string baseModel = TiedBase(dir);
        var embed = AdapterFiles.Random(8, V * C);
        var head = AdapterFiles.Random(9, V * C);
        var tensors = new List<(string, long[], float[])>();
        if (withEmbed) tensors.Add(("base_model.model.model.embed_tokens.weight", [V, C], embed));
        tensors.Add(("base_model.model.lm_head.weight", [V, C], head));
        string adapter = AdapterFiles.Write(dir["adapter"], Config(""","modules_to_save":["embed_tokens","lm_head"]"""), tensors);
        CheckpointWeights? weights = null;
        var warnings = AdapterFiles.Warnings(() => weights = CheckpointWeights.Open(baseModel, adapter));
        using (weights)
        {
            Assert.Single(warnings, w => w.Contains("unties them"));
            var original = AdapterFiles.Stored(baseModel, Embed);
            AssertLogits(weights!, tied: false, n => n == Embed ? (withEmbed ? embed : original) : n == Head ? head : AdapterFiles.Stored(baseModel, n));
            ParameterSet.LoadAll(weights!).Save(dir["merged"], TensorDType.F32, baseModel);
        }
        Assert.False((bool)JsonNode.Parse(File.ReadAllText(dir["merged/config.json"]))!["tie_word_embeddings"]!);
        Assert.Equal(head, AdapterFiles.Stored(dir["merged"], Head));
    }

    [Fact]
    public void LoraOnTheHeadOfATiedBaseAddsToTheOriginalEmbedding()
    {
        using var dir = new TempDir();
        string baseModel = TiedBase(dir);
        var a = AdapterFiles.Random(10, 2 * C);
        var b = AdapterFiles.Random(11, V * 2);
        string adapter = AdapterFiles.Write(dir["adapter"], Config().Replace("\"q_proj\"", "\"q_proj\",\"lm_head\""),
            [("base_model.model.lm_head.lora_A.weight", [2, C], a), ("base_model.model.lm_head.lora_B.weight", [V, 2], b)]);
        using var weights = CheckpointWeights.Open(baseModel, adapter);
        var original = AdapterFiles.Stored(baseModel, Embed);
        // W_head = E + (α/r)·B·A, α/r = 2, in double.
        var head = new float[V * C];
        for (int i = 0; i < V; i++)
            for (int j = 0; j < C; j++)
                head[i * C + j] = (float)(original[i * C + j] + 2.0 * (b[i * 2] * (double)a[j] + b[i * 2 + 1] * (double)a[C + j]));
        var loaded = Load(weights, Head);
        for (int i = 0; i < head.Length; i++) Assert.True(Math.Abs(loaded[i] - head[i]) < 1e-6, $"lm_head[{i}]");
        Assert.Equal(original, Load(weights, Embed));
        AssertLogits(weights, tied: false, n => n == Head ? head : AdapterFiles.Stored(baseModel, n));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AResizedVocabularyCarriedByTheAdaptersFullCopiesIsMerged(bool tied)
    {
        // LlamaFactory resize_vocab + additional_target [embed_tokens, lm_head]: both copies have the added tokens' rows.
        using var dir = new TempDir();
        string baseModel = TinyModels.Create(dir["base"], AdapterFiles.TinyConfig(tied), TensorDType.F32);
        var embed = AdapterFiles.Random(12, (V + 2) * C);
        var head = AdapterFiles.Random(13, (V + 2) * C);
        string adapter = AdapterFiles.Write(dir["adapter"], Config(""","modules_to_save":["embed_tokens","lm_head"]"""),
            [("base_model.model.model.embed_tokens.weight", [V + 2, C], embed), ("base_model.model.lm_head.weight", [V + 2, C], head)]);
        using (var weights = CheckpointWeights.Open(baseModel, adapter))
        {
            AssertLogits(weights, tied: false, n => n == Embed ? embed : n == Head ? head : AdapterFiles.Stored(baseModel, n), V + 2, [1, 65, 3, 64]);
            Assert.Equal(TensorDType.F32, weights.StorageType(Embed));
            ParameterSet.LoadAll(weights).Save(dir["merged"], TensorDType.F32, baseModel);
        }
        var config = JsonNode.Parse(File.ReadAllText(dir["merged/config.json"]))!;
        Assert.Equal(V + 2, (int)config["vocab_size"]!);
        Assert.Equal(head, AdapterFiles.Stored(dir["merged"], Head));
    }

    [Theory]
    [InlineData(true)]    // the tied head keeps the base's embedding (PEFT's default): it has no rows for the added tokens
    [InlineData(false)]
    public void AResizedVocabularyWithoutEveryCopyIsRefusedNamingTheTensorAndShapes(bool tied)
    {
        using var dir = new TempDir();
        string baseModel = TinyModels.Create(dir["base"], AdapterFiles.TinyConfig(tied), TensorDType.F32);
        string adapter = AdapterFiles.Write(dir["adapter"], Config(""","modules_to_save":["embed_tokens"]"""),
            [("base_model.model.model.embed_tokens.weight", [V + 2, C], new float[(V + 2) * C])]);
        var e = Assert.Throws<IrrException>(() => CheckpointWeights.Open(baseModel, adapter).Dispose());
        Assert.Contains("'base_model.model.model.embed_tokens.weight' is [66, 16], a vocabulary resized from the base's 64 tokens", e.Message);
        Assert.Contains("no full lm_head.weight of that shape (the base's is [64, 16])", e.Message);
        Assert.DoesNotContain('\n', e.Message);

        // With ensure_weight_tying the head is the resized embedding: merged, tied.
        if (!tied) return;
        AdapterFiles.Write(dir["ensure"], Config(""","modules_to_save":["embed_tokens"],"ensure_weight_tying":true"""),
            [("base_model.model.model.embed_tokens.weight", [V + 2, C], AdapterFiles.Random(14, (V + 2) * C))]);
        using var weights = CheckpointWeights.Open(baseModel, dir["ensure"]);
        Assert.Equal(V + 2, weights.Config.VocabSize);
        Assert.True(weights.Config.TieWordEmbeddings);
    }

    // A checkpoint whose config ties the head but which stores a random lm_head.weight (a copy of the embedding when `same`).
    private static string TiedConfigWithHead(TempDir dir, bool same = false, bool withEmbed = true)
    {
        string path = TinyModels.Create(dir["ckpt"], AdapterFiles.TinyConfig(tied: false), TensorDType.F32, include: (n, _) => withEmbed || n != Embed);
        var tensors = new List<(string, long[], float[])>();
        using (var file = SafetensorsFile.Open(Path.Combine(path, "model.safetensors")))
            foreach (var t in file.Tensors)
                tensors.Add((t.Name, t.Shape.ToArray(), t.Name == Head && same ? file.ReadSingle(Embed) : file.ReadSingle(t.Name)));
        File.Delete(Path.Combine(path, "model.safetensors"));
        // The raw writer writes adapter files; here the same bytes as a model's weights.
        AdapterFiles.Write(dir["raw"], "{}", tensors);
        File.Move(Path.Combine(dir["raw"], LoraAdapter.WeightsFile), Path.Combine(path, "model.safetensors"));
        File.WriteAllText(Path.Combine(path, "config.json"), AdapterFiles.TinyConfig(tied: true));
        return path;
    }

    [Fact]
    public void AStoredHeadThatDiffersFromTheEmbeddingIsNotTiedAsTransformersV5Decides()
    {
        using var dir = new TempDir();
        string path = TiedConfigWithHead(dir);
        ModelDirectory? model = null;
        var warnings = AdapterFiles.Warnings(() => model = ModelDirectory.Open(path));
        using (var weights = new CheckpointWeights(model!))
        {
            Assert.True(model!.UntiedHead);
            Assert.Single(warnings, w => w.Contains("different values") && w.Contains("not tied"));
            AssertLogits(weights, tied: false, n => AdapterFiles.Stored(path, n));
            ParameterSet.LoadAll(weights).Save(dir["written"], TensorDType.F32, path);
        }
        Assert.False((bool)JsonNode.Parse(File.ReadAllText(dir["written/config.json"]))!["tie_word_embeddings"]!);
        Assert.Equal(AdapterFiles.Stored(path, Head), AdapterFiles.Stored(dir["written"], Head));
    }

    [Fact]
    public void AStoredHeadEqualToTheEmbeddingIsTiedWithoutAWord()
    {
        using var dir = new TempDir();
        string path = TiedConfigWithHead(dir, same: true);
        ModelDirectory? model = null;
        var warnings = AdapterFiles.Warnings(() => model = ModelDirectory.Open(path));
        using var weights = new CheckpointWeights(model!);
        Assert.Empty(warnings);
        Assert.False(model!.UntiedHead);
        AssertLogits(weights, tied: true, n => AdapterFiles.Stored(path, n));
    }

    [Fact]
    public void AStoredHeadWithoutAnEmbeddingIsTheEmbedding()
    {
        using var dir = new TempDir();
        string path = TiedConfigWithHead(dir, withEmbed: false);
        using var weights = CheckpointWeights.Open(path);
        var head = AdapterFiles.Stored(path, Head);
        AssertLogits(weights, tied: true, n => n == Embed ? head : AdapterFiles.Stored(path, n));
    }

    [Fact]
    public void ConvertWritesUntiedWhenAPytorchCheckpointsHeadDiffers()
    {
        // llama-legacy (tests/fixtures/torch/make_models.py) has its own random lm_head; its config is made to say tied.
        using var dir = new TempDir();
        string model = dir["model"];
        Directory.CreateDirectory(model);
        File.Copy(Text.Fixtures.Local("torch/models/llama-legacy/pytorch_model.bin"), Path.Combine(model, "pytorch_model.bin"));
        var config = JsonNode.Parse(File.ReadAllText(Text.Fixtures.Local("torch/models/llama-legacy/config.json")))!.AsObject();
        config["tie_word_embeddings"] = true;
        File.WriteAllText(Path.Combine(model, "config.json"), config.ToJsonString());
        var (code, _, err) = Cli.CliRunner.Run("convert", model, "-o", dir["out"]);
        Assert.True(code == 0, err);
        Assert.Contains("different values", err);
        Assert.False((bool)JsonNode.Parse(File.ReadAllText(dir["out/config.json"]))!["tie_word_embeddings"]!);
        Assert.True((bool)JsonNode.Parse(File.ReadAllText(Path.Combine(model, "config.json")))!["tie_word_embeddings"]!); // input untouched
        using var converted = ModelDirectory.Open(dir["out"]);
        Assert.False(converted.UntiedHead);
        Assert.False(converted.Config.TieWordEmbeddings);
    }
}
