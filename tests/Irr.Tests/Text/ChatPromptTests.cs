using System.Text.Json.Nodes;
using Irr;
using Irr.Text;
using Irr.Data;

namespace Irr.Tests.Text;

/// <summary>
/// A model directory made in a temporary folder: the tiny SentencePiece-style vocabulary of
/// <see cref="TinyVocabularies"/> with a small chat template and a tokenizer_config.json.
/// </summary>
internal sealed class TinyModelDir : IDisposable
{
    /// <summary>"&lt;s&gt;", then "c" + system content, then each other message's content; " b" as the generation prompt.</summary>
    public const string Template =
        "{{ bos_token }}{% for m in messages %}{% if m.role == 'system' %}c{{ m.content }}{% else %}{{ m.content }}{% endif %}{% endfor %}" +
        "{% if add_generation_prompt %} b{% endif %}";

    public string Path { get; } = Directory.CreateTempSubdirectory("irr-text-").FullName;

    public TinyModelDir(JsonObject? config = null, bool writeConfig = true)
    {
        File.WriteAllText(System.IO.Path.Combine(Path, "tokenizer.json"), TinyVocabularies.SentencePiece().ToJsonString());
        config ??= new JsonObject
        {
            ["bos_token"] = "<s>",
            ["eos_token"] = new JsonObject { ["__type"] = "AddedToken", ["content"] = "</s>", ["special"] = true },
            ["chat_template"] = Template,
            ["tokenizer_class"] = "LlamaTokenizer",
        };
        if (writeConfig) File.WriteAllText(System.IO.Path.Combine(Path, "tokenizer_config.json"), config.ToJsonString());
    }

    public void Dispose() => Directory.Delete(Path, recursive: true);
}

/// <summary>IRR-SPEC "Formatting", worked out by hand on the tiny vocabulary (ids in TinyVocabularies).</summary>
public class ChatPromptTests : IDisposable
{
    private readonly TinyModelDir dir = new();
    private readonly PretrainedTokenizer tok;

    public ChatPromptTests() => tok = PretrainedTokenizer.Load(dir.Path);

    public void Dispose() => dir.Dispose();

    [Fact]
    public void PromptTokensCarryNoLabelAndTheAnswerEndsWithEos()
    {
        // prompt "<s>a b" → <s> ▁a ▁ b = 1 264 259 261; answer "ab" → "▁ab" = 265; eos </s> = 2.
        var e = ChatPrompt.Encode(tok, new TrainingRecord("a", "ab"), systemPrompt: null, maxLength: 100);
        Assert.Equal([1, 264, 259, 261, 265, 2], e.InputIds);
        Assert.Equal([-100, -100, -100, -100, 265, 2], e.Labels);
    }

    [Fact]
    public void TruncationKeepsTheFirstTokens()
    {
        var e = ChatPrompt.Encode(tok, new TrainingRecord("a", "ab"), null, maxLength: 5);
        Assert.Equal([1, 264, 259, 261, 265], e.InputIds);
        Assert.Equal([-100, -100, -100, -100, 265], e.Labels);
        var p = ChatPrompt.Encode(tok, new TrainingRecord("a", "ab"), null, maxLength: 3);
        Assert.Equal([1, 264, 259], p.InputIds);
        Assert.All(p.Labels, l => Assert.Equal(-100, l));
    }

    [Fact]
    public void InstructionAndInputAreJoinedByANewline()
    {
        var record = TrainingRecord.Parse("""[{"instruction": "a", "input": "b", "output": "c"}]""", "data.json").Single();
        Assert.Equal(new TrainingRecord("a\nb", "c"), record);
        // prompt "<s>a\nb b" → 1, ▁a 264, <0x0A> 13, b 261, ▁ 259, b 261; answer "▁c" → 259 262; eos 2.
        var e = ChatPrompt.Encode(tok, record, null, 100);
        Assert.Equal([1, 264, 13, 261, 259, 261, 259, 262, 2], e.InputIds);
        Assert.Equal([-100, -100, -100, -100, -100, -100, 259, 262, 2], e.Labels);
    }

