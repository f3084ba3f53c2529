using Irr.Text;

namespace Irr.Tests.Text;

/// <summary>Behaviour of the real files that the vectors do not pin down, worked out from their vocabularies.</summary>
public class RealTokenizerTests
{
    [SharedFixtureFact(Fixtures.MistralJson)]
    public void MistralPrependsTheMetaspaceOnlyAtTheStartOfTheInput()
    {
        var t = Fixtures.Mistral;
        int hello = t.TokenToId("▁Hello")!.Value;
        // prepend_scheme "first": " Hello" already starts with "▁" after the space is replaced, so no second one.
        Assert.Equal([hello], t.Encode(" Hello"));
        Assert.Equal([hello], t.Encode("Hello"));
        // After an added token the piece does not start the input: "Hello" gets no "▁".
        int inst = t.TokenToId("[INST]")!.Value;
        var ids = t.Encode("[INST]Hello");
        Assert.Equal(inst, ids[0]);
        Assert.Equal("Hello", string.Concat(ids[1..].Select(i => t.IdToToken(i))));
        Assert.Equal([inst, hello], t.Encode("[INST] Hello"));
        Assert.Equal([1, hello], t.Encode("Hello", addSpecialTokens: true));
    }

    [SharedFixtureFact(Fixtures.Llama3Json)]
    public void Llama3RoundTripsRandomUnicode()
    {
        var t = Fixtures.Llama3;
        var rng = new Random(7);
        for (int n = 0; n < 500; n++)
        {
            string s = ByteLevelStyleTests.RandomText(rng, rng.Next(0, 40));
            Assert.Equal(s, t.Decode(t.Encode(s)));
        }
    }

    [SharedFixtureFact(Fixtures.Llama3Json)]
    public void Llama3IgnoreMergesTakesAWholeVocabularyWordAsIs()
    {
        var t = Fixtures.Llama3;
        // With ignore_merges a pre-token that is a vocabulary entry is emitted whole.
        int id = t.TokenToId("Ġthe")!.Value;
        Assert.Equal([id], t.Encode(" the"));
        // The original release's ByteLevel post-processor adds no <|begin_of_text|>.
        Assert.Equal([id], t.Encode(" the", addSpecialTokens: true));
        Assert.Equal([128000, id], t.Encode("<|begin_of_text|> the"));
    }

    [SharedFixtureFact(Fixtures.Qwen3Json)]
    public void Qwen3NormalizesToNfcBeforeSplitting()
    {
        var t = Fixtures.Qwen3;
        Assert.Equal(t.Encode("caf\u00E9"), t.Encode("cafe\u0301"));
        Assert.Equal("caf\u00E9", t.Decode(t.Encode("cafe\u0301")));
    }
}

public class UnicodeNormalizerTests
{
    [Theory]
    [InlineData("e\u0301", NormalizationForm.NFC, "\u00E9")]
    [InlineData("\u00E9", NormalizationForm.NFD, "e\u0301")]
    [InlineData("\u1100\u1161\u11A8", NormalizationForm.NFC, "\uAC01")] // Hangul L V T → 각
    [InlineData("\uAC01", NormalizationForm.NFD, "\u1100\u1161\u11A8")]
    [InlineData("a\u0323\u0301", NormalizationForm.NFC, "\u1EA1\u0301")] // dot below (220) composes first
    [InlineData("a\u0301\u0323", NormalizationForm.NFC, "\u1EA1\u0301")] // reordered to the same
    [InlineData("\u212B", NormalizationForm.NFC, "\u00C5")] // ANGSTROM SIGN is a singleton
    [InlineData("\uFB01", NormalizationForm.NFC, "\uFB01")] // ﬁ has only a compatibility mapping
    [InlineData("\uFB01", NormalizationForm.NFKC, "fi")]
    [InlineData("\u00A0x\u00B2", NormalizationForm.NFKD, " x2")]
    [InlineData("\U0001D15E", NormalizationForm.NFC, "\U0001D157\U0001D165")] // musical half note: excluded from composition
    [InlineData("plain ascii", NormalizationForm.NFC, "plain ascii")]
    public void NormalizesAsUnicodeSays(string input, NormalizationForm form, string expected) =>
        Assert.Equal(expected, UnicodeNormalizer.Normalize(input, form));
}

