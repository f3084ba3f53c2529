using Irr.Tests.Text;

namespace Irr.Tests.Cli;

/// <summary><c>irr tokenize</c> and <c>irr chat-format</c> in process, on the TinyLlama model directory of tests/fixtures.</summary>
public class TextCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    private static readonly string Model = Fixtures.TinyLlamaDir;

    [Fact]
    public void TokenizePrintsAJsonArray()
    {
        // sentencepiece reference: "Hello world" → 15043 3186; --add-special-tokens puts <s> = 1 first.
        Assert.Equal((0, "[15043, 3186]\n", ""), Run("tokenize", "--model", Model, "--text", "Hello world"));
        Assert.Equal((0, "[1, 15043, 3186]\n", ""), Run("tokenize", "--model", Model, "--text", "Hello world", "--add-special-tokens"));
    }

    [Fact]
    public void DecodeReversesIt()
    {
        Assert.Equal((0, "<s> Hello world\n", ""), Run("tokenize", "--model", Model, "--decode", "1,15043,3186"));
        Assert.Equal((0, "Hello world\n", ""), Run("tokenize", "--model", Model, "--decode", "[1, 15043, 3186]", "--skip-special-tokens"));
    }

    [Fact]
    public void ChatFormatPrintsTheRenderedPromptExactly()
    {
        var (code, output, _) = Run("chat-format", "--model", Model, "--user", "Hi");
        Assert.Equal(0, code);
        Assert.Equal("<|user|>\nHi</s>\n<|assistant|>\n", output);
    }

    [Fact]
    public void ChatFormatOptions()
    {
        Assert.Equal("<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n", Run("chat-format", "--model", Model, "--user", "Hi", "--system", "Be brief.", "--no-generation-prompt").Out);
        Assert.Equal("<|user|>\nHi</s>\n<|assistant|>\nHello</s>\n", Run("chat-format", "--model", Model, "--user", "Hi", "--assistant", "Hello").Out);
        string llama2 = Run("chat-format", "--model", Model, "--user", "Hi", "--system", "llama2").Out;
        Assert.StartsWith("<|system|>\nYou are a helpful, respectful and honest assistant.", llama2);
        // The ids of "<|user|>\nHi</s>\n<|assistant|>\n", encoded without special tokens added: </s> is recognised as 2.
        var (code, ids, _) = Run("chat-format", "--model", Model, "--user", "Hi", "--ids");
        Assert.Equal(0, code);
        Assert.Equal(Run("tokenize", "--model", Model, "--text", "<|user|>\nHi</s>\n<|assistant|>\n").Out, ids);
        Assert.Contains(", 2, ", ids);
    }

    [Fact]
    public void AMissingDirectoryIsAnInputError()
    {
        var (code, _, error) = Run("tokenize", "--model", "/nowhere/model", "--text", "x");
        Assert.Equal(2, code);
        Assert.Equal("error: /nowhere/model: model directory not found", error.TrimEnd());
    }

    [Fact]
    public void BadIdsAreAnInputErrorAndUnknownIdsDecodeToNothing()
    {
        var (code, _, error) = Run("tokenize", "--model", Model, "--decode", "1,x");
        Assert.Equal(2, code);
        Assert.Equal("error: --decode: 'x' is not a token id (expected non-negative integers separated by commas)", error.TrimEnd());
        // An id outside the vocabulary decodes to "", as in HF tokenizers, with one warning.
        var (unknownCode, output, warning) = Run("tokenize", "--model", Model, "--decode", "99999,99998");
        Assert.Equal(0, unknownCode);
        Assert.Equal("", output.TrimEnd());
        Assert.Single(warning.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("warning: ") && l.Contains("outside the tokenizer's vocabulary"));
    }

    [Fact]
    public void TextAndDecodeAreExclusive()
    {
        // The job's Validate, as every command's option check: one line, exit 2 (issue 25).
        Assert.Equal((2, "", "error: tokenize: give exactly one of text and decode\n"), Run("tokenize", "--model", Model));
        Assert.Equal((2, "", "error: tokenize: give exactly one of text and decode\n"), Run("tokenize", "--model", Model, "--text", "a", "--decode", "1"));
    }

    [Fact]
    public void ATemplateErrorIsAnInputError()
    {
        using var dir = new TinyModelDir(new System.Text.Json.Nodes.JsonObject { ["chat_template"] = "{{ raise_exception('no system messages') }}" });
        var (code, _, error) = Run("chat-format", "--model", dir.Path, "--user", "a");
        Assert.Equal(2, code);
        Assert.Equal("error: chat template (tokenizer_config.json) line 1: the template raised an error: no system messages", error.TrimEnd());
    }
}
