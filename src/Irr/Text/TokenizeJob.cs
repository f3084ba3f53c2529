using System.Globalization;
using Irr.Jobs;

namespace Irr.Text;

/// <summary>
/// <c>irr tokenize</c>: encode text to ids, or decode ids to text, with a model's tokenizer, exactly as Hugging Face
/// tokenizers does. Its result is the line to print: the ids as a JSON array, or the decoded text.
/// </summary>
[Job("tokenize", Help = "Encode text to token ids, or decode ids to text, exactly as Hugging Face tokenizers does.")]
public sealed record TokenizeJob : IJob<string>
{
    /// <summary>The model directory whose tokenizer is used.</summary>
    [Option("Hugging Face model directory with tokenizer.json and tokenizer_config.json", Required = true, Hub = true, HubTokenizerOnly = true)]
    public string Model { get; init; } = "";

    /// <summary>A PEFT adapter whose tokenizer, when it holds one, is used instead (as vLLM does).</summary>
    [Option("a PEFT adapter directory: its tokenizer and chat template are used when it holds a tokenizer.json, as vLLM does", Hub = true, HubTokenizerOnly = true)]
    public string? Adapter { get; init; }

    /// <summary>Text to encode.</summary>
    [Option("text to encode; the ids are printed as a JSON array")]
    public string? Text { get; init; }

    /// <summary>Ids to decode: "1,2,3", "1 2 3" or "[1, 2, 3]".</summary>
    [Option("ids to decode, separated by commas or spaces (\"1,2,3\" or \"[1, 2, 3]\")")]
    public string? Decode { get; init; }

    /// <summary>Add BOS/EOS as the tokenizer does (transformers' add_special_tokens=True).</summary>
    [Option("add BOS/EOS as the model's tokenizer does (transformers' add_special_tokens=True)")]
    public bool AddSpecialTokens { get; init; }

    /// <summary>When decoding, leave out special tokens.</summary>
    [Option("when decoding, leave out special tokens such as <s> and </s>")]
    public bool SkipSpecialTokens { get; init; }

    /// <inheritdoc/>
    public string Command => "tokenize";

    /// <inheritdoc/>
    public IReadOnlyList<string> Inputs => Provenance.Given(Model, Adapter);

    /// <inheritdoc/>
    public string? Output => null;

    /// <inheritdoc/>
    public void Validate() => Validation.Require((Text is null) != (Decode is null), Command, "give exactly one of text and decode");

    /// <summary>The ids of <see cref="Text"/> as a JSON array, or the text of <see cref="Decode"/>'s ids.</summary>
    /// <exception cref="IrrException">The model has no readable tokenizer, or an id is not a non-negative integer.</exception>
    public string Run(Action<JobProgress>? progress = null)
    {
        Validate();
        var tokenizer = PretrainedTokenizer.Load(Model, Adapter);
        return Text is not null
            ? "[" + string.Join(", ", tokenizer.Encode(Text, AddSpecialTokens).Select(i => i.ToString(CultureInfo.InvariantCulture))) + "]"
            : tokenizer.Decode(ParseIds(Decode!), SkipSpecialTokens);
    }

    /// <summary>"1,2,3", "1 2 3" or "[1, 2, 3]".</summary>
    /// <exception cref="IrrException">A part is not a non-negative integer.</exception>
    public static int[] ParseIds(string s)
    {
        var parts = s.Trim().TrimStart('[').TrimEnd(']').Split([',', ' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries);
        return parts.Select(p => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out int id)
            ? id
            : throw new IrrException($"--decode: '{p}' is not a token id (expected non-negative integers separated by commas)")).ToArray();
    }
}
