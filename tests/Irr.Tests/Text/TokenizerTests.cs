using System.Text;
using System.Text.Json.Nodes;
using Irr;
using Irr.Text;

namespace Irr.Tests.Text;

/// <summary>Hand-worked encodings on the tiny vocabularies of <see cref="TinyVocabularies"/>.</summary>
public class SentencePieceStyleTests
{
    private static readonly Tokenizer Tok = Tokenizer.FromJson(TinyVocabularies.SentencePiece().ToJsonString());

    [Theory]
    // "▁abc": the pair of lowest rank (a b, rank 0) merges first → ▁ ab c; then ▁ ab (rank 3) before ab c (rank 4).
    [InlineData("abc", new[] { 265, 262 })]
    // "▁a▁b": only ▁ a merges.
    [InlineData("a b", new[] { 264, 259, 261 })]
    // Leading and repeated spaces: "▁▁▁a" → ▁ a first (rank 1), then the leftmost ▁ ▁ (rank 5).
    [InlineData("  a", new[] { 268, 264 })]
    [InlineData(" ", new[] { 268 })]
    // A newline is not in the vocabulary: byte fallback to <0x0A> = 3 + 10.
    [InlineData("a\nb", new[] { 264, 13, 259 + 2 })]
    // CJK in the vocabulary; an emoji (F0 9F 98 80) falls back to its four bytes.
    [InlineData("中", new[] { 259, 269 })]
    [InlineData("😀", new[] { 259, 3 + 0xF0, 3 + 0x9F, 3 + 0x98, 3 + 0x80 })]
    // Special tokens in the middle: each piece between them gets its own "▁".
    [InlineData("a</s>b", new[] { 264, 2, 259, 261 })]
    [InlineData("a</s> b", new[] { 264, 2, 268, 261 })]
    [InlineData("<s>", new[] { 1 })]
    [InlineData("", new int[0])]
    public void EncodesAsWorkedOutByHand(string text, int[] expected) => Assert.Equal(expected, Tok.Encode(text));

    [Fact]
    public void SpecialTokensAddBosFromTheTemplate()
    {
        Assert.Equal([1, 264], Tok.Encode("a", addSpecialTokens: true));
        Assert.Equal([1], Tok.Encode("", addSpecialTokens: true));
    }

    [Theory]
    [InlineData(new[] { 265, 262 }, "abc")]
    [InlineData(new[] { 268, 264 }, "  a")] // "▁▁▁a" → "   a", one leading space stripped
    [InlineData(new[] { 259, 3 + 0xF0, 3 + 0x9F, 3 + 0x98, 3 + 0x80 }, "😀")]
    [InlineData(new[] { 264, 3 + 0xF0, 262 }, "a\uFFFDc")] // a lone lead byte is one U+FFFD
    [InlineData(new[] { 264, 2, 259, 261 }, "a</s> b")]
    public void DecodesAsWorkedOutByHand(int[] ids, string expected) => Assert.Equal(expected, Tok.Decode(ids));

    [Fact]
    public void SkippingSpecialTokensDropsThem() => Assert.Equal("a b", Tok.Decode([1, 264, 2, 259, 261], skipSpecialTokens: true));

    [Fact]
    public void UnknownCharactersFuseWithoutByteFallback()
    {
        var fused = Tokenizer.FromJson(TinyVocabularies.SentencePiece(byteFallback: false, fuseUnk: true).ToJsonString());
        var separate = Tokenizer.FromJson(TinyVocabularies.SentencePiece(byteFallback: false, fuseUnk: false).ToJsonString());
        Assert.Equal([264, 0, 261], fused.Encode("a😀😀b"));
        Assert.Equal([264, 0, 0, 261], separate.Encode("a😀😀b"));
    }

    [Fact]
    public void AnIdOutsideTheVocabularyDecodesToNothingWithAWarning()
    {
        // HF tokenizers' decode skips ids it has no token for (a padded embedding's rows: Qwen2's 151,936 against 151,665):
        // "▁a" (264), 5000, "c" (262) is "ac", as "▁a" "c" alone is.
        var warnings = new List<string>();
        using (Diagnostics.Listen(warnings.Add))
        {
            Assert.Equal("ac", Tok.Decode([264, 5000, 262], false, out int unknown));
            Assert.Equal(1, unknown);
            Assert.Equal("", Tok.Decode([5000, -1]));
        }
        Assert.NotEmpty(warnings);
        Assert.All(warnings, w => Assert.Contains("outside the tokenizer's vocabulary", w));
    }
}

