using System.Text.Json.Nodes;
using Irr.Tests.Cli;
using Irr.Text;

namespace Irr.Tests.Text;

/// <summary>
/// A tokenizer.json from a download is untrusted (issue 24): a regular expression that backtracks without end is
/// stopped by its match time limit, and ids or counts that would size tables far beyond the file are refused by name,
/// each as one error naming tokenizer.json and the key (exit 2). The real tokenizers (HfTokenizersOracleTests,
/// RealTokenizerTests) still give Hugging Face's ids under these limits.
/// </summary>
public class HostileTokenizerTests
{
    private static IrrException Refused(JsonObject tokenizer) =>
        Assert.Throws<IrrException>(() => Tokenizer.FromJson(tokenizer.ToJsonString(), "tokenizer.json"));

    private static JsonObject Model(JsonObject t) => t["model"]!.AsObject();

    [Theory]
    [InlineData(2147483647L, "model.vocab.he", "the token id 2,147,483,647 exceeds the limit of 1,048,576 (raise it with IRR_MAX_VOCAB_SIZE=…)")]
    [InlineData(2147483648L, "model.vocab.he", "the token id 2,147,483,648 exceeds the limit")]
    [InlineData(1048576L, "model.vocab.he", "the token id 1,048,576 exceeds the limit")]
    [InlineData(-1L, "model.vocab.he", "expected a non-negative id")]
    public void AVocabularyIdOutOfRangeIsRefusedByKey(long id, string where, string expected)
    {
        // vocab id 2³¹−1 was an internal error (exit 70): the id table was sized by it
        var t = TinyVocabularies.ByteLevel();
        Model(t)["vocab"]!["he"] = id;
        var e = Refused(t);
        Assert.Equal($"tokenizer.json: {where}: {expected}", e.Message[..Math.Min(e.Message.Length, $"tokenizer.json: {where}: {expected}".Length)]);
    }

    [Fact]
    public void TheLargestIdBelowTheLimitIsAccepted()
    {
        var t = TinyVocabularies.ByteLevel();
        Model(t)["vocab"]!["he"] = 1048575;
        var tokenizer = Tokenizer.FromJson(t.ToJsonString());
        Assert.Equal("he", tokenizer.IdToToken(1048575));
    }

    [Theory]
    [InlineData("1e20", "expected an integer")]
    [InlineData("1.5", "expected an integer")]
    [InlineData("\"5\"", "expected an integer")]
    [InlineData("null", "expected an integer")]
    public void AVocabularyIdThatIsNoIntegerIsRefused(string id, string expected) =>
        Assert.Contains(expected, Refused(WithVocabId(id)).Message);

    private static JsonObject WithVocabId(string id)
    {
        var t = TinyVocabularies.ByteLevel();
        Model(t)["vocab"]!["he"] = JsonNode.Parse(id);
        return t;
    }

    [Fact]
    public void AnAddedTokenOrPostProcessorIdOutOfRangeIsRefusedByKey()
    {
        var t = TinyVocabularies.ByteLevel();
        t["added_tokens"]![0]!["id"] = 2147483647;
        Assert.StartsWith("tokenizer.json: added_tokens[0].id: the token id 2,147,483,647 exceeds the limit", Refused(t).Message);

        t = TinyVocabularies.ByteLevel();
        t["post_processor"] = JsonNode.Parse("""
            {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|end|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [], "special_tokens": {"<|end|>": {"id": "<|end|>", "ids": [4000000000], "tokens": ["<|end|>"]}}}
            """);
        Assert.Contains("special_tokens.<|end|>.ids[0]: the token id 4,000,000,000 exceeds the limit", Refused(t).Message);
    }

    [Fact]
    public void AMergeOfUnknownTokensIsRefusedByRank()
    {
        var t = TinyVocabularies.ByteLevel();
        Model(t)["merges"]!.AsArray().Add(new JsonArray("zz", "q"));
        Assert.Equal("tokenizer.json: model.merges[4]: \"zz\" is not in the vocabulary", Refused(t).Message);
    }

    /// <summary>
    /// The issue's <c>(a+)+$</c> as a Split pre-tokenizer, and as a Replace normalizer: 10 s of backtracking (the default
    /// IRR_MAX_REGEX_SECONDS), then one error naming tokenizer.json, where the pattern is and the pattern, within the
    /// process's CPU limit (30 s). Before, this ran until killed.
    /// </summary>
    [Theory]
    [InlineData("pre_tokenizer", """{"type": "Split", "pattern": {"Regex": "(a+)+$"}, "behavior": "Isolated", "invert": false}""", "pre_tokenizer.pattern.Regex")]
    [InlineData("normalizer", """{"type": "Replace", "pattern": {"Regex": "(\\w+\\s?)+$\u001b"}, "content": "x"}""", "normalizer.pattern.Regex")]
    public void ARegexThatBacktracksWithoutEndIsStoppedByItsTimeLimit(string key, string step, string where)
    {
        using var dir = new IO.TempDir();
        var t = TinyVocabularies.ByteLevel();
        t[key] = JsonNode.Parse(step);
        File.WriteAllText(dir["tokenizer.json"], t.ToJsonString());
        var r = IrrProcess.Run(["tokenize", "--model", dir.Path, "--text", new string('a', 60) + "!"]);
        string line = IrrProcess.AssertOneLineError(r, "tokenizer.json: " + where, "took longer than 10 s", "IRR_MAX_REGEX_SECONDS");
        Assert.Contains(key == "normalizer" ? "\"(\\w+\\s?)+$\\x1b\"" : "\"(a+)+$\"", line);
        Assert.Contains("to match a text of 61 characters", line); // the text given (it said 0: a span's match has no Input)
    }

    [Fact]
    public void CountsBeyondTheVocabularyLimitAreRefusedBeforeTablesAreBuilt()
    {
        using var dir = new IO.TempDir();
        var t = TinyVocabularies.ByteLevel();
        t.Remove("added_tokens");
        File.WriteAllText(dir["tokenizer.json"], t.ToJsonString());
        var r = IrrProcess.Run(["tokenize", "--model", dir.Path, "--text", "the"], env: new Dictionary<string, string> { ["IRR_MAX_VOCAB_SIZE"] = "200" });
        IrrProcess.AssertOneLineError(r, "tokenizer.json: model.vocab: the number of entries (260) exceeds the limit of 200 (raise it with IRR_MAX_VOCAB_SIZE=…)");
    }
}
