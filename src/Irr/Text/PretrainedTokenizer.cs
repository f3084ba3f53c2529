namespace Irr.Text;

/// <summary>
/// A model directory's tokenizer as transformers' <c>AutoTokenizer</c> sees it: <c>tokenizer.json</c> with
/// <c>tokenizer_config.json</c> (special tokens, <c>add_bos_token</c>/<c>add_eos_token</c>) and the chat templates in
/// transformers' order (<see cref="TokenizerSource"/>): <c>chat_template.jinja</c> and
/// <c>additional_chat_templates/*.jinja</c>, else the config's <c>chat_template</c>, else <c>chat_template.json</c>.
/// </summary>
public sealed class PretrainedTokenizer
{
    /// <summary>Tokenizer classes of transformers that rebuild the post-processor from <c>add_bos_token</c>/<c>add_eos_token</c>.</summary>
    private static readonly HashSet<string> BosEosClasses =
        ["LlamaTokenizer", "LlamaTokenizerFast", "CodeLlamaTokenizer", "CodeLlamaTokenizerFast", "GemmaTokenizer", "GemmaTokenizerFast"];

    private readonly Dictionary<string, ChatTemplate> parsed = new(StringComparer.Ordinal);
    private readonly IReadOnlyDictionary<string, string> templates;
    private readonly string templateSource;

    /// <summary>
    /// Wraps a tokenizer and its config; <paramref name="chatTemplateFile"/> is the text of a <c>chat_template.jinja</c>,
    /// which takes precedence over the config's <c>chat_template</c> as in transformers.
    /// </summary>
    /// <exception cref="IrrException">The config's BOS/EOS token is needed and is not in the vocabulary.</exception>
    public PretrainedTokenizer(Tokenizer tokenizer, TokenizerConfig config, string? chatTemplateFile = null)
        : this(tokenizer, config, chatTemplateFile is null
            ? (config.ChatTemplates, "tokenizer_config.json")
            : (new Dictionary<string, string>(StringComparer.Ordinal) { ["default"] = chatTemplateFile }, TokenizerSource.ChatTemplateFile))
    {
    }

    private PretrainedTokenizer(Tokenizer tokenizer, TokenizerConfig config, (IReadOnlyDictionary<string, string> Templates, string Source) chatTemplates)
    {
        Config = config;
        (templates, templateSource) = chatTemplates;
        if (config.TokenizerClass is { } cls && BosEosClasses.Contains(cls))
        {
            // LlamaTokenizerFast.update_post_processor: BOS unless add_bos_token is false, EOS only if add_eos_token.
            bool addBos = config.AddBosToken ?? true, addEos = config.AddEosToken ?? false;
            // add_bos_token by default only where there is a BOS: a class inferred from config.json's model_type (no
            // tokenizer_config.json) over a vocabulary without the class's "<s>" (a byte-level tokenizer) adds none.
            int? bos = addBos && (config.AddBosToken is not null || config.BosToken is not null) ? TokenId(tokenizer, config.BosToken, "bos_token", "add_bos_token") : null;
            int? eos = addEos ? TokenId(tokenizer, config.EosToken, "eos_token", "add_eos_token") : null;
            tokenizer = tokenizer.WithBosEosPostProcessor(bos, eos);
        }
        Tokenizer = tokenizer;
    }

    // A copy that formats prompts as raw text (AsRawText) or with other template arguments (WithTemplateArgs); parsed templates are shared.
    private PretrainedTokenizer(PretrainedTokenizer other, bool rawText, TemplateArgs args)
    {
        Tokenizer = other.Tokenizer;
        Config = other.Config;
        (templates, templateSource, parsed) = (other.templates, other.templateSource, other.parsed);
        Directory = other.Directory;
        FromAdapter = other.FromAdapter;
        RawText = rawText;
        TemplateArgs = args;
    }

    /// <summary>
    /// True when prompts are the records' text tokenized as is (<c>--no-chat-template</c>): no chat template, BOS/EOS as
    /// the tokenizer adds them (<c>add_bos_token</c>/<c>add_eos_token</c>, or tokenizer.json's post-processor), as
    /// transformers' <c>tokenizer(text)</c> and vLLM's completions API do. <see cref="ChatPrompt"/> decides by it.
    /// </summary>
    public bool RawText { get; }

    /// <summary>This tokenizer, formatting prompts as raw text when <paramref name="rawText"/> (<see cref="RawText"/>).</summary>
    public PretrainedTokenizer AsRawText(bool rawText = true) => rawText == RawText ? this : new PretrainedTokenizer(this, rawText, TemplateArgs);

    /// <summary>
    /// The extra variables every rendering of the chat template gets (<c>--template-arg</c>, transformers'
    /// <c>apply_chat_template(**kwargs)</c>); a serving engine's chat API gets them as vLLM's <c>chat_template_kwargs</c>.
    /// </summary>
    public TemplateArgs TemplateArgs { get; } = TemplateArgs.None;