    [Fact]
    public void ALiteralSystemPromptIsRenderedFirst()
    {
        // "<s>" + "c" + "c" + "a" + " b" → ▁ c c a ▁ b (no merges apply).
        Assert.Equal("<s>cca b", ChatPrompt.Render(tok, "a", "c"));
        var e = ChatPrompt.Encode(tok, new TrainingRecord("a", "ab"), "c", 100);
        Assert.Equal([1, 259, 262, 262, 260, 259, 261, 265, 2], e.InputIds);
    }

    [Fact]
    public void SystemPromptOptions()
    {
        Assert.Null(SystemPrompt.Resolve("none"));
        Assert.Equal("be brief", SystemPrompt.Resolve("be brief"));
        string llama2 = SystemPrompt.Resolve("llama2")!;
        Assert.StartsWith("You are a helpful, respectful and honest assistant. Always answer", llama2);
        Assert.Contains("positive in nature.\n\nIf a question does not make any sense", llama2);
        Assert.EndsWith("please don't share false information.", llama2);
        Assert.Equal(507, llama2.Length); // len() of the IRR-SPEC text in Python
    }

    [Fact]
    public void TheLengthMustBePositive() =>
        Assert.Equal("the maximum length must be positive, not 0",
            Assert.Throws<IrrException>(() => ChatPrompt.Encode(tok, new TrainingRecord("a", "b"), null, 0)).Message);
}

public class TrainingRecordTests
{
    [Theory]
    [InlineData("""{"instruction": "Do", "input": "", "output": "ok"}""", "Do", "ok")]
    [InlineData("""{"instruction": "Do", "input": null, "output": "ok"}""", "Do", "ok")]
    [InlineData("""{"instruction": "Do", "output": "ok"}""", "Do", "ok")]
    [InlineData("""{"instruction": "Do", "input": "this", "output": "ok"}""", "Do\nthis", "ok")]
    [InlineData("""{"prompt": "Hi", "response": "Hello"}""", "Hi", "Hello")]
    [InlineData("""{"prompt": {"instruction": "Do", "input": "this"}, "response": "ok"}""", "Do\nthis\n", "ok")]
    [InlineData("""{"prompt": {"instruction": "Do"}, "response": "ok"}""", "Do\n\n", "ok")]
    public void RecordsFollowTheSpec(string json, string user, string answer) =>
        Assert.Equal(new TrainingRecord(user, answer), TrainingRecord.Parse(json, "data.jsonl").Single());

    [Fact]
    public void JsonlSkipsBlankLines() =>
        Assert.Equal(2, TrainingRecord.Parse("{\"prompt\": \"a\", \"response\": \"b\"}\n\n{\"prompt\": \"c\", \"response\": \"d\"}\n", "d.jsonl").Count);

    [Theory]
    [InlineData("{\"prompt\": \"a\", \"response\": \"b\"}\n{\"prompt\": \"a\"}", "data.jsonl line 2: missing \"output\", \"response\" or \"completion\"")]
    [InlineData("{\"prompt\": \"a\", \"response\": \"b\"}\n{oops", "data.jsonl line 2: not valid JSON")]
    [InlineData("[{\"instruction\": \"a\", \"output\": \"b\"}, {\"instruction\": \"a\"}]", "data.jsonl: [1]: missing \"output\"")]
    [InlineData("[{\"instruction\": 3, \"output\": \"b\"}]", "data.jsonl: [0].instruction: expected a string, found the number 3")]
    [InlineData("[{\"title\": \"a\"}]", "data.jsonl: [0]: missing \"prompt\", \"instruction\", \"question\", \"goal\" or \"behavior\"")]
    public void MalformedRecordsNameTheirPlace(string text, string message) =>
        Assert.StartsWith(message, Assert.Throws<IrrException>(() => TrainingRecord.Parse(text, "data.jsonl")).Message);
}

public class TokenizerConfigTests
{
    [Fact]
    public void TemplatesMayBeAListOfNamedTemplates()
    {
        var c = TokenizerConfig.FromJson("""{"chat_template": [{"name": "default", "template": "D"}, {"name": "tool_use", "template": "T"}]}""");
        Assert.Equal("D", c.ChatTemplate());
        Assert.Equal("T", c.ChatTemplate("tool_use"));
        Assert.Equal("tokenizer_config.json: no chat template named 'x' (there are: default, tool_use)",
            Assert.Throws<IrrException>(() => c.ChatTemplate("x")).Message);
    }

