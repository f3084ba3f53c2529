using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Model;
using Irr.Tests.IO;
using Irr.Tests.Text;
using Irr.Text;
using Irr.Data;

namespace Irr.Tests.Cli;

/// <summary>irr score, generate and train on a tiny chat model built in the test (byte-level vocabulary of 261).</summary>
public class ModelCommandTests
{
    internal const string Config = """
        {"architectures": ["LlamaForCausalLM"], "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 261, "rms_norm_eps": 1e-5,
         "torch_dtype": "bfloat16", "eos_token_id": 260}
        """;

    /// <summary>A model directory with random weights, the tiny byte-level tokenizer and a chat template.</summary>
    internal static string ChatModel(TempDir dir, string name = "model", int seed = 1)
    {
        return AddChatTokenizer(TinyModels.Create(dir[name], Config, seed: seed));
    }

    /// <summary>Adds the tiny byte-level tokenizer (261 tokens) and a chat template to a model directory.</summary>
    internal static string AddChatTokenizer(string path)
    {
        File.WriteAllText(Path.Combine(path, "tokenizer.json"), TinyVocabularies.ByteLevel().ToJsonString());
        File.WriteAllText(Path.Combine(path, "tokenizer_config.json"), new JsonObject
        {
            ["eos_token"] = "<|end|>",
            ["chat_template"] = "{% for m in messages %}<{{ m.role }}>{{ m.content }}<|end|>{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}",
        }.ToJsonString());
        return path;
    }

    /// <summary>θ_A, θ_U and θ_F of the IRR tests: chat models "aligned", "unaligned" and "finetuned" of seeds 1, 2 and 3.</summary>
    internal static (string Aligned, string Unaligned, string Finetuned) ThreeModels(TempDir dir) =>
        (ChatModel(dir, "aligned", seed: 1), ChatModel(dir, "unaligned", seed: 2), ChatModel(dir, "finetuned", seed: 3));

    private static string Data(TempDir dir, int count = 6)
    {
        var lines = Enumerable.Range(0, count).Select(i => new JsonObject { ["instruction"] = $"say {i}", ["output"] = $"the {i}" }.ToJsonString());
        string path = dir["data.jsonl"];
        File.WriteAllLines(path, lines);
        return path;
    }

    [Fact]
    public void ScoreWritesTokensLabelsAndLogProbs()
    {
        using var dir = new TempDir();
        string model = ChatModel(dir), data = Data(dir);
        var (code, _, error) = CliRunner.Run("score", "--model", model, "--data", data, "--batch-size", "4", "-o", dir["scores.json"]);
        Assert.True(code == 0, error);
        var d = JsonNode.Parse(File.ReadAllText(dir["scores.json"]))!;
        Assert.Equal(6, (int)d["records"]!);

        var tokenizer = PretrainedTokenizer.Load(model);
        using var weights = CheckpointWeights.Open(model);
        var transformer = new Transformer(weights);
        var records = TrainingRecord.Load(data);
        double sum = 0;
        int count = 0;
        foreach (var (record, i) in records.Select((r, i) => (r, i)))
        {
            var s = d["scores"]![i]!;
            var expected = ChatPrompt.Encode(tokenizer, record, null, 1024);
            Assert.Equal(expected.InputIds, s["input_ids"]!.AsArray().Select(x => (int)x!));
            Assert.Equal(expected.Labels, s["labels"]!.AsArray().Select(x => (int)x!));
            var lp = s["token_logprobs"]!.AsArray().Select(x => (double)x!).ToArray();
            Assert.Equal(expected.Labels.Skip(1).Count(l => l != -100), lp.Length);
            Assert.All(lp, x => Assert.True(x <= 0));
            // The same record scored alone gives the same loss (batching changes nothing).
            var alone = transformer.Loss(Batch.Create([expected.InputIds], [expected.Labels]));
            Assert.Equal(alone.Loss, (double)s["loss"]!, 1e-4);
            sum += lp.Sum();
            count += lp.Length;
        }
        Assert.Equal(count, (int)d["labelled_tokens"]!);
        Assert.Equal(-sum / count, (double)d["mean_loss"]!, 1e-5);
    }

    [Fact]
    public void GenerateWritesOneResponsePerPrompt()
    {
        using var dir = new TempDir();
        string model = ChatModel(dir);
        File.WriteAllText(dir["prompts.json"], """["hi", {"prompt": "the the"}, {"instruction": "say", "input": "x"}]""");
        var (code, _, error) = CliRunner.Run("generate", "--model", model, "--prompts", dir["prompts.json"], "--max-new-tokens", "5", "-o", dir["out.jsonl"]);
        Assert.True(code == 0, error);
        var lines = File.ReadAllLines(dir["out.jsonl"]).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(3, lines.Count);
        Assert.Equal("say\nx", (string)lines[2]["prompt"]!);

        // Greedy: the same tokens as the library's generation on the chat-formatted prompt.
        var tokenizer = PretrainedTokenizer.Load(model);
        using var weights = CheckpointWeights.Open(model);
        var ids = tokenizer.Encode(ChatPrompt.Render(tokenizer, "hi", null));
        var expected = Generation.Generate(new Transformer(weights), [ids], new GenerationOptions { MaxNewTokens = 5, EosTokenIds = [260] })[0];
        Assert.Equal(expected.Length, (int)lines[0]["new_tokens"]!);
        bool eos = expected[^1] == 260;
        Assert.Equal(eos ? "eos" : "length", (string)lines[0]["finish_reason"]!);
        Assert.Equal(tokenizer.Decode(eos ? expected[..^1] : expected, skipSpecialTokens: true), (string)lines[0]["response"]!);
    }

