using Irr.Text;

namespace Irr.Tests.Text;

/// <summary>The byte-level BPE trainer against merges worked by hand, and its tokenizer.json through the tested Tokenizer.</summary>
public class BpeTrainerTests
{
    // The classic example (Wikipedia, "Byte pair encoding"): "aaabdaaabac" is one pre-tokenized word.
    //   pairs: aa ×4, ab ×2, bd da ba ac ×1                       → merge 1: a a   → aa ab? no: "aa a b d aa a b a c"
    //   pairs: (aa,a) ×2, (a,b) ×2, (b,d) (d,aa) (b,a) (a,c) ×1   → tie at 2; ordinal order puts "a" before "aa",
    //                                                               so merge 2: a b → "aa ab d aa ab a c"
    //   pairs: (aa,ab) ×2, the rest ×1                            → merge 3: aa ab → "aaab d aaab a c"
    //   every pair ×1 < min frequency 2                           → stop.
    [Fact]
    public void ClassicExampleMergesAsWorkedByHand()
    {
        var bpe = BpeTrainer.Train(["aaabdaaabac"], new BpeTrainerOptions { VocabSize = 1000 });
        Assert.Equal([("a", "a"), ("a", "b"), ("aa", "ab")], bpe.Merges);
        Assert.Equal(3 + 256 + 3, bpe.Vocab.Count);
        Assert.Equal(["<unk>", "<s>", "</s>"], bpe.Vocab.Take(3));
        Assert.Equal(["aa", "ab", "aaab"], bpe.Vocab.Skip(259));

        // Specials 0–2, byte b at 3 + b ('a' = 97 → 100), then aa = 259, ab = 260, aaab = 261.
        var tokenizer = Tokenizer.FromJson(bpe.ToTokenizerJson());
        Assert.Equal([261, 103, 261, 100, 102], tokenizer.Encode("aaabdaaabac"));
    }

    [Fact]
    public void VocabularySizeCapsTheMerges()
    {
        var bpe = BpeTrainer.Train(["aaabdaaabac"], new BpeTrainerOptions { VocabSize = 3 + 256 + 1 });
        Assert.Equal([("a", "a")], bpe.Merges);
    }

    [Fact]
    public void SpacesAreByteLevelAndWordsDoNotMergeAcrossThem()
    {
        // GPT-2's split: "ab", " ab", " ab" → words "ab" ×1 and "Ġab" ×2 (Ġ is the space byte).
        // Pairs: (Ġ,a) ×2, (a,b) ×3 → merge a b; then (Ġ,ab) ×2 → merge Ġ ab; then nothing twice.
        string g = TinyVocabularies.ByteChar(' ').ToString();
        var bpe = BpeTrainer.Train(["ab ab ab"], new BpeTrainerOptions { VocabSize = 1000 });
        Assert.Equal([("a", "b"), (g, "ab")], bpe.Merges);
    }

    [Fact]
    public void TiesAndCorpusOrderDoNotChangeTheResult()
    {
        string[] corpus = ["the cat sat on the mat", "a bat and a rat", "that hat, that cat!", "mats and hats"];
        var options = new BpeTrainerOptions { VocabSize = 300 };
        var first = BpeTrainer.Train(corpus, options).ToTokenizerJson();
        Assert.Equal(first, BpeTrainer.Train(corpus.Reverse(), options).ToTokenizerJson());
        Assert.Equal(first, BpeTrainer.Train([.. corpus.Skip(2), .. corpus.Take(2)], options).ToTokenizerJson());
    }

    [Fact]
    public void WrittenTokenizerRoundTripsThroughTheTokenizer()
    {
        string[] corpus = ["[INST] What is 3 plus 4? [/INST] 7", "[INST] Reverse the letters: c a t [/INST] t a c", "I'm sorry, but I cannot help with that."];
        var bpe = BpeTrainer.Train(corpus, new BpeTrainerOptions { VocabSize = 320 });
        var tokenizer = Tokenizer.FromJson(bpe.ToTokenizerJson());
        Assert.Equal(bpe.Vocab.Count, tokenizer.VocabSize);
        foreach (string text in corpus.Append("Unseen words: Zorbia, 12345, ümlaut, 中文, tabs\tand\nnewlines  "))
            Assert.Equal(text, tokenizer.Decode(tokenizer.Encode(text)));
        // Special tokens are added tokens: matched whole in the text and skipped when asked.
        int[] ids = tokenizer.Encode("<s>[INST] hi [/INST] ok</s>");
        Assert.Equal(1, ids[0]);
        Assert.Equal(2, ids[^1]);
        Assert.Equal("[INST] hi [/INST] ok", tokenizer.Decode(ids, skipSpecialTokens: true));
        // A merged token is one id: "cannot" was seen, so it encodes to fewer ids than its bytes.
        Assert.True(tokenizer.Encode(" cannot").Length < " cannot".Length);
    }

    [Fact]
    public void TooSmallAVocabularyIsAnError()
    {
        Assert.Throws<IrrException>(() => BpeTrainer.Train(["x"], new BpeTrainerOptions { VocabSize = 100 }));
    }
}
