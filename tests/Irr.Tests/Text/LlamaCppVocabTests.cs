using Irr.Text;

namespace Irr.Tests.Text;

/// <summary>
/// The llama.cpp tokenizer test vectors, produced by Hugging Face <c>AutoTokenizer</c>
/// (<c>encode(text, add_special_tokens=False)</c>): every vector must give the same ids.
/// </summary>
public class LlamaCppVocabTests
{
    private const string Separator = "\n__ggml_vocab_test__\n";

    /// <summary>The (text, ids) pairs of one .inp/.out pair in tests/fixtures/llama.cpp-vocab.</summary>
    internal static List<(string Text, int[] Ids)> Load(string name)
    {
        string inp = File.ReadAllText(Fixtures.Local($"llama.cpp-vocab/ggml-vocab-{name}.gguf.inp"));
        var texts = inp.Split(Separator).ToList();
        Assert.Equal("", texts[^1]);
        texts.RemoveAt(texts.Count - 1);
        var lines = File.ReadAllText(Fixtures.Local($"llama.cpp-vocab/ggml-vocab-{name}.gguf.out")).Split('\n');
        Assert.Equal(texts.Count + 1, lines.Length);
        return texts.Select((t, i) => (t, lines[i].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray())).ToList();
    }

    public static TheoryData<int> Cases(string name)
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < Load(name).Count; i++) data.Add(i);
        return data;
    }

    private static void Check(Tokenizer tokenizer, string name, int index)
    {
        var (text, expected) = Load(name)[index];
        Assert.Equal(expected, tokenizer.Encode(text));
    }

    [Fact]
    public void TheVectorFilesHaveTheExpectedNumberOfCases()
    {
        Assert.Equal(46, Load("llama-spm").Count);
        Assert.Equal(46, Load("llama-bpe").Count);
        Assert.Equal(46, Load("qwen2").Count);
        Assert.Equal(11, Load("tinyllama").Count);
    }

    [Theory]
    [MemberData(nameof(Cases), "llama-spm")]
    public void LlamaSpm(int index) => Check(Fixtures.TinyLlama, "llama-spm", index);

    [Theory]
    [MemberData(nameof(Cases), "tinyllama")]
    public void TinyLlama(int index) => Check(Fixtures.TinyLlama, "tinyllama", index);

    [SharedFixtureTheory(Fixtures.Llama3Json)]
    [MemberData(nameof(Cases), "llama-bpe")]
    public void LlamaBpe(int index) => Check(Fixtures.Llama3, "llama-bpe", index);

    [SharedFixtureTheory(Fixtures.Qwen3Json)]
    [MemberData(nameof(Cases), "qwen2")]
    public void Qwen2(int index) => Check(Fixtures.Qwen3, "qwen2", index);
}
