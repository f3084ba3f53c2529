using System.CommandLine;
using System.Globalization;
using Irr.Text;

namespace Irr.Cli;

/// <summary><c>irr tokenize</c>: encode text to ids (a JSON array) or decode ids to text, with a model's tokenizer.json.</summary>
internal static class TokenizeCommand
{
    internal static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Hugging Face model directory with tokenizer.json and tokenizer_config.json", Required = true };
        var text = new Option<string?>("--text") { Description = "text to encode; the ids are printed as a JSON array" };
        var decode = new Option<string?>("--decode") { Description = "ids to decode, separated by commas or spaces (\"1,2,3\" or \"[1, 2, 3]\")" };
        var addSpecial = new Option<bool>("--add-special-tokens") { Description = "add BOS/EOS as the model's tokenizer does (transformers' add_special_tokens=True)" };
        var skipSpecial = new Option<bool>("--skip-special-tokens") { Description = "when decoding, leave out special tokens such as <s> and </s>" };
        var adapter = new Option<string?>("--adapter") { Description = "a PEFT adapter directory: its tokenizer and chat template are used when it holds a tokenizer.json, as vLLM does" };
        var command = new Command("tokenize", "Encode text to token ids, or decode ids to text, exactly as Hugging Face tokenizers does.")
        {
            model, adapter, text, decode, addSpecial, skipSpecial,
        };
        command.Validators.Add(result =>
        {
            bool hasText = result.GetResult(text) is not null, hasDecode = result.GetResult(decode) is not null;
            if (hasText == hasDecode) result.AddError("give exactly one of --text and --decode");
        });
        command.SetAction(parseResult =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var tokenizer = PretrainedTokenizer.Load(parseResult.GetValue(model)!, parseResult.GetValue(adapter));
            if (parseResult.GetValue(text) is { } t)
            {
                var ids = tokenizer.Encode(t, parseResult.GetValue(addSpecial));
                output.WriteLine("[" + string.Join(", ", ids.Select(i => i.ToString(CultureInfo.InvariantCulture))) + "]");
            }
            else output.WriteLine(tokenizer.Decode(ParseIds(parseResult.GetValue(decode)!), parseResult.GetValue(skipSpecial)));
            return 0;
        });
        return command;
    }

    /// <summary>"1,2,3", "1 2 3" or "[1, 2, 3]".</summary>
    internal static int[] ParseIds(string s)
    {
        var parts = s.Trim().TrimStart('[').TrimEnd(']').Split([',', ' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries);
        return parts.Select(p => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out int id)
            ? id
            : throw new IrrException($"--decode: '{p}' is not a token id (expected non-negative integers separated by commas)")).ToArray();
    }
}
