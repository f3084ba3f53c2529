using System.Text.Json.Nodes;
using Irr.Eval;
using Irr.Model;
using Irr.Tests.IO;
using Irr.Tests.Text;
using Irr.Text;

namespace Irr.Tests.Eval;

/// <summary>
/// --no-chat-template through a serving engine: a raw prompt goes to the completions API as the token ids local
/// generation uses (BOS per add_bos_token), and the chat API, which applies the server's chat template, is refused.
/// </summary>
public class RawEngineTests
{
    // The Llama-2 tokenizer (TinyLlama's copy) without a chat template.
    private static PretrainedTokenizer Llama2Raw(TempDir dir)
    {
        Directory.CreateDirectory(dir["base"]);
        File.Copy(Path.Combine(Fixtures.TinyLlamaDir, "tokenizer.json"), dir["base/tokenizer.json"]);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures.TinyLlamaDir, "tokenizer_config.json")))!.AsObject();
        config.Remove("chat_template");
        File.WriteAllText(dir["base/tokenizer_config.json"], config.ToJsonString());
        return PretrainedTokenizer.Load(dir["base"]).AsRawText();
    }

    private static RunningEngine Options(string api) => new() { Url = "http://127.0.0.1:9/v1", Model = "served", Api = api };

    [Fact]
    public void ARawPromptIsSentAsItsTokenIdsWithBos()
    {
        using var dir = new TempDir();
        using var engine = new ServingEngine(Options(EngineOptions.Completions), Llama2Raw(dir), [2]);
        var body = JsonNode.Parse(engine.RequestBody(new ChatRequest([new ChatMessage("user", "Hello world")]), 16))!;
        // Llama-2's ids for "Hello world" with add_special_tokens=True (HF): <s> ▁Hello ▁world.
        Assert.Equal([1, 15043, 3186], body["prompt"]!.AsArray().Select(n => (int)n!));
        Assert.False((bool)body["add_special_tokens"]!);
    }

    [Fact]
    public void TheChatApiIsRefused()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<IrrException>(() => new ServingEngine(Options(EngineOptions.Chat), Llama2Raw(dir), [2]));
        Assert.Contains("--no-chat-template needs the completions API", e.Message);
    }

    [Fact]
    public void OutputIdsNeedLocalGeneration()
    {
        using var dir = new TempDir();
        Llama2Raw(dir);
        File.WriteAllText(dir["prompts.json"], """["Hello"]""");
        var (code, _, err) = Irr.Tests.Cli.CliRunner.Run("generate", "--model", dir["base"], "--prompts", dir["prompts.json"], "--no-chat-template", "--output-ids",
            "--engine-url", "http://127.0.0.1:9/v1", "--engine-model", "served", "-o", dir["out.jsonl"]);
        Assert.Equal(2, code);
        Assert.Equal("error: generate: output-ids needs local generation (a serving engine's answers come as text)", err.Trim());
        Assert.False(File.Exists(dir["out.jsonl"]));
    }
}