/// <summary>The added-token flags lstrip, rstrip, single_word and normalized, on the tiny SentencePiece vocabulary.</summary>
public class AddedTokenFlagTests
{
    private static readonly Tokenizer Tok = Tokenizer.FromJson(With().ToJsonString());

    private static JsonObject With()
    {
        var json = TinyVocabularies.SentencePiece();
        var added = json["added_tokens"]!.AsArray();
        added.Add(Token(270, "<x>", lstrip: true));
        added.Add(Token(271, "<y>", rstrip: true));
        added.Add(Token(272, "<z>", singleWord: true));
        added.Add(Token(273, "ab", normalized: true));
        return json;
    }

    private static JsonObject Token(int id, string content, bool lstrip = false, bool rstrip = false, bool singleWord = false, bool normalized = false) => new()
    {
        ["id"] = id, ["content"] = content, ["single_word"] = singleWord, ["lstrip"] = lstrip, ["rstrip"] = rstrip,
        ["normalized"] = normalized, ["special"] = false,
    };

    [Theory]
    // lstrip: the match takes the space on its left, so "a" is alone: ▁a, <x>, ▁ b.
    [InlineData("a <x>b", new[] { 264, 270, 259, 261 })]
    // rstrip: the match takes both spaces on its right.
    [InlineData("a<y>  b", new[] { 264, 271, 259, 261 })]
    // Without the flags the spaces stay with the text: "a " → ▁a ▁.
    [InlineData("a <y>b", new[] { 264, 259, 271, 259, 261 })]
    // single_word: inside a word it is no match, so its characters fall back to bytes < z > = 3+0x3C, 3+0x7A, 3+0x3E.
    [InlineData("a<z>", new[] { 264, 63, 125, 65 })]
    // … and between spaces it is: "a " → ▁a ▁; " b" → ▁▁ b.
    [InlineData("a <z> b", new[] { 264, 259, 272, 268, 261 })]
    // normalized: matched in the normalized text against its normalized content "▁ab".
    [InlineData("ab ab", new[] { 273, 273 })]
    [InlineData("xab", new[] { 259, 3 + 0x78, 263 })]
    public void FlagsChangeWhatTheMatchTakes(string text, int[] expected) => Assert.Equal(expected, Tok.Encode(text));
}

public class ByteLevelStyleTests
{
    private static readonly Tokenizer Tok = Tokenizer.FromJson(TinyVocabularies.ByteLevel().ToJsonString());

    [Theory]
    // GPT-2 regex: "the", " the"; "the" → t he; " the" → Ġt h e → Ġt he → Ġthe.
    [InlineData("the the", new[] { 116, 257, 258 })]
    // "  the": \s+(?!\S) takes one space, then " the".
    [InlineData("  the", new[] { 32, 258 })]
    // "   ": one piece of three spaces; Ġ Ġ merges at the left first.
    [InlineData("   ", new[] { 259, 32 })]
    // Newlines: "a", "\n", "\n", "b" (the first \n is a \s+ followed by whitespace).
    [InlineData("a\n\nb", new[] { 97, 10, 10, 98 })]
    // CJK and emoji are their UTF-8 bytes.
    [InlineData("中", new[] { 0xE4, 0xB8, 0xAD })]
    [InlineData("😀", new[] { 0xF0, 0x9F, 0x98, 0x80 })]
    [InlineData("the<|end|>the", new[] { 116, 257, 260, 116, 257 })]
    public void EncodesAsWorkedOutByHand(string text, int[] expected) => Assert.Equal(expected, Tok.Encode(text));

    [Fact]
    public void ByteLevelPostProcessorAddsNothing() => Assert.Equal([116, 257], Tok.Encode("the", addSpecialTokens: true));

    [Fact]
    public void DecodeOfEncodeIsTheIdentityOnRandomUnicode()
    {
        var rng = new Random(20251122);
        for (int n = 0; n < 2000; n++)
        {
            string s = RandomText(rng, rng.Next(0, 24));
            Assert.Equal(s, Tok.Decode(Tok.Encode(s)));
        }
    }

