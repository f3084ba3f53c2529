using System.Text.Json.Nodes;
using Irr.Demo;
using Irr.IO;
using Irr.Model;
using Irr.Tests.Cli;
using Irr.Tests.IO;
using Irr.Text;

namespace Irr.Tests.Demo;

/// <summary>One tiny pretraining (a few seconds), shared by the tests of <see cref="PretrainJobTests"/>.</summary>
public sealed class TinyPretrain : IDisposable
{
    public static readonly PretrainOptions Options = new()
    {
        Seed = 3, Documents = 3000, TokenizerDocuments = 500, VocabSize = 300,
        HiddenSize = 32, IntermediateSize = 64, Layers = 1, Heads = 2, BatchSize = 32,
    };

    public TinyPretrain()
    {
        Result = new PretrainJob { Options = Options, OutputPath = Dir["base"] }.Run();
    }

    internal TempDir Dir { get; } = new();

    public string Base => Dir["base"];

    public PretrainResult Result { get; }

    public void Dispose() => Dir.Dispose();
}

/// <summary>
/// <c>irr demo pretrain</c> at a tiny size: the model directory it writes (checked against hand-counted sizes and a
/// recount of the corpus), the loss against a random initialisation's ln(V), byte-identical reruns, and its refusals.
/// </summary>
public class PretrainJobTests(TinyPretrain tiny) : IClassFixture<TinyPretrain>
{
    private static JsonNode Json(string path) => JsonNode.Parse(File.ReadAllText(path))!;

    [Fact]
    public void ItWritesALoadableModelDirectoryWithItsOptionsAndRecord()
    {
        var o = TinyPretrain.Options;
        foreach (string file in DemoBase.Files)
            Assert.True(File.Exists(Path.Combine(tiny.Base, file)), file);

        var tokenizer = PretrainedTokenizer.Load(tiny.Base);
        int vocab = tokenizer.Tokenizer.VocabSize;
        Assert.InRange(vocab, 260, o.VocabSize);
        // The Llama-2 chat template, rendered against the format written out by hand.
        Assert.Equal("<s>[INST] Hi there [/INST]", ChatPrompt.Render(tokenizer, "Hi there", null));
        Assert.Equal("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]", ChatPrompt.Render(tokenizer, "Hi", "Be brief."));
        Assert.Equal(1, tokenizer.Encode("<s>")[0]);
        Assert.Equal(2, tokenizer.EosTokenId);

        var config = Json(Path.Combine(tiny.Base, "config.json"));
        Assert.Equal(o.HiddenSize, (int)config["hidden_size"]!);
        Assert.Equal(o.IntermediateSize, (int)config["intermediate_size"]!);
        Assert.Equal(o.Layers, (int)config["num_hidden_layers"]!);
        Assert.Equal(o.Heads, (int)config["num_attention_heads"]!);
        Assert.Equal(o.Heads, (int)config["num_key_value_heads"]!);
        Assert.Equal(vocab, (int)config["vocab_size"]!);
        Assert.Equal(o.MaxPositions, (int)config["max_position_embeddings"]!);
        Assert.Equal("llama", (string)config["model_type"]!);

        // Parameters by hand: embed and lm_head V·h each; per layer q k v o h·h each, gate up down i·h each, two norms h; final norm h.
        long h = o.HiddenSize, i = o.IntermediateSize;
        long parameters = 2 * vocab * h + o.Layers * (4 * h * h + 3 * h * i + 2 * h) + h;
        using (var model = ModelDirectory.Open(tiny.Base))
        {
            Assert.Equal(parameters, model.Tensors.Sum(t => t.ElementCount));
            Assert.All(model.Tensors, t => Assert.Equal(TensorDType.F32, t.DType));
        }
        Assert.Equal(parameters, tiny.Result.Parameters);

        // pretrain.json: one step per 32 documents (3000 / 32 → 94), and the tokens recounted here: BOS + ids + EOS per document, cut at max positions.
        var record = Json(Path.Combine(tiny.Base, "pretrain.json"));
        Assert.Equal(94, (int)record["steps"]!);
        Assert.Equal(94, tiny.Result.Steps);
        long tokens = BaseCorpus.Documents(o.Seed, o.Documents).Sum(d => (long)Math.Min(tokenizer.Encode(d).Length + 2, o.MaxPositions));
        Assert.Equal(tokens, (long)record["tokens"]!);
        Assert.Equal(tokens, tiny.Result.Tokens);
        Assert.Equal(o.Documents, (int)record["documents"]!);
        Assert.Equal(parameters, (long)record["parameters"]!);
        var options = record["options"]!;
        Assert.Equal(o.Seed, (int)options["Seed"]!);
        Assert.Equal(o.Documents, (int)options["Documents"]!);
        Assert.Equal(o.HiddenSize, (int)options["HiddenSize"]!);
        Assert.Equal(o.VocabSize, (int)options["VocabSize"]!);
        Assert.Equal(o.BatchSize, (int)options["BatchSize"]!);
        Assert.Equal(tiny.Result.FinalLoss, (double)record["final_loss"]!);
        Assert.Equal("irr demo pretrain", (string)record["command"]!);

        var generation = Json(Path.Combine(tiny.Base, "generation_config.json"));
        Assert.Equal(2, (int)generation["eos_token_id"]!);
    }

    // Mean negative log-likelihood per predicted token (ids and EOS after BOS) of documents, by the library's teacher-forced scoring.
    private static double MeanLoss(IWeightSource weights, PretrainedTokenizer tokenizer, IEnumerable<string> documents)
    {
        var sequences = documents.Select(d =>
        {
            int[] seq = [1, .. tokenizer.Encode(d), 2];
            return (seq, seq);
        }).ToList();
        var logProbs = Scoring.TargetLogProbs(new Transformer(weights), sequences, batchSize: 8);
        return -logProbs.SelectMany(l => l).Average(x => (double)x);
    }

