using System.Text.Json;
using Irr.IO;

namespace Irr.Text;

/// <summary>
/// The parts of transformers' <c>tokenizer_config.json</c> that formatting needs: the chat template(s),
/// the special tokens (strings or AddedToken objects), <c>add_bos_token</c>/<c>add_eos_token</c> and the
/// tokenizer class.
/// </summary>
public sealed class TokenizerConfig
{
    /// <summary>The special-token keys of the config that are passed to chat templates.</summary>
    private static readonly string[] SpecialTokenKeys = ["bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token"];

    private readonly Dictionary<string, string> templates;

    private TokenizerConfig(Dictionary<string, string> templates, Dictionary<string, string?> specialTokens, bool? addBos, bool? addEos, string? tokenizerClass)
    {
        this.templates = templates;
        SpecialTokens = specialTokens;
        AddBosToken = addBos;
        AddEosToken = addEos;
        TokenizerClass = tokenizerClass;
    }

    /// <summary>Special tokens by key (<c>bos_token</c>, <c>eos_token</c> …); a key set to null in the file maps to null, an absent one is missing.</summary>
    public IReadOnlyDictionary<string, string?> SpecialTokens { get; }

    /// <summary>The beginning-of-sequence token, or null.</summary>
    public string? BosToken => SpecialTokens.GetValueOrDefault("bos_token");

    /// <summary>The end-of-sequence token, or null.</summary>
    public string? EosToken => SpecialTokens.GetValueOrDefault("eos_token");

    /// <summary><c>add_bos_token</c>, when the file sets it.</summary>
    public bool? AddBosToken { get; }

    /// <summary><c>add_eos_token</c>, when the file sets it.</summary>
    public bool? AddEosToken { get; }

    /// <summary><c>tokenizer_class</c>, e.g. "LlamaTokenizer".</summary>
    public string? TokenizerClass { get; }

    /// <summary>The <c>chat_template</c> key's templates by name ("default" for a single string template); empty when there is none.</summary>
    public IReadOnlyDictionary<string, string> ChatTemplates => templates;

    /// <summary>
    /// The chat template called <paramref name="name"/>, or the default one when null (a single
    /// template, or the one named "default" in a list), or null when there is none.
    /// </summary>
    /// <exception cref="IrrException">A name was given and there is no template of that name.</exception>
    public string? ChatTemplate(string? name = null)
    {
        if (templates.TryGetValue(name ?? "default", out var t)) return t;
        if (name is null) return null;
        throw new IrrException($"tokenizer_config.json: no chat template named '{name}' (there are: {(templates.Count == 0 ? "none" : string.Join(", ", templates.Keys))})");
    }

    /// <summary>
    /// The tokenizer class transformers' <c>AutoTokenizer</c> picks for a model type when tokenizer_config.json names
    /// none (<c>TOKENIZER_MAPPING_NAMES</c> in models/auto/tokenization_auto.py), for the families irr reads.
    /// </summary>
    private static readonly Dictionary<string, string> ClassOfModelType = new(StringComparer.Ordinal)
    {
        ["llama"] = "LlamaTokenizerFast", ["mistral"] = "LlamaTokenizerFast", ["mixtral"] = "LlamaTokenizerFast", ["phi3"] = "LlamaTokenizerFast",
        ["gemma"] = "GemmaTokenizerFast", ["gemma2"] = "GemmaTokenizerFast", ["gemma3"] = "GemmaTokenizerFast", ["gemma3_text"] = "GemmaTokenizerFast",
        ["qwen2"] = "Qwen2TokenizerFast", ["qwen3"] = "Qwen2TokenizerFast",
    };

    /// <summary>The special tokens a tokenizer class's <c>__init__</c> defaults to (LlamaTokenizerFast, GemmaTokenizerFast, Qwen2TokenizerFast).</summary>
    private static readonly Dictionary<string, (string Key, string Token)[]> ClassDefaults = new(StringComparer.Ordinal)
    {
        ["LlamaTokenizerFast"] = [("bos_token", "<s>"), ("eos_token", "</s>"), ("unk_token", "<unk>")],
        ["GemmaTokenizerFast"] = [("bos_token", "<bos>"), ("eos_token", "<eos>"), ("unk_token", "<unk>"), ("pad_token", "<pad>")],
        ["Qwen2TokenizerFast"] = [("eos_token", "<|endoftext|>"), ("unk_token", "<|endoftext|>"), ("pad_token", "<|endoftext|>")],
    };