    /// <summary>Random Unicode scalar values, biased to spaces, newlines, ASCII and the byte-level edge cases.</summary>
    internal static string RandomText(Random rng, int length)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < length; i++)
        {
            int cp = rng.Next(8) switch
            {
                0 => " \n\t\r"[rng.Next(4)],
                1 => rng.Next(0x20, 0x7F),
                2 => rng.Next(0x80, 0x800),
                3 => rng.Next(0x800, 0x10000),
                4 => rng.Next(0x10000, 0x110000),
                5 => "<|end|>'s"[rng.Next(9)],
                6 => rng.Next(0, 0x20),
                _ => rng.Next(0x1F300, 0x1FAFF),
            };
            if (cp is >= 0xD800 and <= 0xDFFF) cp = 0xFFFD;
            sb.Append(char.ConvertFromUtf32(cp));
        }
        return sb.ToString();
    }
}

/// <summary>Malformed tokenizer.json files give one-line errors naming the file and the JSON path.</summary>
public class TokenizerJsonErrorTests
{
    private static string Error(JsonObject json) =>
        Assert.Throws<IrrException>(() => Tokenizer.FromJson(json.ToJsonString(), "tokenizer.json")).Message;

    private static JsonObject With(Action<JsonObject> edit)
    {
        var json = TinyVocabularies.SentencePiece();
        edit(json);
        return json;
    }

    [Fact]
    public void AMergeWithThreeParts() => Assert.Equal(
        "tokenizer.json: model.merges[1]: expected \"a b\" or [\"a\",\"b\"], found the string \"▁ a b\"",
        Error(With(j => j["model"]!["merges"]![1] = "▁ a b")));

    [Fact]
    public void AMergeOfUnknownTokens() => Assert.Equal(
        "tokenizer.json: model.merges[0]: \"x\" is not in the vocabulary",
        Error(With(j => j["model"]!["merges"]![0] = "x b")));

    [Fact]
    public void AMergeWhoseResultIsMissing() => Assert.Equal(
        "tokenizer.json: model.merges[6]: the merged token \"ca\" is not in the vocabulary",
        Error(With(j => j["model"]!["merges"]!.AsArray().Add("c a"))));

    [Fact]
    public void AVocabularyIdThatIsNotANumber() => Assert.Equal(
        "tokenizer.json: model.vocab.a: expected an integer, found the string \"x\"",
        Error(With(j => j["model"]!["vocab"]!["a"] = "x")));

    [Fact]
    public void NoModel() => Assert.Equal("tokenizer.json: missing \"model\"", Error(With(j => j.Remove("model"))));

    [Fact]
    public void AnotherModelType() => Assert.Equal(
        "tokenizer.json: model: model type 'WordPiece' is not supported (only BPE)",
        Error(With(j => j["model"]!["type"] = "WordPiece")));

    [Fact]
    public void AnUnsupportedPreTokenizer() => Assert.StartsWith(
        "tokenizer.json: pre_tokenizer.type: unsupported pre_tokenizer type 'BertPreTokenizer'",
        Error(With(j => j["pre_tokenizer"] = new JsonObject { ["type"] = "BertPreTokenizer" })));

    [Fact]
    public void ABadRegex() => Assert.StartsWith(
        "tokenizer.json: pre_tokenizer.pattern.Regex: regular expression not supported",
        Error(With(j => j["pre_tokenizer"] = new JsonObject
        {
            ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = "(unclosed" }, ["behavior"] = "Isolated", ["invert"] = false,
        })));

    [Fact]
    public void AnUnknownUnkToken() => Assert.Equal(
        "tokenizer.json: model.unk_token: \"<nope>\" is not in the vocabulary",
        Error(With(j => j["model"]!["unk_token"] = "<nope>")));

    [Fact]
    public void AnAddedTokenWithoutId() => Assert.Equal(
        "tokenizer.json: added_tokens[1]: missing \"id\"",
        Error(With(j => j["added_tokens"]![1]!.AsObject().Remove("id"))));

    [Fact]
    public void NotJsonAtAll()
    {
        var e = Assert.Throws<IrrException>(() => Tokenizer.FromJson("{\"model\": [1, 2", "tokenizer.json"));
        Assert.StartsWith("tokenizer.json: not valid JSON (line 1", e.Message);
        Assert.DoesNotContain("\n", e.Message);
    }

    [Fact]
    public void AMissingFile()
    {
        var e = Assert.Throws<IrrException>(() => Tokenizer.Load("/nonexistent/tokenizer.json"));
        Assert.Equal("tokenizer.json: file not found (/nonexistent/tokenizer.json)", e.Message);
    }
}