    [Fact]
    public void TheLossFellFarBelowTheRandomInitialisationsLnV()
    {
        var tokenizer = PretrainedTokenizer.Load(tiny.Base);
        double lnV = Math.Log(tokenizer.Tokenizer.VocabSize);
        // Documents of another seed (not trained on, of the same kinds).
        var held = BaseCorpus.Documents(1234, 40).ToList();
        using var trained = CheckpointWeights.Open(tiny.Base);
        double before = MeanLoss(ModelInit.Random(trained.Config, TinyPretrain.Options.Seed), tokenizer, held);
        double after = MeanLoss(trained, tokenizer, held);
        // A random initialisation (initializer range 0.02) gives nearly uniform next-token probabilities: a loss of about ln V.
        Assert.InRange(before, lnV - 0.1, lnV + 0.1);
        Assert.True(after < lnV - 1.5, $"held-out loss {after:F3} after pretraining, ln V = {lnV:F3}");
        Assert.True(tiny.Result.FinalLoss < lnV - 1, $"final training loss {tiny.Result.FinalLoss:F3}, ln V = {lnV:F3}");
    }

    [Fact]
    public void ItsModelCardHasNoBaseModelAndSaysItIsAToyWorlds()
    {
        string card = File.ReadAllText(Path.Combine(tiny.Base, "README.md"));
        var meta = Irr.Tests.IO.HubCardRules.Check(card, "pretrain");
        Assert.False(meta.Children.ContainsKey(new YamlDotNet.RepresentationModel.YamlScalarNode("base_model"))); // trained from scratch
        Assert.Contains("toy world", card);
        Assert.Contains($"- vocab-size: `{TinyPretrain.Options.VocabSize}`\n", card);
        Assert.Contains($"- steps: `{tiny.Result.Steps}`\n", card);
    }

    [Fact]
    public void TheSameSeedGivesTheSameBytesAndAnotherSeedOthers()
    {
        using var dir = new TempDir();
        new PretrainJob { Options = TinyPretrain.Options, OutputPath = dir["again"], Card = new() { ModelCard = false } }.Run();
        foreach (string file in new[] { "model.safetensors", "tokenizer.json", "config.json", "tokenizer_config.json" })
            Assert.True(File.ReadAllBytes(Path.Combine(tiny.Base, file)).SequenceEqual(File.ReadAllBytes(Path.Combine(dir["again"], file))), file);
        // The model card is the only file --no-model-card leaves out.
        Assert.Equal(Directory.EnumerateFiles(tiny.Base).Select(Path.GetFileName).Where(f => f != "README.md").Order(StringComparer.Ordinal),
            Directory.EnumerateFiles(dir["again"]).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        new PretrainJob { Options = TinyPretrain.Options with { Seed = 4 }, OutputPath = dir["other"] }.Run();
        Assert.False(File.ReadAllBytes(Path.Combine(tiny.Base, "model.safetensors")).SequenceEqual(File.ReadAllBytes(Path.Combine(dir["other"], "model.safetensors"))));
    }

    [Fact]
    public void AnExistingNonEmptyOutputIsRefusedUntouched()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["out"]);
        File.WriteAllText(dir["out/keep.txt"], "mine");
        var e = Assert.Throws<IrrException>(() => new PretrainJob { Options = TinyPretrain.Options, OutputPath = dir["out"] }.Run());
        Assert.Contains("exists and is not empty", e.Message);

        var (code, _, error) = CliRunner.Run("demo", "pretrain", "-o", dir["out"], "--documents", "100", "--hidden-size", "32", "--intermediate-size", "64",
            "--layers", "1", "--heads", "2", "--vocab-size", "300");
        Assert.Equal(2, code);
        Assert.Single(error.Trim().Split('\n'));
        Assert.StartsWith("error: ", error);
        Assert.Contains("exists and is not empty", error);
        Assert.Equal(["keep.txt"], Directory.EnumerateFileSystemEntries(dir["out"]).Select(Path.GetFileName));
        Assert.Equal("mine", File.ReadAllText(dir["out/keep.txt"]));
    }

    [Theory]
    [InlineData(32, 3, 300, 1, "hidden size must be a multiple of the heads with an even head dimension")]   // 32 / 3
    [InlineData(30, 2, 300, 1, "hidden size must be a multiple of the heads with an even head dimension")]   // head dimension 15 is odd
    [InlineData(32, 2, 259, 1, "the vocabulary must hold the 3 special tokens and the 256 bytes")]
    [InlineData(32, 2, 300, 0, "documents and batch size must be at least 1")]
    public void InvalidOptionsAreRefusedBeforeAnyWork(int hidden, int heads, int vocab, int documents, string message)
    {
        using var dir = new TempDir();
        var job = new PretrainJob
        {
            Options = TinyPretrain.Options with { HiddenSize = hidden, Heads = heads, VocabSize = vocab, Documents = documents },
            OutputPath = dir["out"],
        };
        var e = Assert.Throws<IrrException>(job.Validate);
        Assert.Equal($"demo pretrain: {message}", e.Message);
        Assert.Throws<IrrException>(() => job.Run());
        Assert.False(Directory.Exists(dir["out"]));

        var (code, _, error) = CliRunner.Run("demo", "pretrain", "-o", dir["out"], "--hidden-size", $"{hidden}", "--heads", $"{heads}",
            "--vocab-size", $"{vocab}", "--documents", $"{documents}");
        Assert.Equal(2, code);
        Assert.Equal($"error: demo pretrain: {message}", error.Trim());
        Assert.False(Directory.Exists(dir["out"]));
    }
}