    [Fact]
    public void SpecialTokensMayBeStringsOrAddedTokenObjects()
    {
        var c = TokenizerConfig.FromJson("""{"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>", "pad_token": null, "add_bos_token": false}""");
        Assert.Equal("<s>", c.BosToken);
        Assert.Equal("</s>", c.EosToken);
        Assert.True(c.SpecialTokens.ContainsKey("pad_token"));
        Assert.Null(c.SpecialTokens["pad_token"]);
        Assert.False(c.AddBosToken);
        Assert.Null(c.AddEosToken);
        Assert.Null(c.ChatTemplate());
    }

    [Theory]
    [InlineData("""{"chat_template": 3}""", "tokenizer_config.json: chat_template: expected a string or a list of {name, template}, found the number 3")]
    [InlineData("""{"eos_token": 3}""", "tokenizer_config.json: eos_token: expected a string or an AddedToken object, found the number 3")]
    [InlineData("""{"add_bos_token": "yes"}""", "tokenizer_config.json: add_bos_token: expected true or false, found the string \"yes\"")]
    [InlineData("""{"chat_template": [{"name": "a"}]}""", "tokenizer_config.json: chat_template[0]: missing \"template\"")]
    public void MalformedConfigsNameTheKey(string json, string message) =>
        Assert.Equal(message, Assert.Throws<IrrException>(() => TokenizerConfig.FromJson(json)).Message);

    [Fact]
    public void LlamaTokenizersFollowAddBosAndAddEos()
    {
        using var both = new TinyModelDir(new JsonObject { ["bos_token"] = "<s>", ["eos_token"] = "</s>", ["add_eos_token"] = true, ["tokenizer_class"] = "LlamaTokenizerFast" });
        Assert.Equal([1, 264, 2], PretrainedTokenizer.Load(both.Path).Encode("a", addSpecialTokens: true));
        using var none = new TinyModelDir(new JsonObject { ["bos_token"] = "<s>", ["add_bos_token"] = false, ["tokenizer_class"] = "LlamaTokenizer" });
        Assert.Equal([264], PretrainedTokenizer.Load(none.Path).Encode("a", addSpecialTokens: true));
        // Other classes keep tokenizer.json's post-processor (here "<s> $A").
        using var other = new TinyModelDir(new JsonObject { ["add_bos_token"] = false, ["tokenizer_class"] = "PreTrainedTokenizerFast" });
        Assert.Equal([1, 264], PretrainedTokenizer.Load(other.Path).Encode("a", addSpecialTokens: true));
    }

    [Fact]
    public void TinyLlamaModelDirectory()
    {
        var t = PretrainedTokenizer.Load(Fixtures.TinyLlamaDir);
        Assert.Equal(2, t.EosTokenId);
        Assert.Equal([1, 15043, 3186], t.Encode("Hello world", addSpecialTokens: true));
        Assert.Equal("<|user|>\nHi</s>\n<|assistant|>\n", ChatPrompt.Render(t, "Hi", null));
    }

    [Fact]
    public void MissingFilesAreNamed()
    {
        using var noJson = new TinyModelDir();
        File.Delete(Path.Combine(noJson.Path, "tokenizer.json"));
        Assert.Equal($"{noJson.Path}: no tokenizer.json (irr reads Hugging Face fast tokenizers, and Llama SentencePiece tokenizer.model files)", Assert.Throws<IrrException>(() => PretrainedTokenizer.Load(noJson.Path)).Message);
        using var noTemplate = new TinyModelDir(new JsonObject { ["eos_token"] = "</s>" });
        Assert.StartsWith("tokenizer_config.json: no chat_template",
            Assert.Throws<IrrException>(() => ChatPrompt.Render(PretrainedTokenizer.Load(noTemplate.Path), "a", null)).Message);
    }

