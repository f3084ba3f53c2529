using System.Text.Json.Nodes;

namespace Irr.Tests.Text;

/// <summary>
/// Small tokenizer.json files built in the tests, whose encodings can be worked out by hand.
/// </summary>
internal static class TinyVocabularies
{
    /// <summary>The byte-level alphabet written out independently of the library (GPT-2's bytes_to_unicode).</summary>
    public static char ByteChar(int b)
    {
        int n = 0;
        for (int x = 0; x < 256; x++)
        {
            bool printable = (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF);
            if (x == b) return printable ? (char)x : (char)(256 + n);
            if (!printable) n++;
        }
        throw new ArgumentOutOfRangeException(nameof(b));
    }

    /// <summary>
    /// SentencePiece-style (Llama-2 layout): ids 0–2 &lt;unk&gt; &lt;s&gt; &lt;/s&gt;, 3–258 the byte tokens
    /// &lt;0x00&gt;–&lt;0xFF&gt; (so byte b is id 3 + b), then ▁=259 a=260 b=261 c=262 ab=263 ▁a=264 ▁ab=265
    /// bc=266 abc=267 ▁▁=268 中=269. Merges by rank: a b, ▁ a, b c, ▁ ab, ab c, ▁ ▁.
    /// </summary>
    public static JsonObject SentencePiece(bool byteFallback = true, bool fuseUnk = true)
    {
        var vocab = new JsonObject { ["<unk>"] = 0, ["<s>"] = 1, ["</s>"] = 2 };
        for (int b = 0; b < 256; b++) vocab[$"<0x{b:X2}>"] = 3 + b;
        string[] rest = ["▁", "a", "b", "c", "ab", "▁a", "▁ab", "bc", "abc", "▁▁", "中"];
        for (int i = 0; i < rest.Length; i++) vocab[rest[i]] = 259 + i;
        return Llama(vocab, new JsonArray("a b", "▁ a", "b c", "▁ ab", "ab c", "▁ ▁"), byteFallback, fuseUnk);
    }

    /// <summary>
    /// A tokenizer.json of transformers' Llama-2 layout (what its LlamaConverter writes) around a BPE vocabulary and merges
    /// whose ids 0–2 are &lt;unk&gt; &lt;s&gt; &lt;/s&gt;: normalizer Prepend "▁" + Replace " " → "▁", BOS added by the
    /// post-processor, decoder Replace "▁" → " ", ByteFallback, Fuse, Strip one leading space.
    /// </summary>
    public static JsonObject Llama(JsonObject vocab, JsonArray merges, bool byteFallback = true, bool fuseUnk = true)
    {
        return new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(Special(0, "<unk>"), Special(1, "<s>"), Special(2, "</s>")),
            ["normalizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["normalizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Prepend", ["prepend"] = "▁" },
                    new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = " " }, ["content"] = "▁" }),
            },
            ["pre_tokenizer"] = null,
            ["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(
                    new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<s>", ["type_id"] = 0 } },
                    new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } }),
                ["special_tokens"] = new JsonObject { ["<s>"] = new JsonObject { ["id"] = "<s>", ["ids"] = new JsonArray(1), ["tokens"] = new JsonArray("<s>") } },
            },
            ["decoder"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["decoders"] = new JsonArray(
                    new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = "▁" }, ["content"] = " " },
                    new JsonObject { ["type"] = "ByteFallback" },
                    new JsonObject { ["type"] = "Fuse" },
                    new JsonObject { ["type"] = "Strip", ["content"] = " ", ["start"] = 1, ["stop"] = 0 }),
            },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["dropout"] = null,
                ["unk_token"] = "<unk>",
                ["fuse_unk"] = fuseUnk,
                ["byte_fallback"] = byteFallback,
                ["vocab"] = vocab,
                ["merges"] = merges,
            },
        };
    }

    /// <summary>
    /// Byte-level (GPT-2 layout): ids 0–255 are the bytes (id = byte value, spelled in the byte alphabet),
    /// then Ġt=256 he=257 Ġthe=258 ĠĠ=259 and the added special token &lt;|end|&gt;=260.
    /// Merges by rank: Ġ t, h e, Ġt he, Ġ Ġ (given as pairs). Pre-tokenizer ByteLevel with GPT-2's regex.
    /// </summary>
    public static JsonObject ByteLevel()
    {
        var vocab = new JsonObject();
        for (int b = 0; b < 256; b++) vocab[ByteChar(b).ToString()] = b;
        string g = ByteChar(' ').ToString();
        vocab[g + "t"] = 256;
        vocab["he"] = 257;
        vocab[g + "the"] = 258;
        vocab[g + g] = 259;
        return new JsonObject
        {
            ["added_tokens"] = new JsonArray(Special(260, "<|end|>")),
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = true },
            ["post_processor"] = new JsonObject { ["type"] = "ByteLevel" },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel" },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["vocab"] = vocab,
                ["merges"] = new JsonArray(new JsonArray(g, "t"), new JsonArray("h", "e"), new JsonArray(g + "t", "he"), new JsonArray(g, g)),
            },
        };
    }

    private static JsonObject Special(int id, string content) => new()
    {
        ["id"] = id, ["content"] = content, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false, ["special"] = true,
    };
}
