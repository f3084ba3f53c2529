using System.IO.Compression;
using System.Text.Json;
using Irr.Model;
using Irr.Tests.IO;
using Irr.Text;
using Oracle = Tokenizers.DotNet.Tokenizer;

namespace Irr.Tests.Text;

/// <summary>
/// Tokens end to end for the real Gemma-3, Qwen3 and Phi-3 tokenizer folders of ../shared/fixtures/tokenizers/: the ids
/// of a rendered conversation equal Hugging Face tokenizers' (Tokenizers.DotNet) encoding of real jinja2's rendering
/// (jinja/family_renderings.json), as transformers' <c>apply_chat_template(tokenize=True)</c> encodes it
/// (<c>add_special_tokens=False</c>: the template writes BOS); BOS as transformers adds it to raw text; the stop ids of
/// config.json, generation_config.json and the tokenizer's eos_token; and <c>irr generate --template-arg</c> on a tiny
/// random Qwen3 with the real tokenizer.
/// </summary>
public class FamilyTokensTests
{
    internal const string Gemma3 = "tokenizers/gemma-3-1b-it/tokenizer.json.gz";
    internal const string Qwen3 = "tokenizers/qwen3-0.6b/tokenizer.json.gz";
    internal const string Phi3 = "tokenizers/phi-3-mini-4k-instruct/tokenizer.json";

    /// <summary>
    /// A model directory without weights made of a shared tokenizer folder (tokenizer.json decompressed, the configs as
    /// they are); Phi-3's folder has no generation_config.json, so microsoft/Phi-3-mini-4k-instruct's is written
    /// (<c>"eos_token_id": [32000, 32001, 32007]</c>: &lt;|endoftext|&gt;, &lt;|assistant|&gt;, &lt;|end|&gt;).
    /// </summary>
    internal static string ModelDir(TempDir dir, string tokenizerJson)
    {
        string source = Path.GetDirectoryName(Fixtures.Shared(tokenizerJson))!, target = dir[Path.GetFileName(source)];
        Directory.CreateDirectory(target);
        foreach (string file in Directory.GetFiles(source, "*.json")) File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
        if (tokenizerJson.EndsWith(".gz", StringComparison.Ordinal))
        {
            using var gz = new GZipStream(File.OpenRead(Fixtures.Shared(tokenizerJson)), CompressionMode.Decompress);
            using var file = File.Create(Path.Combine(target, "tokenizer.json"));
            gz.CopyTo(file);
        }
        if (!File.Exists(Path.Combine(target, "generation_config.json")))
            File.WriteAllText(Path.Combine(target, "generation_config.json"), """{"bos_token_id": 1, "eos_token_id": [32000, 32001, 32007], "pad_token_id": 32000}""");
        return target;
    }

    // Tokenizers.DotNet encodes with add_special_tokens=True; a copy without the post-processor is add_special_tokens=False (HfTokenizersOracleTests).
    private static (Oracle WithSpecials, Oracle Plain) Oracles(string modelDir)
    {
        string json = File.ReadAllText(Path.Combine(modelDir, "tokenizer.json"));
        var root = System.Text.Json.Nodes.JsonNode.Parse(json)!.AsObject();
        root["post_processor"] = null;
        string plain = Path.Combine(modelDir, "..", "no-post-processor.json");
        File.WriteAllText(plain, root.ToJsonString());
        return (new Oracle(Path.Combine(modelDir, "tokenizer.json")), new Oracle(plain));
    }

    private static int[] Ints(uint[] ids) => Array.ConvertAll(ids, i => checked((int)i));

    private static void ChatIdsEqualJinja2AndHfTokenizers(string tokenizerJson, string templateFile, int? bos)
    {
        using var dir = new TempDir();
        string model = ModelDir(dir, tokenizerJson);
        var (withSpecials, plain) = Oracles(model);
        using (withSpecials)
        using (plain)
        {
            var loaded = PretrainedTokenizer.Load(model);
            var entries = FamilyTemplateTests.Entries.Where(e => e.GetProperty("template_file").GetString() == "templates/" + templateFile
                && e.GetProperty("expected").ValueKind == JsonValueKind.String && e.GetProperty("add_generation_prompt").GetBoolean()).ToList();
            Assert.NotEmpty(entries);
            foreach (var entry in entries.Where(e => e.GetProperty("messages").EnumerateArray().All(m => m.EnumerateObject().Count() == 2)))
            {
                var tokenizer = loaded.WithTemplateArgs(FamilyTemplateTests.ArgsOf(entry));
                var messages = entry.GetProperty("messages").EnumerateArray().Select(m => new ChatMessage(m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!));
                int[] ids = ChatPrompt.EncodePrompt(tokenizer, messages);
                Assert.Equal(Ints(plain.Encode(entry.GetProperty("expected").GetString()!)), ids);
                // One BOS where the family has one, from the template's text, none added on top; none where it has none.
                if (bos is { } b) Assert.Equal([b], ids.TakeWhile(id => id == b));
                else Assert.DoesNotContain(ids[0], new[] { 1, 2, 151643 });
            }
            // Raw text (--no-chat-template) gets BOS as transformers' tokenizer(text) adds it.
            int[] raw = ChatPrompt.EncodePrompt(loaded.AsRawText(), ChatPrompt.Messages("Hello world", null));
            Assert.Equal(Ints(withSpecials.Encode("Hello world")), raw);
            Assert.Equal(bos is not null, raw[0] == bos);
        }
    }