    [Fact]
    public void WithoutTokenizerConfigTheClassOfTheModelTypeDecidesAsAutoTokenizerDoes()
    {
        // transformers' AutoTokenizer on a folder without tokenizer_config.json (a converted llama2.c model, say): the class is
        // config.json's tokenizer_class, else the one of its model_type (TOKENIZER_MAPPING_NAMES: llama → LlamaTokenizerFast,
        // qwen2 → Qwen2TokenizerFast), with that class's default special tokens; LlamaTokenizerFast adds BOS (add_bos_token
        // defaults to true) even though tokenizer.json here has no post-processor. Ids: <s> 1, </s> 2, ▁a 264.
        using var dir = new TinyModelDir(writeConfig: false);
        var json = TinyVocabularies.SentencePiece();
        json["post_processor"] = null;
        File.WriteAllText(Path.Combine(dir.Path, "tokenizer.json"), json.ToJsonString());
        void ModelType(string config) => File.WriteAllText(Path.Combine(dir.Path, "config.json"), config);

        // No config.json either: tokenizer.json as it is (PreTrainedTokenizerFast), no eos_token.
        var plain = PretrainedTokenizer.Load(dir.Path);
        Assert.Equal([264], plain.Encode("a", addSpecialTokens: true));
        Assert.Equal("tokenizer_config.json: no eos_token", Assert.Throws<IrrException>(() => plain.EosTokenId).Message);

        ModelType("""{"model_type": "llama"}""");
        var llama = PretrainedTokenizer.Load(dir.Path);
        Assert.Equal([1, 264], llama.Encode("a", addSpecialTokens: true));
        Assert.Equal(2, llama.EosTokenId);

        ModelType("""{"model_type": "llama", "tokenizer_class": "PreTrainedTokenizerFast"}""");
        Assert.Equal([264], PretrainedTokenizer.Load(dir.Path).Encode("a", addSpecialTokens: true));

        ModelType("""{"model_type": "qwen2"}"""); // Qwen2TokenizerFast adds no BOS; its eos <|endoftext|> is not in this vocabulary
        var qwen = PretrainedTokenizer.Load(dir.Path);
        Assert.Equal([264], qwen.Encode("a", addSpecialTokens: true));
        Assert.Throws<IrrException>(() => qwen.EosTokenId);

        // A tokenizer_config.json without tokenizer_class: its keys, and the class of the model type for the rest.
        ModelType("""{"model_type": "llama"}""");
        File.WriteAllText(Path.Combine(dir.Path, "tokenizer_config.json"), """{"add_bos_token": false}""");
        var noBos = PretrainedTokenizer.Load(dir.Path);
        Assert.Equal([264], noBos.Encode("a", addSpecialTokens: true));
        Assert.Equal(2, noBos.EosTokenId);

        // A tokenizer_config.json that names the class but no special tokens: the class's __init__ defaults
        // (LlamaTokenizerFast: bos_token "<s>", eos_token "</s>"), here over a config.json that names no model type.
        ModelType("{}");
        File.WriteAllText(Path.Combine(dir.Path, "tokenizer_config.json"), """{"tokenizer_class": "LlamaTokenizer"}""");
        var named = PretrainedTokenizer.Load(dir.Path);
        Assert.Equal([1, 264], named.Encode("a", addSpecialTokens: true));
        Assert.Equal(2, named.EosTokenId);
        ModelType("""{"model_type": "llama"}""");

        // model_type llama over a vocabulary without "<s>" (a byte-level tokenizer, as Llama-3's, with only an eos set): the
        // class's default BOS is not there, so nothing is added; the model still loads (a model_type says nothing about BOS).
        File.WriteAllText(Path.Combine(dir.Path, "tokenizer.json"), TinyVocabularies.ByteLevel().ToJsonString());
        File.WriteAllText(Path.Combine(dir.Path, "tokenizer_config.json"), """{"eos_token": "<|end|>"}""");
        var byteLevel = PretrainedTokenizer.Load(dir.Path);
        Assert.Equal(byteLevel.Encode("a"), byteLevel.Encode("a", addSpecialTokens: true));
        // add_bos_token set explicitly without a bos_token stays an error naming both keys.
        File.WriteAllText(Path.Combine(dir.Path, "tokenizer_config.json"), """{"eos_token": "<|end|>", "add_bos_token": true}""");
        Assert.Equal("tokenizer_config.json: add_bos_token is true but bos_token is not set", Assert.Throws<IrrException>(() => PretrainedTokenizer.Load(dir.Path)).Message);
    }
}
