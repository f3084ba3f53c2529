using System.Text.Json.Nodes;
using Irr.Data;
using Irr.Tests.IO;
using Irr.Tests.Text;
using Irr.Text;

namespace Irr.Tests.Data;

/// <summary>
/// The formats fine-tuning data comes in (issue 23, item 11): TRL's conversational <c>{"messages"}</c> (also axolotl's,
/// LlamaFactory's and OpenAI's), ShareGPT's <c>{"conversations": [{from, value}]}</c>, and TRL's prompt-completion, standard
/// and conversational. The prompts are the real templates' renderings, worked out by hand from the template text (jinja2
/// semantics); the label masks by hand on the tiny vocabulary.
/// </summary>
public class ConversationalDataTests
{
    private static string Error(Func<object> read) => Assert.Throws<IrrException>(read).Message;

    private const string MultiTurn = """
        {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U1"}, {"role": "assistant", "content": "A1"}, {"role": "user", "content": "U2"}, {"role": "assistant", "content": "A2"}]}
        {"conversations": [{"from": "system", "value": "S"}, {"from": "human", "value": "U1"}, {"from": "gpt", "value": "A1"}, {"from": "human", "value": "U2"}, {"from": "gpt", "value": "A2"}]}
        {"prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "U1"}, {"role": "assistant", "content": "A1"}, {"role": "user", "content": "U2"}], "completion": [{"role": "assistant", "content": "A2"}]}
        {"messages": [{"role": "system", "content": [{"type": "text", "text": "S"}]}, {"role": "user", "content": "U1"}, {"role": "assistant", "content": "A1"}, {"role": "user", "content": [{"type": "text", "text": "U2"}]}, {"role": "assistant", "content": "A2"}]}
        """;

    [Fact]
    public void TextPartsAreJoinedWithANewlineAsVllmsChatApiJoinsThem()
    {
        // vLLM (entrypoints/chat_utils.py, _parse_chat_message_content_parts): text_prompt = "\n".join(texts) for a text-only
        // template, so [{"text": "Hi"}, {"text": "there"}] reaches the template as "Hi\nthere", not "Hithere".
        var records = TrainingRecord.Parse("""
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}]}, {"role": "assistant", "content": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]}]}
            """, "chat.jsonl");
        Assert.Equal("Hi\nthere", records[0].User);
        Assert.Equal("A\nB", records[0].Answer);
    }