    /// <summary>This tokenizer, rendering its chat template with <paramref name="args"/> (<see cref="TemplateArgs"/>).</summary>
    public PretrainedTokenizer WithTemplateArgs(TemplateArgs args) => new(this, RawText, args);

    private static int TokenId(Tokenizer tokenizer, string? token, string key, string flag) =>
        token is null ? throw new IrrException($"tokenizer_config.json: {flag} is true but {key} is not set")
        : tokenizer.TokenToId(token) ?? throw new IrrException($"tokenizer_config.json: {key} \"{token}\" is not in tokenizer.json's vocabulary");

    /// <summary>The tokenizer (with the post-processor transformers would use).</summary>
    public Tokenizer Tokenizer { get; }

    /// <summary>The tokenizer config.</summary>
    public TokenizerConfig Config { get; }

    /// <summary>The directory the tokenizer was loaded from, or null when it was built in memory.</summary>
    public string? Directory { get; private init; }

    /// <summary>Whether the tokenizer is the one saved in an adapter folder (<see cref="TokenizerSource.Directory"/>).</summary>
    public bool FromAdapter { get; private init; }

    /// <summary>The names of the chat templates ("default" for the unnamed one), from the files transformers reads.</summary>
    public IReadOnlyCollection<string> ChatTemplateNames => templates.Keys.ToList();

    /// <summary>
    /// Loads the tokenizer of a Hugging Face model directory, or of the adapter folder <paramref name="adapterDir"/> when
    /// it holds one (<see cref="TokenizerSource.Directory"/>): <c>tokenizer.json</c>, <c>tokenizer_config.json</c> and the
    /// chat templates.
    /// </summary>
    /// <exception cref="IrrException">The directory or tokenizer.json is missing, or a file is malformed.</exception>
    public static PretrainedTokenizer Load(string modelDir, string? adapterDir = null)
    {
        string dir = TokenizerSource.Directory(modelDir, adapterDir);
        if (!System.IO.Directory.Exists(dir)) throw new IrrException($"{dir}: model directory not found");
        string json = Path.Combine(dir, "tokenizer.json"), config = Path.Combine(dir, "tokenizer_config.json");
        // As AutoTokenizer: tokenizer_config.json may be absent (its defaults then), and without tokenizer_class the class
        // is config.json's tokenizer_class or that of its model_type (the model directory's config.json, also for an adapter's tokenizer).
        var (configClass, modelType) = ModelConfigClass(dir, modelDir);
        var tokenizer = File.Exists(json) ? Tokenizer.Load(json) : FromSentencePiece(dir, config, configClass, modelType);
        var tokenizerConfig = (File.Exists(config) ? TokenizerConfig.Load(config) : TokenizerConfig.Empty)
            .WithClassDefaults(configClass, modelType, token => tokenizer.TokenToId(token) is not null);
        return new PretrainedTokenizer(tokenizer, tokenizerConfig, TokenizerSource.ChatTemplates(dir, tokenizerConfig))
        {
            Directory = dir,
            FromAdapter = dir != modelDir,
        };
    }

    /// <summary>
    /// A directory with a SentencePiece <c>tokenizer.model</c> and no tokenizer.json, of a Llama tokenizer class: the fast
    /// tokenizer transformers' <c>LlamaConverter</c> builds from it (<see cref="SentencePieceModel"/>), with
    /// tokenizer_config.json's <c>legacy</c> and <c>add_prefix_space</c> (both default true).
    /// </summary>
    private static Tokenizer FromSentencePiece(string dir, string configPath, string? configClass, string? modelType)
    {
        string model = Path.Combine(dir, "tokenizer.model");
        if (!File.Exists(model)) throw new IrrException($"{dir}: no tokenizer.json (irr reads Hugging Face fast tokenizers, and Llama SentencePiece tokenizer.model files)");
        bool legacy = true, addPrefixSpace = true;
        string? cls = null;
        if (File.Exists(configPath))
        {
            using var doc = IO.JsonCursor.Parse(IO.JsonFiles.ReadText(configPath), configPath);
            var root = IO.JsonCursor.Root(doc, Path.GetFileName(configPath));
            if (root.Kind == System.Text.Json.JsonValueKind.Object)
            {
                legacy = root.Bool("legacy", true);
                addPrefixSpace = root.Bool("add_prefix_space", true);
                cls = root.String("tokenizer_class");
            }
        }
        cls ??= configClass ?? (modelType is "llama" or "mistral" or "mixtral" ? "LlamaTokenizer" : null);
        if (cls is null || !(cls.StartsWith("LlamaTokenizer", StringComparison.Ordinal) || cls.StartsWith("CodeLlamaTokenizer", StringComparison.Ordinal)))
            throw new IrrException($"{dir}: no tokenizer.json, and its tokenizer.model is of class {cls ?? "(none)"}: irr converts only Llama SentencePiece models; save the tokenizer as tokenizer.json (AutoTokenizer.from_pretrained(dir).save_pretrained(dir))");
        return Tokenizer.FromJson(SentencePieceModel.ToTokenizerJson(model, legacy, addPrefixSpace), "tokenizer.model");
    }

