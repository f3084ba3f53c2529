using Irr.IO;

namespace Irr.Text;

/// <summary>
/// A Hugging Face <c>tokenizer.json</c> with a <c>BPE</c> model, encoding and decoding exactly as the
/// Rust <c>tokenizers</c> library does: added tokens are matched first (the ones with
/// <c>normalized: false</c> in the raw text, the others in the normalized text), each remaining piece
/// is normalized, pre-tokenized and given to the BPE model, and the post-processor adds BOS/EOS when
/// special tokens are requested. Both families used by Llama-type models are supported: byte-level BPE
/// (Llama-3, Qwen2, GPT-2) and SentencePiece-style BPE with byte fallback (Llama-2, Mistral, TinyLlama).
/// Instances are immutable and safe to use from several threads.
/// </summary>
public sealed class Tokenizer
{
    private readonly BpeModel model;
    private readonly Normalizer? normalizer;
    private readonly PreTokenizer? preTokenizer;
    private readonly SplitRegex? byteLevelWords;
    private readonly Decoder? decoder;
    private readonly AddedTokenMatcher rawMatcher;
    private readonly AddedTokenMatcher normalizedMatcher;
    private readonly Dictionary<string, AddedToken> addedByContent = new(StringComparer.Ordinal);
    private readonly Dictionary<int, AddedToken> addedById = [];

    private Tokenizer(BpeModel model, Normalizer? normalizer, PreTokenizer? preTokenizer, PostProcessor? postProcessor,
        Decoder? decoder, IReadOnlyList<AddedToken> addedTokens)
    {
        this.model = model;
        this.normalizer = normalizer;
        this.preTokenizer = preTokenizer;
        byteLevelWords = preTokenizer?.ByteLevelWordRegex;
        PostProcessor = postProcessor;
        this.decoder = decoder;
        AddedTokens = addedTokens;
        foreach (var t in addedTokens)
        {
            addedByContent.TryAdd(t.Content, t);
            addedById.TryAdd(t.Id, t);
        }
        rawMatcher = new AddedTokenMatcher(addedTokens.Where(t => !t.Normalized).Select(t => (t.Content, t)));
        normalizedMatcher = new AddedTokenMatcher(addedTokens.Where(t => t.Normalized)
            .Select(t => (normalizer?.Normalize(t.Content) ?? t.Content, t)));
    }

    /// <summary>The BPE model.</summary>
    internal BpeModel Model => model;

    /// <summary>The <c>added_tokens</c> of the file, in file order.</summary>
    public IReadOnlyList<AddedToken> AddedTokens { get; }

    internal PostProcessor? PostProcessor { get; }

    /// <summary>The number of ids: the model's vocabulary together with added tokens outside it.</summary>
    public int VocabSize => Math.Max(model.VocabSize, addedById.Count == 0 ? 0 : addedById.Keys.Max() + 1);

    /// <summary>Loads <c>tokenizer.json</c> from <paramref name="path"/>.</summary>
    /// <exception cref="IrrException">The file is missing, is not JSON, or uses something not supported; the message names the JSON path.</exception>
    public static Tokenizer Load(string path)
    {
        if (!File.Exists(path)) throw new IrrException($"{Path.GetFileName(path)}: file not found ({path})");
        return FromJson(JsonFiles.ReadText(path), Path.GetFileName(path));
    }

    /// <summary>Reads a tokenizer from the text of a <c>tokenizer.json</c>; <paramref name="fileName"/> names it in errors.</summary>
    /// <exception cref="IrrException">The JSON is malformed or uses something not supported; the message names the JSON path.</exception>
    public static Tokenizer FromJson(string json, string fileName = "tokenizer.json")
    {
        using var doc = JsonCursor.Parse(json, fileName);
        var root = JsonCursor.Root(doc, fileName);
        var addedTokens = new List<AddedToken>();
        if (root.GetNonNull("added_tokens") is { } added)
        {
            RequireCount(added, MaxVocabSize, "IRR_MAX_VOCAB_SIZE");
            foreach (var t in added.Items())
                addedTokens.Add(new AddedToken(t.Required("content").AsString(), NonNegative(t.Required("id")), t.Bool("special", false),
                    t.Bool("single_word", false), t.Bool("lstrip", false), t.Bool("rstrip", false), t.Bool("normalized", !t.Bool("special", false))));
        }
        return new Tokenizer(ReadModel(root.Required("model")),
            root.GetNonNull("normalizer") is { } n ? Normalizer.FromJson(n) : null,
            root.GetNonNull("pre_tokenizer") is { } p ? PreTokenizer.FromJson(p) : null,
            root.GetNonNull("post_processor") is { } pp ? PostProcessor.FromJson(pp) : null,
            root.GetNonNull("decoder") is { } d ? Decoder.FromJson(d) : null,
            addedTokens);
    }

