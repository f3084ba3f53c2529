namespace Irr.Jobs;

/// <summary>Help texts that several jobs' options share (<see cref="OptionAttribute.Help"/>).</summary>
public static class OptionHelp
{
    /// <summary>The containers every data option takes (docs/formats.md, "Data files").</summary>
    public const string DataFormats = "JSON array, JSONL, CSV with a header row, or parquet (docs/formats.md, \"Data files\")";

    /// <summary>What a prompt file holds.</summary>
    public const string PromptFormats = "strings or records with a prompt, instruction (+ input), question, goal or behavior field; " +
        "JSON array, JSONL, CSV with a header row, parquet, or a CatQA tree {category: {subcategory: [questions]}} (docs/formats.md, \"Data files\")";

    /// <summary>What a training-style data file holds.</summary>
    public const string Records = "records with a prompt (or instruction + input, question …) and an output or response; " + DataFormats;

    /// <summary>--model of the commands that load a model.</summary>
    public const string Model = "Hugging Face model directory (config.json, *.safetensors or pytorch_model*.bin, tokenizer files)";

    /// <summary>--adapter of the commands that load a model.</summary>
    public const string Adapter = "PEFT LoRA adapter directory to merge into --model on the fly";

    /// <summary>What the help adds to an option that takes a Hub repo (<see cref="OptionAttribute.Hub"/>).</summary>
    public const string HubRepo = " (or a Hub repo org/name[@revision], from the cache or downloaded)";

    /// <summary>What the help adds to an option that takes a Hub file (<see cref="OptionAttribute.HubFile"/>).</summary>
    public const string HubFile = " (or a Hub file hf://datasets/org/name[@revision]/path/in/repo)";

    /// <summary>--system-prompt.</summary>
    public const string SystemPrompt = "none, llama2 (the Llama-2 default system prompt) or literal text";

    /// <summary>--no-chat-template.</summary>
    public const string NoChatTemplate = "tokenize the text as is, without the chat template (base models, completion-style data): BOS as the tokenizer adds it " +
                                         "(add_bos_token); a prompt→answer record is prompt + answer concatenated (docs/text.md, \"Raw text\")";

    /// <summary>--overwrite, the one output policy: an existing output is refused unless it is given.</summary>
    public const string Overwrite = "replace the output if it exists (without it, an existing output is refused)";
}