    [SharedFixtureFact(Gemma3)]
    public void Gemma3ChatIdsEqualJinja2AndHfTokenizers() => ChatIdsEqualJinja2AndHfTokenizers(Gemma3, "google-gemma-3-1b-it.jinja", bos: 2);

    [SharedFixtureFact(Qwen3)]
    public void Qwen3ChatIdsEqualJinja2AndHfTokenizers() => ChatIdsEqualJinja2AndHfTokenizers(Qwen3, "Qwen-Qwen3-0.6B.jinja", bos: null);

    [SharedFixtureFact(Phi3)]
    public void Phi3ChatIdsEqualJinja2AndHfTokenizers() => ChatIdsEqualJinja2AndHfTokenizers(Phi3, "microsoft-Phi-3-mini-4k-instruct.jinja", bos: null);

    [SharedFixtureFact(Qwen3)]
    public void GenerateRendersWithTheTemplateArgsEndToEnd()
    {
        // A tiny random Qwen3 with the real Qwen3 tokenizer folder: irr generate's prompt ids are HF tokenizers' ids of
        // jinja2's rendering with enable_thinking=false (the empty think block ends the prompt).
        using var dir = new TempDir();
        string model = dir["qwen3-tiny"];
        var config = System.Text.Json.Nodes.JsonNode.Parse(TinyModels.LlamaConfig)!.AsObject();
        config["architectures"] = new System.Text.Json.Nodes.JsonArray("Qwen3ForCausalLM");
        config["model_type"] = "qwen3";
        config["head_dim"] = 4;
        config["vocab_size"] = 151936;
        config["tie_word_embeddings"] = true;
        config["bos_token_id"] = 151643;
        config["eos_token_id"] = 151645;
        TinyModels.Create(model, config.ToJsonString());
        string tokenizerDir = ModelDir(dir, Qwen3);
        foreach (string file in new[] { "tokenizer.json", "tokenizer_config.json", "generation_config.json" })
            File.Copy(Path.Combine(tokenizerDir, file), Path.Combine(model, file), overwrite: true);
        var entry = FamilyTemplateTests.Entries.Single(e => e.GetProperty("template_file").GetString() == "templates/Qwen-Qwen3-0.6B.jinja"
            && e.GetProperty("case").GetString() == "user" && e.GetProperty("add_generation_prompt").GetBoolean()
            && e.GetProperty("kwargs").EnumerateObject().Any(p => p.Name == "enable_thinking" && p.Value.ValueKind == JsonValueKind.False));
        File.WriteAllText(dir["prompts.jsonl"], new System.Text.Json.Nodes.JsonObject { ["prompt"] = entry.GetProperty("messages")[0].GetProperty("content").GetString() }.ToJsonString());

        var run = Irr.Tests.Cli.CliRunner.Run("generate", "--model", model, "--prompts", dir["prompts.jsonl"], "--max-new-tokens", "3", "--output-ids",
            "--template-arg", "enable_thinking=false", "-o", dir["out.jsonl"]);
        Assert.True(run.Code == 0, run.Err);
        var line = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllLines(dir["out.jsonl"]).Single())!;
        var (withSpecials, plain) = Oracles(tokenizerDir);
        using (withSpecials)
        using (plain)
            Assert.Equal(Ints(plain.Encode(entry.GetProperty("expected").GetString()!)), line["prompt_token_ids"]!.AsArray().Select(n => (int)n!));
        Assert.EndsWith("<think>\n\n</think>\n\n", entry.GetProperty("expected").GetString());
    }

    [SharedFixtureTheory(Gemma3)]
    [InlineData(Gemma3, new[] { "<eos>", "<end_of_turn>" }, new[] { 1, 106 })]
    [InlineData(Qwen3, new[] { "<|im_end|>", "<|endoftext|>" }, new[] { 151645, 151643 })]
    [InlineData(Phi3, new[] { "<|endoftext|>", "<|assistant|>", "<|end|>" }, new[] { 32000, 32001, 32007 })]
    public void GenerationStopsAtTheFamilysEndOfTurn(string tokenizerJson, string[] tokens, int[] ids)
    {
        using var dir = new TempDir();
        string model = ModelDir(dir, tokenizerJson);
        var tokenizer = PretrainedTokenizer.Load(model);
        Assert.Equal(ids, tokens.Select(t => tokenizer.Tokenizer.TokenToId(t) ?? -1));
        Assert.Equal(ids.Order(), ChatModel.EosIds(model, tokenizer).Order());
    }
}