    /// <summary>
    /// This config as transformers' <c>AutoTokenizer</c> completes it: without <c>tokenizer_class</c>, the class
    /// config.json names (<c>tokenizer_class</c>) or the one of its <c>model_type</c>; the special tokens the class
    /// defaults to (its <c>__init__</c>'s <c>bos_token="&lt;s&gt;"</c> …), where the file sets none and the vocabulary
    /// has them (<paramref name="inVocabulary"/>).
    /// </summary>
    /// <param name="configClass">config.json's <c>tokenizer_class</c>, or null.</param>
    /// <param name="modelType">config.json's <c>model_type</c>, or null.</param>
    /// <param name="inVocabulary">Whether a token is in tokenizer.json's vocabulary.</param>
    public TokenizerConfig WithClassDefaults(string? configClass, string? modelType, Func<string, bool> inVocabulary)
    {
        string? cls = TokenizerClass ?? configClass ?? (modelType is null ? null : ClassOfModelType.GetValueOrDefault(modelType));
        if (cls is null) return this;
        var specials = new Dictionary<string, string?>(SpecialTokens, StringComparer.Ordinal);
        string key = cls.EndsWith("Fast", StringComparison.Ordinal) ? cls : cls + "Fast";
        foreach (var (name, token) in ClassDefaults.GetValueOrDefault(key) ?? [])
            if (!specials.ContainsKey(name) && inVocabulary(token)) specials[name] = token;
        // A class whose BOS the vocabulary lacks (transformers would add the token as a new id, which the model has no
        // row for): tokenizer.json's own post-processor decides, as before.
        if (TokenizerClass is null && AddBosToken is null && key is "LlamaTokenizerFast" or "GemmaTokenizerFast" && specials.GetValueOrDefault("bos_token") is null)
            return new TokenizerConfig(templates, specials, AddBosToken, AddEosToken, null);
        return new TokenizerConfig(templates, specials, AddBosToken, AddEosToken, cls);
    }

    /// <summary>An empty config: what a directory without tokenizer_config.json has (transformers then uses the class defaults).</summary>
    public static TokenizerConfig Empty => new([], [], null, null, null);

    /// <summary>Reads a <c>tokenizer_config.json</c> file.</summary>
    /// <exception cref="IrrException">The file is missing or malformed; the message names the key.</exception>
    public static TokenizerConfig Load(string path)
    {
        if (!File.Exists(path)) throw new IrrException($"{Path.GetFileName(path)}: file not found ({path})");
        return FromJson(IO.InputFile.ReadAllText(path), Path.GetFileName(path));
    }

    /// <summary>Reads the text of a <c>tokenizer_config.json</c>.</summary>
    /// <exception cref="IrrException">The JSON is malformed; the message names the key.</exception>
    public static TokenizerConfig FromJson(string json, string fileName = "tokenizer_config.json")
    {
        using var doc = JsonCursor.Parse(json, fileName);
        var root = JsonCursor.Root(doc, fileName);
        if (root.Kind != JsonValueKind.Object) throw root.Error($"expected an object, found {root.Describe()}");

        var templates = new Dictionary<string, string>(StringComparer.Ordinal);
        if (root.GetNonNull("chat_template") is { } ct)
        {
            if (ct.Kind == JsonValueKind.String) templates["default"] = ct.AsString();
            else if (ct.Kind == JsonValueKind.Array)
                foreach (var item in ct.Items()) templates[item.Required("name").AsString()] = item.Required("template").AsString();
            else throw ct.Error($"expected a string or a list of {{name, template}}, found {ct.Describe()}");
        }

        var specials = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var key in SpecialTokenKeys)
            if (root.Get(key) is { } value) specials[key] = TokenContent(value);

        return new TokenizerConfig(templates, specials,
            root.GetNonNull("add_bos_token") is { } b ? b.AsBool() : null,
            root.GetNonNull("add_eos_token") is { } e ? e.AsBool() : null,
            root.String("tokenizer_class"));
    }

    /// <summary>A special token given as a string, as an AddedToken object (<c>{"content": …}</c>), or null.</summary>
    private static string? TokenContent(JsonCursor value) => value.Kind switch
    {
        JsonValueKind.Null => null,
        JsonValueKind.String => value.AsString(),
        JsonValueKind.Object => value.Required("content").AsString(),
        _ => throw value.Error($"expected a string or an AddedToken object, found {value.Describe()}"),
    };
}
