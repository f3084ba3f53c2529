using Irr.Tests.IO;
using Irr.Tests.Model;
using Irr.Text;

namespace Irr.Tests.Text;

/// <summary>
/// A model directory with a SentencePiece <c>tokenizer.model</c> and no tokenizer.json (what <c>LlamaTokenizer(vocab_file)
/// .save_pretrained</c> leaves, and what AutoTokenizer converts with transformers' LlamaConverter): irr converts it the same
/// way. The reference is independent of irr: llama2.c's run.c <c>encode</c> (its merge loop on tok512.bin's scores, the
/// same pieces and scores as tok512.model; see ../shared/realmodel/README.md).
/// </summary>
public class SentencePieceModelTests
{
    private const string Model = "../realmodel/tok512.model";

    [SharedFixtureFact(Model)]
    public void ATokenizerModelAloneEncodesAsLlama2cAndTransformersDo()
    {
        var reference = Llama2cTokenizer.Read(Fixtures.Shared("../realmodel/tok512.bin"), 512);
        using var tmp = new TempDir();
        string dir = tmp["model"];
        Directory.CreateDirectory(dir);
        File.Copy(Fixtures.Shared(Model), Path.Combine(dir, "tokenizer.model"));
        File.WriteAllText(Path.Combine(dir, "config.json"), """{"model_type": "llama", "vocab_size": 512}""");
        var tokenizer = PretrainedTokenizer.Load(dir);
        string[] texts =
        [
            "", "Once upon a time", "Lily and Ben were playing.\nThe end.", "  two  spaces", "The dog said \"hello\" to the cat!",
            "Zürich 42 ÷ 7 = 6 ☃", "a\tb\r\nc", "don't, won't; can't: 1,234.5",
        ];
        foreach (string text in texts)
        {
            var expected = reference.Encode(text);
            Assert.Equal(expected, tokenizer.Encode(text, addSpecialTokens: true));
            // Decoding drops BOS and the dummy-prefix space (decoder Strip), as run.c prints after BOS.
            Assert.Equal(text, tokenizer.Decode(expected, skipSpecialTokens: true));
        }
        Assert.Equal("</s>", tokenizer.Config.EosToken);
    }

    [SharedFixtureFact(Model)]
    public void AnAdapterFolderWithATokenizerModelGivesTheTokenizerAndTemplateAsVllmDoes()
    {
        // vLLM's get_lora_tokenizer: AutoTokenizer.from_pretrained(lora_path), which converts a tokenizer.model there.
        var reference = Llama2cTokenizer.Read(Fixtures.Shared("../realmodel/tok512.bin"), 512);
        using var tmp = new TempDir();
        string model = tmp["model"], adapter = tmp["adapter"];
        Directory.CreateDirectory(model);
        Directory.CreateDirectory(adapter);
        File.WriteAllText(Path.Combine(model, "config.json"), """{"model_type": "llama", "vocab_size": 512}""");
        File.WriteAllText(Path.Combine(model, "tokenizer.json"), """{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}""");
        File.Copy(Fixtures.Shared(Model), Path.Combine(adapter, "tokenizer.model"));
        File.WriteAllText(Path.Combine(adapter, "chat_template.jinja"), "[{{ messages[0].content }}]");
        var warnings = new List<string>();
        PretrainedTokenizer tokenizer;
        using (Diagnostics.Listen(warnings.Add)) tokenizer = PretrainedTokenizer.Load(model, adapter);
        Assert.True(tokenizer.FromAdapter);
        Assert.Equal(reference.Encode("Lily and Ben"), tokenizer.Encode("Lily and Ben", addSpecialTokens: true));
        Assert.Equal("[Hi]", tokenizer.ApplyChatTemplate([new ChatMessage("user", "Hi")], addGenerationPrompt: true));
        Assert.Single(warnings, w => w.Contains("using the tokenizer and chat template saved with the adapter"));
    }

    [Fact]
    public void AUnigramModelIsRefusedByName()
    {
        using var tmp = new TempDir();
        string dir = tmp["model"];
        Directory.CreateDirectory(dir);
        // ModelProto: three pieces (field 1: piece, score, type) and trainer_spec (field 2) with model_type (field 3) = 1, UNIGRAM.
        var bytes = new List<byte>();
        foreach (string piece in (string[])["<unk>", "<s>", "</s>"])
        {
            var p = new List<byte> { 0x0A, (byte)piece.Length };
            p.AddRange(System.Text.Encoding.ASCII.GetBytes(piece));
            p.AddRange([0x15, 0, 0, 0, 0, 0x18, 3]);
            bytes.AddRange([0x0A, (byte)p.Count, .. p]);
        }
        bytes.AddRange([0x12, 2, 0x18, 1]);
        File.WriteAllBytes(Path.Combine(dir, "tokenizer.model"), [.. bytes]);
        File.WriteAllText(Path.Combine(dir, "config.json"), """{"model_type": "llama"}""");
        var e = Assert.Throws<IrrException>(() => PretrainedTokenizer.Load(dir));
        Assert.Contains("tokenizer.model: a SentencePiece Unigram model", e.Message);
    }

    [Fact]
    public void NeitherFileIsRefusedNamingTokenizerJson()
    {
        using var tmp = new TempDir();
        Directory.CreateDirectory(tmp["model"]);
        var e = Assert.Throws<IrrException>(() => PretrainedTokenizer.Load(tmp["model"]));
        Assert.Contains("no tokenizer.json", e.Message);
    }
}