    /// <summary>config.json's <c>tokenizer_class</c> and <c>model_type</c> (of the tokenizer's folder, else the model's), or nulls.</summary>
    private static (string? Class, string? ModelType) ModelConfigClass(string dir, string modelDir)
    {
        foreach (string d in (string[])[dir, modelDir])
        {
            string path = Path.Combine(d, "config.json");
            if (!File.Exists(path)) continue;
            using var doc = IO.JsonCursor.Parse(IO.JsonFiles.ReadText(path), path);
            var root = IO.JsonCursor.Root(doc, path);
            if (root.Kind != System.Text.Json.JsonValueKind.Object) return (null, null);
            return (root.String("tokenizer_class"), root.String("model_type"));
        }
        return (null, null);
    }

    /// <summary>
    /// Refuses a tokenizer saved with an adapter whose ids run past the model's embedding rows (an adapter trained with
    /// added tokens whose resized embedding is not in the adapter); a tokenizer with fewer ids than rows (a padded
    /// vocabulary) is fine.
    /// </summary>
    /// <param name="embeddingRows">The rows of the model's embedding (config.json's <c>vocab_size</c>), with the adapter merged.</param>
    /// <param name="modelDir">The model directory, for the message.</param>
    /// <exception cref="IrrException">The adapter's tokenizer has more ids than the model has rows; the message names both.</exception>
    public void RequireFits(int embeddingRows, string modelDir)
    {
        if (FromAdapter && Tokenizer.VocabSize > embeddingRows)
            throw new IrrException($"{Path.Combine(Directory!, "tokenizer.json")}: the adapter's tokenizer has {Tokenizer.VocabSize} ids (0 to {Tokenizer.VocabSize - 1}), " +
                                   $"but {modelDir} with the adapter has {embeddingRows} embedding rows (config.json vocab_size): the adapter was trained with tokens the model has no rows for " +
                                   "(save the resized embed_tokens and lm_head with the adapter, modules_to_save)");
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

    /// <summary>
    /// The chat template (the default one, or the one named), parsed once. As transformers' <c>get_chat_template</c>:
    /// without a name, the template named "default"; several templates and none named "default" is an error that lists
    /// them ("Available template names are ['rag', 'tool_use']").
    /// </summary>
    /// <exception cref="IrrException">There is no chat template (of that name), or it is outside the supported subset.</exception>
    public ChatTemplate GetChatTemplate(string? name = null)
    {
        string key = name ?? "";
        lock (parsed)
        {
            if (parsed.TryGetValue(key, out var t)) return t;
            if (templates.Count == 0)
                throw new IrrException("tokenizer_config.json: no chat_template (and no chat_template.jinja): this model has no chat format " +
                                       "(for a base model, --no-chat-template tokenizes the text as is)");
            if (!templates.TryGetValue(name ?? "default", out string? source))
                throw new IrrException(name is null
                    ? $"{templateSource}: multiple chat templates with no default specified; pick one by name (irr chat-format --template NAME). " +
                      $"Available template names are {TokenizerSource.NameList(templates.Keys)}."
                    : $"{templateSource}: the specified chat template '{name}' is not available. Available template names are {TokenizerSource.NameList(templates.Keys)}.");
            return parsed[key] = ChatTemplate.Parse(source, name is null ? $"chat template ({TemplateFile(name)})" : $"chat template '{name}' ({TemplateFile(name)})");
        }
    }

    /// <summary>The file a template came from, for its messages: chat_template.jinja, additional_chat_templates/NAME.jinja, tokenizer_config.json, chat_template.json.</summary>
    private string TemplateFile(string? name) =>
        templateSource.Contains(TokenizerSource.ChatTemplateDir, StringComparison.Ordinal)
        && ((name ?? "default") != "default" || !templateSource.StartsWith(TokenizerSource.ChatTemplateFile, StringComparison.Ordinal))
            ? $"{TokenizerSource.ChatTemplateDir}/{name ?? "default"}.jinja"
            : templateSource.StartsWith(TokenizerSource.ChatTemplateFile, StringComparison.Ordinal) ? TokenizerSource.ChatTemplateFile : templateSource;

    /// <summary>
    /// Renders a conversation with the model's chat template, passing the config's special tokens and
    /// <see cref="TemplateArgs"/>, as transformers' <c>apply_chat_template(…, tokenize=False, **kwargs)</c>.
    /// </summary>
    /// <exception cref="IrrException">No template, an unsupported construct, or the template raised an error.</exception>
    public string ApplyChatTemplate(IEnumerable<ChatMessage> messages, bool addGenerationPrompt, string? templateName = null) =>
        GetChatTemplate(templateName).Render(messages, addGenerationPrompt, Config.SpecialTokens, args: TemplateArgs);
}