/// <summary>
/// Cutting SentencePiece-style words before each run of "▁" (so the word cache works without a
/// pre-tokenizer) must not change any id: compared with merging whole segments, on random text.
/// </summary>
public class MetaspaceRunSplittingTests
{
    [Fact]
    public void TinyLlamaGivesTheSameIdsWithAndWithoutCutting()
    {
        var cut = Irr.Text.Tokenizer.Load(Path.Combine(Fixtures.TinyLlamaDir, "tokenizer.json"));
        var whole = Irr.Text.Tokenizer.Load(Path.Combine(Fixtures.TinyLlamaDir, "tokenizer.json"));
        Assert.True(cut.Model.SplitAtMetaspaceRuns);
        whole.Model.SplitAtMetaspaceRuns = false;
        var rng = new Random(99);
        string[] words = ["the", "▁", " ", "  ", "   ", "\n", "\t", "Hello", "world", "don't", "1234", "é", "中文", "😀", "<s>", "a", "__init__", "()", ".", "\u00A0"];
        for (int n = 0; n < 3000; n++)
        {
            var sb = new System.Text.StringBuilder();
            int count = rng.Next(0, 12);
            for (int i = 0; i < count; i++)
                sb.Append(rng.Next(4) == 0 ? ByteLevelStyleTests.RandomText(rng, rng.Next(1, 4)) : words[rng.Next(words.Length)]);
            string s = sb.ToString();
            Assert.Equal(whole.Encode(s), cut.Encode(s));
        }
    }

    [SharedFixtureFact(Fixtures.Llama3Json)]
    public void ByteLevelVocabulariesAreNotCut() => Assert.False(Fixtures.Llama3.Model.SplitAtMetaspaceRuns);
}

/// <summary>400 random strings (combining marks, Hangul, compatibility characters …) normalized by CPython's unicodedata.</summary>
public class UnicodeNormalizationReferenceTests
{
    public static TheoryData<string> Forms() => new() { "NFC", "NFD", "NFKC", "NFKD" };

    [Theory]
    [MemberData(nameof(Forms))]
    public void AgreesWithPython(string form)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Fixtures.Local("references/unicode_normalization.json")));
        var f = Enum.Parse<NormalizationForm>(form);
        int n = 0;
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            string text = c.GetProperty("text").GetString()!;
            Assert.True(c.GetProperty(form).GetString() == UnicodeNormalizer.Normalize(text, f), $"{form} of {string.Join(" ", text.EnumerateRunes().Select(r => r.Value.ToString("X4")))}");
            n++;
        }
        Assert.Equal(400, n);
    }
}

/// <summary>HF <c>tokenizers</c> normalizes with Unicode 9.0 data (unicode-normalization-alignments 0.1.12), not the newest.</summary>
public class HfUnicodeVersionTests
{
    [Theory]
    // U+089E (ccc 230) and U+089B (ccc 220) were assigned in Unicode 14: for HF they are unassigned (ccc 0), so not reordered.
    [InlineData("a\u089E\u089B", "a\u089E\u089B")]
    // U+0301 (230) and U+0323 (220) are Unicode 1.1: reordered (dot below first), then a+U+0323 composes to U+1EA1.
    [InlineData("a\u0301\u0323", "\u1EA1\u0301")]
    // U+07FD (Unicode 11, ccc 220) is not moved before U+0301 either.
    [InlineData("e\u0301\u07FD", "\u00E9\u07FD")]
    public void NfcLeavesCharactersAssignedAfterUnicode9AsTheyAre(string text, string expected) =>
        Assert.Equal(expected, UnicodeNormalizer.Normalize(text, NormalizationForm.NFC));
}
