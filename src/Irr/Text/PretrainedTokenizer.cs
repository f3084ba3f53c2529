namespace Irr.Text;

/// <summary>
/// A model directory's tokenizer as transformers' <c>AutoTokenizer</c> sees it: <c>tokenizer.json</c> with
/// <c>tokenizer_config.json</c> (chat template, special tokens, <c>add_bos_token</c>/<c>add_eos_token</c>).
/// Reads nothing else of the directory except <c>chat_template.jinja</c>, which newer transformers
/// versions write instead of a <c>chat_template</c> key.
/// </summary>
public sealed class PretrainedTokenizer
{
    /// <summary>Tokenizer classes of transformers that rebuild the post-processor from <c>add_bos_token</c>/<c>add_eos_token</c>.</summary>
    private static readonly HashSet<string> BosEosClasses =
        ["LlamaTokenizer", "LlamaTokenizerFast", "CodeLlamaTokenizer", "CodeLlamaTokenizerFast", "GemmaTokenizer", "GemmaTokenizerFast"];

    private readonly Dictionary<string, ChatTemplate> parsed = new(StringComparer.Ordinal);

    /// <summary>Wraps a tokenizer and its config.</summary>
    /// <exception cref="IrrException">The config's BOS/EOS token is needed and is not in the vocabulary.</exception>
    public PretrainedTokenizer(Tokenizer tokenizer, TokenizerConfig config, string? extraChatTemplate = null)
    {
        Config = config;
        ExtraChatTemplate = extraChatTemplate;
        if (config.TokenizerClass is { } cls && BosEosClasses.Contains(cls))
        {
            // LlamaTokenizerFast.update_post_processor: BOS unless add_bos_token is false, EOS only if add_eos_token.
            bool addBos = config.AddBosToken ?? true, addEos = config.AddEosToken ?? false;
            int? bos = addBos ? TokenId(tokenizer, config.BosToken, "bos_token", "add_bos_token") : null;
            int? eos = addEos ? TokenId(tokenizer, config.EosToken, "eos_token", "add_eos_token") : null;
            tokenizer = tokenizer.WithBosEosPostProcessor(bos, eos);
        }
        Tokenizer = tokenizer;
    }

    // A copy that formats prompts as raw text (AsRawText).
    private PretrainedTokenizer(PretrainedTokenizer other, bool rawText)
    {
        Tokenizer = other.Tokenizer;
        Config = other.Config;
        ExtraChatTemplate = other.ExtraChatTemplate;
        RawText = rawText;
    }

    /// <summary>
    /// True when prompts are the records' text tokenized as is (<c>--no-chat-template</c>): no chat template, BOS/EOS as
    /// the tokenizer adds them (<c>add_bos_token</c>/<c>add_eos_token</c>, or tokenizer.json's post-processor), as
    /// transformers' <c>tokenizer(text)</c> and vLLM's completions API do. <see cref="ChatPrompt"/> decides by it.
    /// </summary>
    public bool RawText { get; }

    /// <summary>This tokenizer, formatting prompts as raw text when <paramref name="rawText"/> (<see cref="RawText"/>).</summary>
    public PretrainedTokenizer AsRawText(bool rawText = true) => rawText == RawText ? this : new PretrainedTokenizer(this, rawText);

    private static int TokenId(Tokenizer tokenizer, string? token, string key, string flag) =>
        token is null ? throw new IrrException($"tokenizer_config.json: {flag} is true but {key} is not set")
        : tokenizer.TokenToId(token) ?? throw new IrrException($"tokenizer_config.json: {key} \"{token}\" is not in tokenizer.json's vocabulary");

    /// <summary>The tokenizer (with the post-processor transformers would use).</summary>
    public Tokenizer Tokenizer { get; }

    /// <summary>The tokenizer config.</summary>
    public TokenizerConfig Config { get; }

    private string? ExtraChatTemplate { get; }

    /// <summary>Loads <c>tokenizer.json</c> and <c>tokenizer_config.json</c> from a Hugging Face model directory.</summary>
    /// <exception cref="IrrException">The directory or one of the two files is missing or malformed.</exception>
    public static PretrainedTokenizer Load(string modelDir)
    {
        if (!Directory.Exists(modelDir)) throw new IrrException($"{modelDir}: model directory not found");
        string json = Path.Combine(modelDir, "tokenizer.json"), config = Path.Combine(modelDir, "tokenizer_config.json");
        if (!File.Exists(json)) throw new IrrException($"{modelDir}: no tokenizer.json (irr reads Hugging Face fast tokenizers only)");
        if (!File.Exists(config)) throw new IrrException($"{modelDir}: no tokenizer_config.json");
        string jinja = Path.Combine(modelDir, "chat_template.jinja");
        return new PretrainedTokenizer(Tokenizer.Load(json), TokenizerConfig.Load(config), File.Exists(jinja) ? File.ReadAllText(jinja) : null);
    }

    /// <summary>Encodes text; with <paramref name="addSpecialTokens"/> BOS/EOS are added as transformers would.</summary>
    public int[] Encode(string text, bool addSpecialTokens = false) => Tokenizer.Encode(text, addSpecialTokens);

    /// <summary>Decodes ids; an id outside the vocabulary (a padded embedding row) decodes to "" (<see cref="Text.Tokenizer.Decode(IEnumerable{int}, bool)"/>).</summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false) => Tokenizer.Decode(ids, skipSpecialTokens);

    /// <summary>The id of the config's <c>eos_token</c>.</summary>
    /// <exception cref="IrrException">The config has no eos_token, or it is not in the vocabulary.</exception>
    public int EosTokenId => Config.EosToken is { } eos
        ? Tokenizer.TokenToId(eos) ?? throw new IrrException($"tokenizer_config.json: eos_token \"{eos}\" is not in tokenizer.json's vocabulary")
        : throw new IrrException("tokenizer_config.json: no eos_token");

    /// <summary>The chat template (the default one, or the one named), parsed once.</summary>
    /// <exception cref="IrrException">There is no chat template, or it is outside the supported subset.</exception>
    public ChatTemplate GetChatTemplate(string? name = null)
    {
        string key = name ?? "";
        lock (parsed)
        {
            if (parsed.TryGetValue(key, out var t)) return t;
            string source = Config.ChatTemplate(name) ?? (name is null ? ExtraChatTemplate : null)
                ?? throw new IrrException("tokenizer_config.json: no chat_template (and no chat_template.jinja): this model has no chat format " +
                                           "(for a base model, --no-chat-template tokenizes the text as is)");
            return parsed[key] = ChatTemplate.Parse(source, name is null ? "chat template" : $"chat template '{name}'");
        }
    }

    /// <summary>
    /// Renders a conversation with the model's chat template, passing the config's special tokens, as
    /// transformers' <c>apply_chat_template(…, tokenize=False)</c>.
    /// </summary>
    /// <exception cref="IrrException">No template, an unsupported construct, or the template raised an error.</exception>
    public string ApplyChatTemplate(IEnumerable<ChatMessage> messages, bool addGenerationPrompt, string? templateName = null) =>
        GetChatTemplate(templateName).Render(messages, addGenerationPrompt, Config.SpecialTokens);
}
