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

    // A LoRA adapter of `model` trained on one record (dir/data.jsonl) into dir/adapter, with the model's tokenizer.json beside it.
    private static (int Code, string Out, string Err) TrainAdapterWithTokenizer(TempDir dir, string model)
    {
        File.WriteAllText(dir["data.jsonl"], """{"instruction": "say 0", "output": "the 0"}""" + "\n");
        var r = CliRunner.Run("train", "--model", model, "--data", dir["data.jsonl"], "--lora", "--rank", "2", "--alpha", "4",
            "--targets", "q_proj", "--epochs", "1", "--batch-size", "1", "-o", dir["adapter"]);
        if (r.Code == 0) File.Copy(Path.Combine(model, "tokenizer.json"), dir["adapter/tokenizer.json"]);
        return r;
    }

    [Fact]
    public void ScoreAndChatFormatUseTheAdaptersTemplate()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        var (code, _, error) = TrainAdapterWithTokenizer(dir, model);
        Assert.True(code == 0, error);
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
    public void AWeightEditBaselineOfAnAdapterCarriesTheAdaptersTokenizer()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        var (code, _, error) = TrainAdapterWithTokenizer(dir, model);
        Assert.True(code == 0, error);
        File.WriteAllText(dir["adapter/tokenizer_config.json"], new JsonObject { ["eos_token"] = "<|end|>" }.ToJsonString());
        File.WriteAllText(dir["adapter/chat_template.jinja"], AdapterTemplate);
        (code, _, error) = CliRunner.Run("baseline", "interpolate", "--base", model, "--adapter", dir["adapter"], "--alpha", "0.5", "-o", dir["out"]);
        Assert.True(code == 0, error);
        // The files the fine-tune is served with (vLLM's get_lora_tokenizer), not θ_A's, as irr realign writes them.
        Assert.Equal(AdapterTemplate, File.ReadAllText(dir["out/chat_template.jinja"]));
        Assert.Equal(File.ReadAllText(dir["adapter/tokenizer_config.json"]), File.ReadAllText(dir["out/tokenizer_config.json"]));
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

    [Fact]
    public void RealignWritesTheTokenizerItCalibratedWith()
    {
        using var dir = new TempDir();
        string aligned = ModelCommandTests.ChatModel(dir, "aligned", seed: 1);
        File.WriteAllText(Path.Combine(aligned, "chat_template.jinja"), "base");
        Directory.CreateDirectory(Path.Combine(aligned, "additional_chat_templates"));
        File.WriteAllText(Path.Combine(aligned, "additional_chat_templates", "tool_use.jinja"), "base tool_use");
        string task = IrrCommandTests.Records(dir, "task.jsonl", 4, "compute");
        string[] lora = ["--lora", "--rank", "2", "--targets", "q_proj,v_proj", "--epochs", "1"];
        Ok(CliRunner.Run(["train", "--model", aligned, "--data", task, .. lora, "-o", dir["adapter"]]));
        Ok(CliRunner.Run(["train", "--model", aligned, "--data", task, .. lora, "--seed", "7", "-o", dir["unaligned"]]));
        Ok(CliRunner.Run("safety-vector", "--aligned", aligned, "--unaligned-adapter", dir["unaligned"], "--modules", "q_proj,v_proj", "-o", dir["v.safetensors"]));
        Ok(CliRunner.Run("fisher", "--model", aligned, "--data", task, "--modules", "q_proj,v_proj", "-o", dir["f.safetensors"]));

        // Without a tokenizer in the adapter folder: the base's files, named templates included.
        Ok(CliRunner.Run("realign", "--base", aligned, "--adapter", dir["adapter"], "--safety-vector", dir["v.safetensors"], "--fisher", dir["f.safetensors"],
            "--calibration", task, "-o", dir["plain"]));
        Assert.Equal("base tool_use", File.ReadAllText(dir["plain/additional_chat_templates/tool_use.jinja"]));
        Assert.Equal("base", File.ReadAllText(dir["plain/chat_template.jinja"]));

        // With one: the adapter's tokenizer files, and none of the base's (its chat_template.jinja would win over the adapter's config).
        File.Copy(Path.Combine(aligned, "tokenizer.json"), dir["adapter/tokenizer.json"]);
        File.WriteAllText(dir["adapter/tokenizer_config.json"], new JsonObject { ["eos_token"] = "<|end|>", ["chat_template"] = AdapterTemplate }.ToJsonString());
        var run = CliRunner.Run("realign", "--base", aligned, "--adapter", dir["adapter"], "--safety-vector", dir["v.safetensors"], "--fisher", dir["f.safetensors"],
            "--calibration", task, "-o", dir["repaired"]);
        Ok(run);
        Assert.Contains("using the tokenizer and chat template saved with the adapter", run.Err);
        Assert.Equal(File.ReadAllText(dir["adapter/tokenizer_config.json"]), File.ReadAllText(dir["repaired/tokenizer_config.json"]));
        Assert.False(File.Exists(dir["repaired/chat_template.jinja"]));
        Assert.False(Directory.Exists(dir["repaired/additional_chat_templates"]));
        Assert.False(File.Exists(dir["repaired/adapter_config.json"]));
        Assert.Equal("[hi]", PretrainedTokenizer.Load(dir["repaired"]).ApplyChatTemplate([new ChatMessage("user", "hi")], addGenerationPrompt: false));
    }

    [Fact]
    public void SafeLorasAdapterCarriesTheAdaptersTokenizer()
    {
        using var dir = new TempDir();
        var (aligned, unaligned, _) = ModelCommandTests.ThreeModels(dir);
        string task = IrrCommandTests.Records(dir, "task.jsonl", 4, "compute");
        Ok(CliRunner.Run("train", "--model", aligned, "--data", task, "--lora", "--rank", "2", "--targets", "q_proj,v_proj", "--epochs", "1", "-o", dir["adapter"]));
        Ok(CliRunner.Run("safety-vector", "--aligned", aligned, "--unaligned", unaligned, "-o", dir["v.safetensors"]));
        File.Copy(Path.Combine(aligned, "tokenizer.json"), dir["adapter/tokenizer.json"]);
        File.WriteAllText(dir["adapter/tokenizer_config.json"], new JsonObject { ["eos_token"] = "<|end|>" }.ToJsonString());
        File.WriteAllText(dir["adapter/chat_template.jinja"], AdapterTemplate);
        Ok(CliRunner.Run("baseline", "safelora", "--base", aligned, "--adapter", dir["adapter"], "--safety-vector", dir["v.safetensors"], "--layers", "1", "-o", dir["safe"]));
        foreach (string name in new[] { "tokenizer.json", "tokenizer_config.json", "chat_template.jinja" })
            Assert.Equal(File.ReadAllBytes(dir[$"adapter/{name}"]), File.ReadAllBytes(dir[$"safe/{name}"]));
    }

    private static void Ok((int Code, string Out, string Err) r) => Assert.True(r.Code == 0, r.Err);
}