    /// <summary>
    /// The largest vocabulary irr reads: every token id (of the model's vocab and of added_tokens) is below it, and neither
    /// holds more entries. <c>IRR_MAX_VOCAB_SIZE</c>, 1,048,576 by default: four times Gemma 3's 262,144, the largest
    /// real vocabulary known. Merges may number twice as many (Gemma 3 has 514,906, about two per token).
    /// </summary>
    internal static long MaxVocabSize => Limits.Get("IRR_MAX_VOCAB_SIZE", 1 << 20);

    /// <summary>A token id: an integer from 0 to below <see cref="MaxVocabSize"/> (HF tokenizers' ids are u32; irr keeps tables by id).</summary>
    internal static int TokenId(JsonCursor id)
    {
        if (id.Kind != System.Text.Json.JsonValueKind.Number || !id.Element.TryGetInt64(out long v))
            throw id.Error($"expected an integer, found {id.Describe()}");
        if (v < 0) throw id.Error($"expected a non-negative id, found {id.Describe()}");
        long limit = MaxVocabSize;
        if (v >= limit) throw Limits.Exceeded(id.Where, $"the token id {v:N0}", "IRR_MAX_VOCAB_SIZE", limit);
        return (int)v;
    }

    private static int NonNegative(JsonCursor id) => TokenId(id);

    private static void RequireCount(JsonCursor array, long limit, string variable)
    {
        int count = array.Kind switch
        {
            System.Text.Json.JsonValueKind.Object => array.Element.EnumerateObject().Count(),
            System.Text.Json.JsonValueKind.Array => array.ArrayLength,
            _ => 0, // the reader then says what it expected
        };
        if (count > limit) throw Limits.Exceeded(array.Where, $"the number of entries ({count:N0})", variable, limit);
    }

    private static BpeModel ReadModel(JsonCursor model)
    {
        string type = model.GetNonNull("type")?.AsString() ?? (model.Get("merges") is not null ? "BPE" : "");
        if (type != "BPE")
            throw model.Error($"model type '{type}' is not supported (only BPE)");
        if (model.GetNonNull("dropout") is { } dropout && dropout.AsDouble() != 0)
            throw dropout.Error("BPE dropout makes encoding random and is not supported; set it to null");

        var vocabJson = model.Required("vocab");
        RequireCount(vocabJson, MaxVocabSize, "IRR_MAX_VOCAB_SIZE");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (token, id) in vocabJson.Properties())
            vocab[token] = NonNegative(id);

        var mergesJson = model.Required("merges");
        RequireCount(mergesJson, 2 * MaxVocabSize, "IRR_MAX_VOCAB_SIZE");
        var merges = new List<(string, string)>(mergesJson.ArrayLength);
        foreach (var m in mergesJson.Items()) merges.Add(ReadMerge(m));

