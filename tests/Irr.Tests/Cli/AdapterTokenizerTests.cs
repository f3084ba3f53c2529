using System.Text.Json.Nodes;
using Irr.Tests.IO;
using Irr.Tests.Text;
using Irr.Text;

namespace Irr.Tests.Cli;

/// <summary>
/// A tokenizer and chat template saved beside a LoRA adapter (TRL, axolotl, LlamaFactory) are what the commands use,
/// as vLLM's get_lora_tokenizer and AutoTokenizer.from_pretrained(adapter_dir) use them.
/// </summary>
public class AdapterTokenizerTests
{
    private const string AdapterTemplate = "{% for m in messages %}[{{ m.content }}]{% endfor %}";

    [Fact]
    public void ScoreAndChatFormatUseTheAdaptersTemplate()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        File.WriteAllText(dir["data.jsonl"], """{"instruction": "say 0", "output": "the 0"}""" + "\n");
        var (code, _, error) = CliRunner.Run("train", "--model", model, "--data", dir["data.jsonl"], "--lora", "--rank", "2", "--alpha", "4",
            "--targets", "q_proj", "--epochs", "1", "--batch-size", "1", "-o", dir["adapter"]);
        Assert.True(code == 0, error);
        File.Copy(Path.Combine(model, "tokenizer.json"), dir["adapter/tokenizer.json"]);
        File.WriteAllText(dir["adapter/tokenizer_config.json"], new JsonObject { ["eos_token"] = "<|end|>", ["chat_template"] = "config" }.ToJsonString());
        File.WriteAllText(dir["adapter/chat_template.jinja"], AdapterTemplate); // beats the config's key

        (code, string output, error) = CliRunner.Run("chat-format", "--model", model, "--adapter", dir["adapter"], "--user", "hi");
        Assert.True(code == 0, error);
        Assert.Equal("[hi]", output);
        Assert.Contains($"warning: {dir["adapter"]}: using the tokenizer and chat template saved with the adapter", error);

        (code, _, error) = CliRunner.Run("score", "--model", model, "--adapter", dir["adapter"], "--data", dir["data.jsonl"], "-o", dir["s.json"]);
        Assert.True(code == 0, error);
        Assert.Contains("using the tokenizer and chat template saved with the adapter", error);
        // IRR-SPEC formatting with the adapter's template: encode("[say 0]") ++ encode("the 0") ++ [eos].
        var tokenizer = PretrainedTokenizer.Load(model);
        int[] expected = [.. tokenizer.Encode("[say 0]"), .. tokenizer.Encode("the 0"), tokenizer.Tokenizer.TokenToId("<|end|>")!.Value];
        var record = JsonNode.Parse(File.ReadAllText(dir["s.json"]))!["scores"]![0]!;
        Assert.Equal(expected, record["input_ids"]!.AsArray().Select(i => (int)i!));
    }

    [Fact]
    public void AnAdapterTokenizerWithMoreIdsThanTheEmbeddingIsRefused()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        File.WriteAllText(dir["data.jsonl"], """{"instruction": "a", "output": "b"}""" + "\n");
        var (code, _, error) = CliRunner.Run("train", "--model", model, "--data", dir["data.jsonl"], "--lora", "--rank", "2", "--alpha", "4",
            "--targets", "q_proj", "--epochs", "1", "--batch-size", "1", "-o", dir["adapter"]);
        Assert.True(code == 0, error);
        // 270 ids (TinyVocabularies.SentencePiece) against the model's 261 rows.
        File.WriteAllText(dir["adapter/tokenizer.json"], TinyVocabularies.SentencePiece().ToJsonString());
        File.WriteAllText(dir["adapter/tokenizer_config.json"], new JsonObject { ["eos_token"] = "</s>", ["chat_template"] = AdapterTemplate }.ToJsonString());
        (code, _, error) = CliRunner.Run("score", "--model", model, "--adapter", dir["adapter"], "--data", dir["data.jsonl"], "-o", dir["s.json"]);
        Assert.Equal(2, code);
        Assert.Contains($"error: {dir["adapter/tokenizer.json"]}: the adapter's tokenizer has 270 ids (0 to 269), but {model} with the adapter has 261 embedding rows", error);
        Assert.False(File.Exists(dir["s.json"]));
    }
}
