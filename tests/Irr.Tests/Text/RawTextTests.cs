using System.Text.Json.Nodes;
using Irr.Data;
using Irr.Text;

namespace Irr.Tests.Text;

/// <summary>
/// --no-chat-template (<see cref="PretrainedTokenizer.RawText"/>), worked out by hand on the tiny SentencePiece vocabulary
/// (<see cref="TinyVocabularies.SentencePiece"/>: ▁=259 b=261 c=262 ▁a=264 ▁ab=265; &lt;s&gt;=1, &lt;/s&gt;=2): the text as is,
/// BOS/EOS as the tokenizer adds them (transformers' <c>tokenizer(text)</c>), prompt + answer concatenated as TRL's
/// prompt-completion format does.
/// </summary>
public class RawTextTests
{
    private static PretrainedTokenizer Raw(bool? addBos = null, bool? addEos = null)
    {
        using var dir = new TinyModelDir(Config(addBos, addEos));
        return PretrainedTokenizer.Load(dir.Path).AsRawText();
    }

    private static JsonObject Config(bool? addBos, bool? addEos)
    {
        var config = new JsonObject { ["bos_token"] = "<s>", ["eos_token"] = "</s>", ["tokenizer_class"] = "LlamaTokenizer" };
        if (addBos is { } b) config["add_bos_token"] = b;
        if (addEos is { } e) config["add_eos_token"] = e;
        return config;
    }

    [Fact]
    public void APromptIsItsTextWithBosAsTheTokenizerAddsIt()
    {
        ChatMessage[] user = [new("user", "a b")];
        Assert.Equal([1, 264, 259, 261], ChatPrompt.EncodePrompt(Raw(), user));           // add_bos_token defaults to true (LlamaTokenizer)
        Assert.Equal([264, 259, 261], ChatPrompt.EncodePrompt(Raw(addBos: false), user));
        Assert.Equal([1, 264, 259, 261, 2], ChatPrompt.EncodePrompt(Raw(addEos: true), user)); // as tokenizer(text) with add_eos_token
        Assert.Equal([1], ChatPrompt.EncodePrompt(Raw(), [new("user", "")]));               // the empty prompt is BOS alone
        Assert.Equal("a b", ChatPrompt.Render(Raw(), user));
    }

    [Fact]
    public void ARecordIsPromptPlusAnswerConcatenatedWithEosAndLabelsOnTheAnswer()
    {
        // "a" + " b" = "a b" → <s> ▁a ▁ b, then </s>; the prompt's tokens <s> ▁a carry no label.
        var e = ChatPrompt.Encode(Raw(), new TrainingRecord("a", " b"), null, 100);
        Assert.Equal([1, 264, 259, 261, 2], e.InputIds);
        Assert.Equal([-100, -100, 259, 261, 2], e.Labels);
        // No separator is added: "a" + "b" = "ab" → <s> ▁ab </s>; ▁ab spans the junction, so it is labelled.
        e = ChatPrompt.Encode(Raw(), new TrainingRecord("a", "b"), null, 100);
        Assert.Equal([1, 265, 2], e.InputIds);
        Assert.Equal([-100, 265, 2], e.Labels);
        // add_eos_token: the tokenizer's EOS ends it, not a second one; add_bos_token false: no BOS.
        e = ChatPrompt.Encode(Raw(addEos: true), new TrainingRecord("a", " b"), null, 100);
        Assert.Equal([1, 264, 259, 261, 2], e.InputIds);
        Assert.Equal([-100, -100, 259, 261, 2], e.Labels);
        e = ChatPrompt.Encode(Raw(addBos: false), new TrainingRecord("a", " b"), null, 3);
        Assert.Equal([264, 259, 261], e.InputIds);
        Assert.Equal([-100, 259, 261], e.Labels);
    }