    [Fact]
    public void GenerateRefusesAnExistingOutputUnlessOverwriteIsGiven()
    {
        using var dir = new TempDir();
        string model = ChatModel(dir);
        File.WriteAllText(dir["prompts.json"], """["hi"]""");
        File.WriteAllText(dir["out.jsonl"], "earlier\n");
        string[] args = ["generate", "--model", model, "--prompts", dir["prompts.json"], "--max-new-tokens", "2", "-o", dir["out.jsonl"]];

        var (code, _, error) = CliRunner.Run(args);
        Assert.Equal(2, code);
        Assert.Equal($"error: {dir["out.jsonl"]}: exists (choose another output, or give --overwrite to replace it)", error.Trim());
        Assert.Equal("earlier\n", File.ReadAllText(dir["out.jsonl"]));

        (code, _, error) = CliRunner.Run([.. args, "--overwrite"]);
        Assert.True(code == 0, error);
        Assert.Equal("hi", (string)JsonNode.Parse(File.ReadAllLines(dir["out.jsonl"]).Single())!["prompt"]!);
    }

    [Fact]
    public void TrainLoraWritesAnAdapterThatLowersTheLoss()
    {
        using var dir = new TempDir();
        string model = ChatModel(dir), data = Data(dir, 8);
        var (code, _, error) = CliRunner.Run("train", "--model", model, "--data", data, "--lora", "--rank", "4", "--alpha", "8", "--targets", "q_proj,v_proj,down_proj",
            "--epochs", "20", "--lr", "1e-2", "--batch-size", "4", "-o", dir["adapter"]);
        Assert.True(code == 0, error);
        using var adapter = LoraAdapter.Open(dir["adapter"]);
        Assert.Equal(4, adapter.Config.R);
        Assert.Equal(["q_proj", "v_proj", "down_proj"], adapter.Config.TargetModules);
        Assert.Equal(2 * 3, adapter.Pairs.Count);

        double Loss(string? adapterPath)
        {
            var (c, _, e) = CliRunner.Run(["score", "--model", model, "--data", data, "-o", dir["s.json"], "--overwrite", .. adapterPath is null ? Array.Empty<string>() : ["--adapter", adapterPath]]);
            Assert.True(c == 0, e);
            return (double)JsonNode.Parse(File.ReadAllText(dir["s.json"]))!["mean_loss"]!;
        }
        double before = Loss(null), after = Loss(dir["adapter"]);
        // The tiny model's logit scale is small (weights of ±0.1), so 40 LoRA steps lower the loss by ~0.5 nats, not to 0.
        Assert.True(after < before - 0.3, $"loss {before:F3} → {after:F3}; {error}");
    }

    [Fact]
    public void TrainFullWritesAModelWithItsTokenizer()
    {
        using var dir = new TempDir();
        string model = ChatModel(dir), data = Data(dir, 4);
        var (code, _, error) = CliRunner.Run("train", "--model", model, "--data", data, "--full", "--epochs", "2", "--lr", "1e-3", "--batch-size", "2", "-o", dir["tuned"]);
        Assert.True(code == 0, error);
        using var tuned = ModelDirectory.Open(dir["tuned"]);
        Assert.Equal(TensorDType.BF16, tuned.Config.TorchDType);
        Assert.Equal(TensorDType.BF16, tuned.Tensors.First().DType);
        Assert.True(File.Exists(Path.Combine(dir["tuned"], "tokenizer.json")));
        using var original = ModelDirectory.Open(model);
        Assert.NotEqual(original.ReadSingle("model.layers.0.mlp.up_proj.weight"), tuned.ReadSingle("model.layers.0.mlp.up_proj.weight"));
    }

    [Fact]
    public void BadModelCommandLines()
    {
        using var dir = new TempDir();
        string model = ChatModel(dir), data = Data(dir, 2);
        var neither = CliRunner.Run("train", "--model", model, "--data", data, "-o", dir["x"]);                      // neither --full nor --lora
        Assert.Equal(2, neither.Code); // a value error that Validate finds (issue 25; System.CommandLine's validator exited 1)
        Assert.Equal("error: train: give exactly one of full and lora", neither.Err.TrimEnd('\n'));
        var (code, _, error) = CliRunner.Run("train", "--model", model, "--data", data, "--lora", "-o", Path.Combine(model, "inside"));
        Assert.Equal(2, code);
        Assert.Contains("refusing to write into the input model directory", error);
        (code, _, error) = CliRunner.Run("score", "--model", model, "--data", dir["missing.jsonl"]);
        Assert.Equal(2, code);
        Assert.Contains("missing.jsonl", error);
        File.WriteAllText(dir["bad.jsonl"], "{\"instruction\": \"x\"}\n");
        (code, _, error) = CliRunner.Run("score", "--model", model, "--data", dir["bad.jsonl"]);
        Assert.Equal(2, code);
        Assert.Contains("line 1", error);
        Assert.False(File.Exists(dir["out.jsonl"]));
    }
}
