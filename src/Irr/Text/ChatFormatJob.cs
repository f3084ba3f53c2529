using Irr.Jobs;

namespace Irr.Text;

/// <summary>
/// <c>irr chat-format</c>: the prompt a model's chat template makes of a conversation, as transformers'
/// <c>apply_chat_template</c> renders it (add_generation_prompt=True unless an assistant reply is given or it is turned off).
/// </summary>
[Job("chat-format", Help = "Print the prompt the model's chat template makes of a conversation (add_generation_prompt=True by default). " +
                           "The text is printed exactly, without a newline added.")]
public sealed record ChatFormatJob : IJob<ChatFormatResult>
{
    /// <summary>The model directory whose tokenizer and chat template are used.</summary>
    [Option("Hugging Face model directory with tokenizer.json and tokenizer_config.json", Required = true, Hub = true, HubTokenizerOnly = true)]
    public string Model { get; init; } = "";

    /// <summary>A PEFT adapter whose tokenizer and template, when it holds a tokenizer, are used instead (as vLLM does).</summary>
    [Option("a PEFT adapter directory: its tokenizer and chat template are used when it holds a tokenizer.json, as vLLM does", Hub = true, HubTokenizerOnly = true)]
    public string? Adapter { get; init; }

    /// <summary>The user message.</summary>
    [Option("the user message", Required = true)]
    public string User { get; init; } = "";

    /// <summary>The system prompt: none, llama2 or the text itself.</summary>
    [Option("system prompt: none, llama2 (the Llama-2 default system prompt) or the text itself")]
    public string System { get; init; } = "none";

    /// <summary>An assistant reply after the user message (then no generation prompt is added).</summary>
    [Option("an assistant reply after the user message (then no generation prompt is added)")]
    public string? Assistant { get; init; }

    /// <summary>Do not end with the header that opens the assistant's turn.</summary>
    [Option("do not end with the header that opens the assistant's turn")]
    public bool NoGenerationPrompt { get; init; }

    /// <summary>Which of the model's named chat templates to use.</summary>
    [Option("which chat template to use when the model has several (by name: additional_chat_templates/NAME.jinja or a named chat_template in tokenizer_config.json)")]
    public string? Template { get; init; }

    /// <summary>The chat template's extra variables (<c>--template-arg KEY=VALUE</c>).</summary>
    [Options]
    public ChatTemplateOptions Chat { get; init; } = new();

    /// <summary>Give the token ids of the rendered prompt instead of its text.</summary>
    [Option("print the token ids of the rendered prompt (a JSON array) instead of the text")]
    public bool Ids { get; init; }

    /// <inheritdoc/>
    public string Command => "chat-format";

    /// <inheritdoc/>
    public IReadOnlyList<string> Inputs => Provenance.Given(Model, Adapter);

    /// <inheritdoc/>
    public string? Output => null;

    /// <inheritdoc/>
    public void Validate() { }

    /// <summary>The rendered prompt, and its ids with <see cref="Ids"/>.</summary>
    /// <exception cref="IrrException">The model has no readable tokenizer or template, or the template raised an error.</exception>
    public ChatFormatResult Run(Action<JobProgress>? progress = null)
    {
        var tokenizer = PretrainedTokenizer.Load(Model, Adapter).WithTemplateArgs(Chat.Args);
        var messages = new List<ChatMessage>();
        if (SystemPrompt.Resolve(System) is { } system) messages.Add(new ChatMessage("system", system));
        messages.Add(new ChatMessage("user", User));
        if (Assistant is not null) messages.Add(new ChatMessage("assistant", Assistant));
        string prompt = tokenizer.ApplyChatTemplate(messages, Assistant is null && !NoGenerationPrompt, Template);
        return new ChatFormatResult(prompt, Ids ? tokenizer.Encode(prompt) : null);
    }
}

/// <summary>What <see cref="ChatFormatJob"/> renders.</summary>
/// <param name="Prompt">The prompt text, exactly.</param>
/// <param name="Ids">Its token ids (without special tokens added), when asked for.</param>
public sealed record ChatFormatResult(string Prompt, IReadOnlyList<int>? Ids);