    /// <summary>A model directory with the TinyLlama tokenizer and the given real chat template.</summary>
    private static PretrainedTokenizer WithTemplate(TempDir dir, string template)
    {
        string path = dir[Path.GetFileNameWithoutExtension(template)];
        Directory.CreateDirectory(path);
        File.Copy(Path.Combine(Fixtures.TinyLlamaDir, "tokenizer.json"), Path.Combine(path, "tokenizer.json"));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures.TinyLlamaDir, "tokenizer_config.json")))!.AsObject();
        config["chat_template"] = File.ReadAllText(Fixtures.Local($"templates/{template}"));
        File.WriteAllText(Path.Combine(path, "tokenizer_config.json"), config.ToJsonString());
        return PretrainedTokenizer.Load(path);
    }

    [Theory]
    // Qwen2.5-Instruct: the system message first, each turn "<|im_start|>ROLE\nCONTENT<|im_end|>\n", then the generation prompt.
    [InlineData("Qwen-Qwen2.5-7B-Instruct.jinja",
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\n")]
    // Llama-2-chat: the system folded into the first user turn; an assistant turn is " " + content + " " + eos_token.
    [InlineData("meta-llama-Llama-2-7b-chat-hf.jinja", "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A1 </s><s>[INST] U2 [/INST]")]
    public void EveryConversationalFormatIsTheHistoryThroughTheTemplateAndTheLastAssistantTurnAsTheAnswer(string template, string expectedPrompt)
    {
        using var dir = new TempDir();
        var tokenizer = WithTemplate(dir, template);
        var records = TrainingRecord.Parse(MultiTurn, "chat.jsonl");
        Assert.Equal(4, records.Count);
        foreach (var record in records)
        {
            Assert.Equal("A2", record.Answer);
            Assert.Equal("U2", record.User);
            // The record's own system message is the system turn; a --system-prompt does not replace it.
            Assert.Equal(expectedPrompt, ChatPrompt.Render(tokenizer, record.Messages(null)));
            Assert.Equal(expectedPrompt, ChatPrompt.Render(tokenizer, record.Messages("another system prompt")));
            // Tokens: the prompt's, the answer's, eos; labels only on the answer and eos (IRR-SPEC "Formatting").
            var encoded = ChatPrompt.Encode(tokenizer, record, null, 1000);
            int[] prompt = tokenizer.Encode(expectedPrompt), answer = tokenizer.Encode("A2");
            Assert.Equal([.. prompt, .. answer, tokenizer.EosTokenId], encoded.InputIds);
            Assert.Equal([.. Enumerable.Repeat(-100, prompt.Length), .. answer, tokenizer.EosTokenId], encoded.Labels);
        }
    }

    [Fact]
    public void ASystemPromptOptionGoesBeforeARecordWithoutOne()
    {
        using var dir = new TempDir();
        var tokenizer = WithTemplate(dir, "Qwen-Qwen2.5-7B-Instruct.jinja");
        var record = TrainingRecord.Parse("""{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}""" + "\n", "d.jsonl").Single();
        Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", ChatPrompt.Render(tokenizer, record.Messages("Be brief.")));
        // Without either, Qwen2.5's template writes its default system message.
        Assert.Equal("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
            ChatPrompt.Render(tokenizer, record.Messages(null)));
        // A one-turn conversation is the same example as {prompt, response}, and TRL's standard prompt-completion too.
        var plain = TrainingRecord.Parse("""
            {"prompt": "Hi", "response": "Hello"}
            {"prompt": "Hi", "completion": "Hello"}
            """, "p.jsonl");
        foreach (var p in plain)
        {
            Assert.Equal(ChatPrompt.Encode(tokenizer, record, "S", 100).InputIds, ChatPrompt.Encode(tokenizer, p, "S", 100).InputIds);
            Assert.Equal(ChatPrompt.Encode(tokenizer, record, "S", 100).Labels, ChatPrompt.Encode(tokenizer, p, "S", 100).Labels);
        }
    }

    [Fact]
    public void OnlyTheLastAssistantTurnCarriesLabelsWorkedOutByHand()
    {
        // The tiny template writes bos, "c" + a system message, every other message's content, and " b" as the generation
        // prompt. [system "b", user "a", assistant "bc", user "c"] → "<s>" "cb" "a" "bc" "c" " b" = "<s>cbabcc b":
        // <s> = 1, then "▁cbabcc▁b" → ▁ c b a b c c ▁ b → (merge "a b") ▁ c b ab c c ▁ b → (merge "ab c") ▁ c b abc c ▁ b
        // = 259 262 261 267 262 259 261. The answer "ab" alone is "▁ab" = 265; eos </s> = 2.
        using var model = new TinyModelDir();
        var tokenizer = PretrainedTokenizer.Load(model.Path);
        var record = TrainingRecord.Parse("""{"messages": [{"role": "system", "content": "b"}, {"role": "user", "content": "a"}, {"role": "assistant", "content": "bc"}, {"role": "user", "content": "c"}, {"role": "assistant", "content": "ab"}]}""" + "\n", "d.jsonl").Single();
        var e = ChatPrompt.Encode(tokenizer, record, systemPrompt: null, maxLength: 100);
        Assert.Equal([1, 259, 262, 261, 267, 262, 259, 261, 265, 2], e.InputIds);
        Assert.Equal([-100, -100, -100, -100, -100, -100, -100, -100, 265, 2], e.Labels);
    }

    [Fact]
    public void DataFilesOfConversationsAreReadByEveryCommandsReader()
    {
        using var dir = new TempDir();
        string path = dir["train.json"];
        // One JSON object holding "messages" is one record, not a CatQA tree.
        File.WriteAllText(path, """{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}""");
        var one = TrainingRecord.Load(path).Single();
        Assert.Equal(("Hi", "Hello"), (one.User, one.Answer));
        // A prompt set of one-turn conversations (no answer) gives the user messages.
        var prompts = PromptSet.Parse("""
            {"messages": [{"role": "user", "content": "How do I pick a lock?"}]}
            {"conversations": [{"from": "human", "value": "Write malware"}, {"from": "gpt", "value": "No."}]}
            """, "prompts.jsonl");
        Assert.Equal(["How do I pick a lock?", "Write malware"], prompts.Select(p => p.Prompt));
    }

    [Fact]
    public void EveryCommandThatReadsTrainingDataTakesConversations()
    {
        // The test models' template: "<ROLE>CONTENT<|end|>" per message, "<assistant>" as the generation prompt; eos <|end|>.
        using var dir = new TempDir();
        string model = Irr.Tests.Cli.ModelCommandTests.ChatModel(dir);
        string data = dir["chat.jsonl"];
        File.WriteAllText(data, """
            {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U1"}, {"role": "assistant", "content": "A1"}, {"role": "user", "content": "U2"}, {"role": "assistant", "content": "A2"}]}
            {"prompt": [{"role": "user", "content": "hi"}], "completion": [{"role": "assistant", "content": "yo"}]}
            """);
        var (code, _, error) = Irr.Tests.Cli.CliRunner.Run("score", "--model", model, "--data", data, "-o", dir["scores.json"]);
        Assert.True(code == 0, error);
        var tokenizer = PretrainedTokenizer.Load(model);
        var first = JsonNode.Parse(File.ReadAllText(dir["scores.json"]))!["scores"]![0]!;
        int[] prompt = tokenizer.Encode("<system>S<|end|><user>U1<|end|><assistant>A1<|end|><user>U2<|end|><assistant>"), answer = tokenizer.Encode("A2");
        Assert.Equal([.. prompt, .. answer, tokenizer.EosTokenId], first["input_ids"]!.AsArray().Select(x => (int)x!));
        Assert.Equal([.. Enumerable.Repeat(-100, prompt.Length), .. answer, tokenizer.EosTokenId], first["labels"]!.AsArray().Select(x => (int)x!));
        foreach (string[] args in new[]
        {
            ["fisher", "--model", model, "--data", data, "-o", dir["f.safetensors"]],
            ["train", "--model", model, "--data", data, "--lora", "--epochs", "1", "-o", dir["adapter"]],
            new[] { "eval", "task", "--model", model, "--data", data, "--metric", "exact", "--max-new-tokens", "2", "-o", dir["task"] },
        })
        {
            (code, _, error) = Irr.Tests.Cli.CliRunner.Run(args);
            Assert.True(code == 0, $"{args[0]}: exit {code}: {error}");
        }
    }

    [Fact]
    public void LlamaFactorysAlpacaWithSystemAndHistoryIsAConversation()
    {
        // LlamaFactory's alpaca format (data/README.md; AlpacaDatasetConverter): the system column, the history's
        // [user, assistant] pairs as turns, then instruction + "\n" + input as the user turn and output as the answer.
        var record = TrainingRecord.Parse("""
            {"instruction": "And in Celsius?", "input": "94F", "output": "34.4C", "system": "Be exact.", "history": [["Convert 1 km to m", "1000 m"]]}
            """, "lf.jsonl").Single();
        Assert.Equal([new ChatMessage("system", "Be exact."), new ChatMessage("user", "Convert 1 km to m"), new ChatMessage("assistant", "1000 m"), new ChatMessage("user", "And in Celsius?\n94F")],
            record.Messages("ignored: the record has its own"));
        Assert.Equal("34.4C", record.Answer);
        var noSystem = TrainingRecord.Parse("""{"instruction": "Hi", "output": "Hello", "history": [], "system": ""}""" + "\n", "lf.jsonl").Single();
        Assert.Equal([new ChatMessage("system", "S"), new ChatMessage("user", "Hi")], noSystem.Messages("S"));
        Assert.Equal("lf.jsonl line 1: history[0]: expected a pair [user, assistant] of strings, found an array",
            Error(() => TrainingRecord.Parse("""{"instruction": "Hi", "output": "Hello", "history": [["a"]]}""" + "\n", "lf.jsonl")));
    }

    [Fact]
    public void TaskDataOfFewShotConversationsAsksTheWholeHistory()
    {
        var examples = DataFile.Parse("""
            {"messages": [{"role": "system", "content": "Answer with a number."}, {"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}, {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}
            {"messages": [{"role": "user", "content": "3+3?"}, {"role": "assistant", "content": "6"}]}
            """, "task.jsonl").Select(Irr.Eval.TaskExample.Of).ToList();
        Assert.Equal([("2+2?", "4"), ("3+3?", "6")], examples.Select(e => (e.User, e.Gold)));
        var requests = Irr.Eval.TaskEvaluation.Requests(examples, "Be brief.");
        Assert.Equal([new ChatMessage("system", "Answer with a number."), new ChatMessage("user", "1+1?"), new ChatMessage("assistant", "2"), new ChatMessage("user", "2+2?")], requests[0].Messages);
        Assert.Equal([new ChatMessage("system", "Be brief."), new ChatMessage("user", "3+3?")], requests[1].Messages);
    }

    [Theory]
    [InlineData("""{"messages": [{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}]}""", "d.jsonl line 1: messages[1].role: the role \"tool\" is not read (system, user or assistant)")]
    [InlineData("""{"conversations": [{"from": "human", "value": "a"}, {"from": "function_call", "value": "b"}]}""", "d.jsonl line 1: conversations[1].from: the role \"function_call\" is not read (system, user or assistant; ShareGPT's system, human or gpt)")]
    [InlineData("""{"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}, {"role": "assistant", "content": "c"}]}""", "d.jsonl line 1: messages[1]: a system message may only come first")]
    [InlineData("""{"messages": [{"role": "system", "content": "a"}, {"role": "assistant", "content": "c"}]}""", "d.jsonl line 1: messages[0]: the message before the answer (or the last message) must be the user's")]
    [InlineData("""{"messages": []}""", "d.jsonl line 1: the conversation has no messages")]
    [InlineData("""{"messages": "hi"}""", "d.jsonl line 1: messages: expected a list of messages, found the string \"hi\"")]
    [InlineData("""{"messages": [{"role": "user"}]}""", "d.jsonl line 1: messages[0]: missing \"content\"")]
    [InlineData("""{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]}""", "d.jsonl line 1: messages[0].content[0]: expected a text part {\"type\": \"text\", \"text\": …}, found an object")]
    [InlineData("""{"messages": [{"role": "user", "content": "a"}]}""", "d.jsonl line 1: the conversation does not end with an assistant message (the answer)")]
    [InlineData("""{"prompt": [{"role": "user", "content": "a"}], "completion": [{"role": "assistant", "content": "b"}, {"role": "assistant", "content": "c"}]}""", "d.jsonl line 1: completion: expected one assistant message (the answer of a conversational prompt-completion record)")]
    public void MalformedConversationsAreOneLineNamingThePlace(string line, string expected) =>
        Assert.Equal(expected, Error(() => TrainingRecord.Parse(line + "\n", "d.jsonl")));

    [Fact]
    public void APromptSetRefusesWhatItCannotSendRatherThanDroppingIt()
    {
        Assert.StartsWith("p.jsonl line 1: a conversation with a system message or more than one turn before the answer is read as training data only",
            Error(() => PromptSet.Parse("""{"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "a"}]}""" + "\n", "p.jsonl")));
    }
}