    [Fact]
    public void ASystemPromptOrAConversationNeedsAChatTemplate()
    {
        var e = Assert.Throws<IrrException>(() => ChatPrompt.Encode(Raw(), new TrainingRecord("a", "b"), "be nice", 100));
        Assert.Contains("system prompt needs a chat template", e.Message);
        e = Assert.Throws<IrrException>(() => ChatPrompt.EncodePrompt(Raw(), [new("user", "a"), new("assistant", "b"), new("user", "c")]));
        Assert.Contains("3 messages (user, assistant, user) needs a chat template", e.Message);
        // A record's own system message is the record's, not --system-prompt's: the error names its line and its turns.
        var record = TrainingRecord.Parse("""
            {"prompt": "a", "completion": "b"}
            {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
            """, "chat.jsonl")[1];
        e = Assert.Throws<IrrException>(() => ChatPrompt.Encode(Raw(), record, null, 100));
        Assert.Equal("chat.jsonl line 2: a conversation of 2 messages (system, user) needs a chat template: with --no-chat-template only a single prompt is tokenized as is", e.Message);
    }

    [Fact]
    public void WithoutTheFlagAModelWithoutATemplateIsRefusedNamingTheFlag()
    {
        using var dir = new TinyModelDir(Config(null, null));
        var e = Assert.Throws<IrrException>(() => ChatPrompt.Render(PretrainedTokenizer.Load(dir.Path), [new("user", "a")]));
        Assert.Contains("--no-chat-template", e.Message);
    }

    [Fact]
    public void AContinuationKeepsTheLeadingSpaceItsFirstTokenCarries()
    {
        var tok = Raw().Tokenizer;
        // decode([<s>, ▁a, ▁ab]) = "a ab", decode([<s>, ▁a]) = "a": the answer is " ab" (decoded alone it would be "ab").
        Assert.Equal("ab", tok.Decode([265]));
        Assert.Equal(" ab", tok.DecodeContinuation([1, 264], [265], skipSpecialTokens: true, out int unknown));
        Assert.Equal(0, unknown);
        // After BOS alone the decoder's Strip takes the space, as llama2.c and vLLM print a story's first word.
        Assert.Equal("ab", tok.DecodeContinuation([1], [265], skipSpecialTokens: true, out _));
        // A character whose UTF-8 bytes (é = C3 A9: byte pieces 3 + 0xC3, 3 + 0xA9) straddle prompt and answer is the answer's.
        Assert.Equal("é", tok.DecodeContinuation([1, 264, 3 + 0xC3], [3 + 0xA9], skipSpecialTokens: true, out _));
        // Ids beyond the vocabulary add nothing and are counted.
        Assert.Equal(" ab", tok.DecodeContinuation([1, 264], [265, 400, 401], skipSpecialTokens: true, out unknown));
        Assert.Equal(2, unknown);
        Assert.Equal("", tok.DecodeContinuation([1, 264], [], skipSpecialTokens: true, out _));
    }
}

/// <summary>TRL's language-modeling format, <c>{"text": …}</c>: the whole text is labelled with raw text, and a chat template refuses it.</summary>
public class TextRecordTests
{
    [Fact]
    public void ATextRecordIsAllAnswer()
    {
        var records = TrainingRecord.Parse("""
            {"text": "a b"}
            {"prompt": "a", "response": " b", "text": "ignored"}
            """, "data.jsonl");
        Assert.True(records[0].IsText);
        Assert.Equal(("", "a b"), (records[0].User, records[0].Answer));
        Assert.False(records[1].IsText);
        using var dir = new TinyModelDir(new System.Text.Json.Nodes.JsonObject { ["bos_token"] = "<s>", ["eos_token"] = "</s>", ["tokenizer_class"] = "LlamaTokenizer" });
        var raw = PretrainedTokenizer.Load(dir.Path).AsRawText();
        // <s> ▁a ▁ b </s>: everything after BOS is labelled (TRL appends EOS to language-modeling text too).
        var e = ChatPrompt.Encode(raw, records[0], null, 100);
        Assert.Equal([1, 264, 259, 261, 2], e.InputIds);
        Assert.Equal([-100, 264, 259, 261, 2], e.Labels);
        using var chat = new TinyModelDir();
        var error = Assert.Throws<IrrException>(() => ChatPrompt.Encode(PretrainedTokenizer.Load(chat.Path), records[0], null, 100));
        Assert.Equal("data.jsonl line 1: a {\"text\"} record (language-modeling data) has no prompt for a chat template; --no-chat-template tokenizes it as is", error.Message);
    }
}