        return new BpeModel(vocab, merges, model.String("unk_token"), model.Bool("byte_fallback", false), model.Bool("fuse_unk", false),
            model.Bool("ignore_merges", false), model.String("continuing_subword_prefix"), model.String("end_of_word_suffix"),
            (rank, problem) => new IrrException($"{mergesJson.Where}[{rank}]: {problem}"),
            unk => model.Required("unk_token").Error($"\"{unk}\" is not in the vocabulary"));
    }

    /// <summary>A merge as <c>"a b"</c> (exactly one U+0020; other whitespace such as NBSP is part of tokens) or <c>["a", "b"]</c>.</summary>
    private static (string, string) ReadMerge(JsonCursor m)
    {
        if (m.Kind == System.Text.Json.JsonValueKind.String)
        {
            string s = m.AsString();
            int space = s.IndexOf(' ');
            if (space > 0 && space < s.Length - 1 && s.IndexOf(' ', space + 1) < 0) return (s[..space], s[(space + 1)..]);
        }
        else if (m.Kind == System.Text.Json.JsonValueKind.Array && m.ArrayLength == 2)
        {
            var parts = m.Items().ToArray();
            if (parts[0].Kind == System.Text.Json.JsonValueKind.String && parts[1].Kind == System.Text.Json.JsonValueKind.String)
                return (parts[0].AsString(), parts[1].AsString());
        }
        throw m.Error($"expected \"a b\" or [\"a\",\"b\"], found {m.Describe()}");
    }

    /// <summary>The variable of the longest text <see cref="Encode"/> takes.</summary>
    public const string MaxCharsVariable = "IRR_MAX_TOKENIZE_CHARS";

    /// <summary>
    /// Encodes <paramref name="text"/>. Added tokens in the text (e.g. <c>&lt;s&gt;</c>) are recognised as
    /// their ids. With <paramref name="addSpecialTokens"/> the post-processor adds BOS/EOS, as HF's
    /// <c>encode(text, add_special_tokens=True)</c>.
    /// </summary>
    /// <exception cref="IrrException">The text is longer than <c>IRR_MAX_TOKENIZE_CHARS</c> (8,388,608 characters: encoding takes
    /// about 50 bytes a character, and a prompt or record is far shorter).</exception>
    public int[] Encode(string text, bool addSpecialTokens = false)
    {
        long maxChars = Limits.Get(MaxCharsVariable, 8L << 20);
        if (text.Length > maxChars)
            throw Limits.Exceeded("text to encode", $"its length ({text.Length:N0} characters)", MaxCharsVariable, maxChars);
        using var budget = SplitRegex.BeginText();
        var ids = new List<int>(text.Length / 3 + 4);
        text = ReplaceLoneSurrogates(text);
        var pieces = new List<PreToken>();
        foreach (var (start, end, token) in SplitOnAddedTokens(rawMatcher, text))
        {
            if (token is not null)
            {
                ids.Add(token.Id);
                continue;
            }
            string segment = Slice(text, start, end);
            string normalized = normalizer?.Normalize(segment) ?? segment;
            foreach (var (s, e, t) in SplitOnAddedTokens(normalizedMatcher, normalized))
            {
                if (t is not null)
                {
                    ids.Add(t.Id);
                    continue;
                }
                if (byteLevelWords is not null)
                {
                    EncodeByteLevelWords(normalized.AsSpan(s, e - s), ids);
                    continue;
                }
                pieces.Clear();
                pieces.Add(new PreToken(Slice(normalized, s, e), start == 0 && s == 0));
                preTokenizer?.PreTokenize(pieces);
                foreach (var piece in pieces) model.Tokenize(piece.Text, ids);
            }
        }
        if (addSpecialTokens) PostProcessor?.AddSpecialTokens(ids);
        return ids.ToArray();
    }

    /// <summary>
    /// The byte-level pre-tokenizers' work without strings: each regex match and each gap between
    /// matches is a word, whose UTF-8 bytes, written in the byte-level alphabet, go to the model.
    /// </summary>
    private void EncodeByteLevelWords(ReadOnlySpan<char> text, List<int> ids)
    {
        int prev = 0;
        foreach (var (start, length) in byteLevelWords!.Matches(text))
        {
            if (length == 0) continue;
            if (prev < start) EncodeByteLevelWord(text[prev..start], ids);
            EncodeByteLevelWord(text.Slice(start, length), ids);
            prev = start + length;
        }
        if (prev < text.Length) EncodeByteLevelWord(text[prev..], ids);
    }

    private void EncodeByteLevelWord(ReadOnlySpan<char> word, List<int> ids)
    {
        int max = System.Text.Encoding.UTF8.GetMaxByteCount(word.Length);
        Span<byte> bytes = max <= 512 ? stackalloc byte[max] : new byte[max];
        int n = System.Text.Encoding.UTF8.GetBytes(word, bytes);
        Span<char> chars = n <= 512 ? stackalloc char[n] : new char[n];
        for (int i = 0; i < n; i++) chars[i] = ByteLevelAlphabet.ByteToChar[bytes[i]];
        model.Tokenize(chars[..n], ids);
    }

    private static List<(int Start, int End, AddedToken? Token)> SplitOnAddedTokens(AddedTokenMatcher matcher, string text)
    {
        var split = new List<(int, int, AddedToken?)>(1);
        if (matcher.IsEmpty) split.Add((0, text.Length, null));
        else matcher.Split(text, split);
        return split;
    }

    private static string Slice(string s, int start, int end) => start == 0 && end == s.Length ? s : s[start..end];

    /// <summary>
    /// Decodes ids to text through the decoder, as HF's <c>decode</c>. Special added tokens are kept
    /// unless <paramref name="skipSpecialTokens"/> (transformers' default is to keep them). An id outside the
    /// vocabulary (a padded embedding row: Qwen2's 151,936 rows against 151,665 ids) decodes to "", as HF tokenizers'
    /// <c>decode</c> skips ids it has no token for; a warning says so (<see cref="Diagnostics.Warn"/>).
    /// </summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false) => Decode(ids, skipSpecialTokens, out _);

    /// <summary><see cref="Decode(IEnumerable{int}, bool)"/>, counting the ids outside the vocabulary in <paramref name="unknown"/>.</summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens, out int unknown)
    {
        var tokens = new List<string>();
        unknown = 0;
        foreach (int id in ids)
        {
            if (addedById.TryGetValue(id, out var added))
            {
                if (!(skipSpecialTokens && added.Special)) tokens.Add(added.Content);
                continue;
            }
            if ((id >= 0 ? model.IdToToken(id) : null) is { } token) tokens.Add(token);
            else unknown++;
        }
        if (unknown > 0)
            Diagnostics.Warn($"token ids outside the tokenizer's vocabulary (ids 0 to {VocabSize - 1}) decode to \"\", as in Hugging Face tokenizers " +
                             "(a model whose embedding has more rows than the tokenizer has ids can generate them)");
        return decoder is null ? string.Join(" ", tokens) : string.Concat(decoder.DecodeChain(tokens));
    }

    /// <summary>
    /// The text that <paramref name="continuation"/> adds after <paramref name="prompt"/>: decode(prompt ++ continuation)
    /// minus decode(prompt), as vLLM's incremental detokenizer computes it, so that an answer keeps the leading space its
    /// first token carries (SentencePiece's "▁Once" after a prompt is " Once"; decoded alone the decoder strips it). Where
    /// the prompt's text is not a prefix of the whole (bytes of one character split across the two), the text after the
    /// longest common prefix. <paramref name="unknown"/> counts the continuation's ids outside the vocabulary.
    /// </summary>
    public string DecodeContinuation(IReadOnlyList<int> prompt, IReadOnlyList<int> continuation, bool skipSpecialTokens, out int unknown)
    {
        Decode(continuation, skipSpecialTokens, out unknown);
        if (continuation.Count == 0) return "";
        string before = Decode(prompt, skipSpecialTokens, out _), all = Decode(prompt.Concat(continuation), skipSpecialTokens, out _);
        int common = before.Length <= all.Length && all.StartsWith(before, StringComparison.Ordinal)
            ? before.Length
            : before.AsSpan().CommonPrefixLength(all);
        if (common > 0 && common < all.Length && char.IsHighSurrogate(all[common - 1])) common--;
        return all[common..];
    }

    /// <summary>The id of a token string (an added token or a vocabulary entry), or null.</summary>
    public int? TokenToId(string token) => addedByContent.TryGetValue(token, out var t) ? t.Id : model.TokenToId(token);

    /// <summary>The string of an id (an added token's content or a vocabulary entry), or null.</summary>
    public string? IdToToken(int id) => addedById.TryGetValue(id, out var t) ? t.Content : model.IdToToken(id);

    /// <summary>
    /// Replaces the post-processor by BOS/EOS per transformers' <c>add_bos_token</c>/<c>add_eos_token</c>
    /// (what <c>LlamaTokenizerFast.update_post_processor</c> does).
    /// </summary>
    internal Tokenizer WithBosEosPostProcessor(int? bos, int? eos) =>
        new(model, normalizer, preTokenizer, TemplateProcessing.BosEos(bos, eos), decoder, AddedTokens);

    /// <summary>.NET strings may hold unpaired surrogates, which UTF-8 (and Rust strings) cannot: they become U+FFFD.</summary>
    private static string ReplaceLoneSurrogates(string text)
    {
        if (text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') < 0) return text;
        var chars = text.ToCharArray();
        for (int i = 0; i < chars.Length; i++)
        {
            if (char.IsHighSurrogate(chars[i]) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1])) i++;
            else if (char.IsSurrogate(chars[i])) chars[i] = '\uFFFD';
        }
        return new string(chars);
    }
}
