using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;

namespace Irr.Text;

/// <summary>
/// A SentencePiece <c>tokenizer.model</c> (the <c>ModelProto</c> protobuf of sentencepiece_model.proto) turned into the
/// <c>tokenizer.json</c> transformers' <c>LlamaConverter</c> writes from it (convert_slow_tokenizer.py), for a model
/// directory that has the SentencePiece file and no tokenizer.json (AutoTokenizer then converts the slow tokenizer):
/// a BPE with byte fallback and <c>fuse_unk</c>, vocabulary <c>&lt;unk&gt;</c>, <c>&lt;s&gt;</c>, <c>&lt;/s&gt;</c> then the
/// pieces from id 3, merges from <c>SentencePieceExtractor.extract</c> (every split of a piece into two pieces, by the
/// piece's score, highest first, then by the ids of the two halves); the control and unknown pieces as special added
/// tokens, user-defined ones as added tokens (not normalized); legacy (the default): normalizer <c>Prepend("▁")</c> (when
/// <c>add_prefix_space</c>, default true) and <c>Replace(" ", "▁")</c>, no pre-tokenizer; non-legacy: a Metaspace
/// pre-tokenizer (<c>prepend_scheme</c> "first", or "never" without <c>add_prefix_space</c>, <c>split</c> false);
/// decoder Replace("▁", " "), ByteFallback, Fuse, Strip(1 left) when <c>add_prefix_space</c>; no post-processor (the
/// Llama class adds BOS/EOS per add_bos_token/add_eos_token).
/// Only SentencePiece BPE models (<c>trainer_spec.model_type</c> 2) are converted; a Unigram model is refused.
/// </summary>
public static class SentencePieceModel
{
    /// <summary>Converts the <c>tokenizer.model</c> at <paramref name="path"/> to tokenizer.json text.</summary>
    /// <param name="path">The SentencePiece model file.</param>
    /// <param name="legacy">tokenizer_config.json's <c>legacy</c> (transformers' default: true).</param>
    /// <param name="addPrefixSpace">tokenizer_config.json's <c>add_prefix_space</c> (default true).</param>
    /// <exception cref="IrrException">The file is not a SentencePiece model, or is a Unigram model; the message names the file.</exception>
    public static string ToTokenizerJson(string path, bool legacy = true, bool addPrefixSpace = true)
    {
        string name = Path.GetFileName(path);
        var bytes = IO.InputFile.ReadAllBytes(path);
        var pieces = new List<(string Piece, float Score, int Type)>();
        int modelType = 1; // sentencepiece's default, UNIGRAM
        try
        {
            foreach (var (field, wire, value, span) in Fields(bytes))
            {
                if (field == 1 && wire == 2) pieces.Add(ReadPiece(span));
                else if (field == 2 && wire == 2)
                    foreach (var (f, w, v, _) in Fields(span))
                        if (f == 3 && w == 0) modelType = (int)v;
            }
        }
        catch (Exception e) when (e is IndexOutOfRangeException or ArgumentOutOfRangeException or InvalidDataException or DecoderFallbackException)
        {
            throw new IrrException($"{name}: not a SentencePiece model ({e.Message})");
        }
        if (pieces.Count < 3) throw new IrrException($"{name}: not a SentencePiece model (it has {pieces.Count} pieces)");
        if (modelType != 2)
            throw new IrrException($"{name}: a SentencePiece {(modelType == 1 ? "Unigram" : $"type-{modelType}")} model, which irr cannot read (only BPE); save the tokenizer as tokenizer.json (AutoTokenizer.from_pretrained(dir).save_pretrained(dir))");

        // LlamaConverter.vocab: ids 0–2 are <unk>, <s>, </s> whatever the file calls them.
        var names = pieces.Select(p => p.Piece).ToArray();
        names[0] = "<unk>";
        names[1] = "<s>";
        names[2] = "</s>";
        var vocab = new JsonObject();
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < names.Length; i++)
            if (ids.TryAdd(names[i], i)) vocab[names[i]] = i;

        // SentencePieceExtractor.extract with the scores: per piece its splits (by the halves' ids), then all by score, highest first (a stable sort).
        var merges = new List<(float Score, int Order, string Left, string Right)>();
        for (int i = 0; i < names.Length; i++)
        {
            string piece = names[i];
            var local = new List<(int L, int R, string Left, string Right)>();
            for (int k = 1; k < piece.Length; k++)
                if (ids.TryGetValue(piece[..k], out int l) && ids.TryGetValue(piece[k..], out int r)) local.Add((l, r, piece[..k], piece[k..]));
            foreach (var m in local.OrderBy(m => m.L).ThenBy(m => m.R)) merges.Add((i < 3 ? 0f : pieces[i].Score, merges.Count, m.Left, m.Right)); // LlamaConverter.vocab scores ids 0–2 as 0
        }
        var mergeJson = new JsonArray([.. merges.OrderByDescending(m => m.Score).ThenBy(m => m.Order).Select(m => (JsonNode)new JsonArray(m.Left, m.Right))]);

        var added = new JsonArray();
        for (int i = 0; i < pieces.Count; i++)
        {
            int type = pieces[i].Type; // NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4, UNUSED 5, BYTE 6
            if (type is 2 or 3 or 4)
                added.Add(new JsonObject
                {
                    ["id"] = i, ["content"] = names[i], ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
                    ["normalized"] = false, ["special"] = type != 4,
                });
        }
        JsonNode? normalizer = null, preTokenizer = null;
        if (legacy)
        {
            var steps = new JsonArray();
            if (addPrefixSpace) steps.Add(new JsonObject { ["type"] = "Prepend", ["prepend"] = "▁" });
            steps.Add(new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = " " }, ["content"] = "▁" });
            normalizer = new JsonObject { ["type"] = "Sequence", ["normalizers"] = steps };
        }
        else
            preTokenizer = new JsonObject { ["type"] = "Metaspace", ["replacement"] = "▁", ["prepend_scheme"] = addPrefixSpace ? "first" : "never", ["split"] = false };
        var decoders = new JsonArray(
            new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = "▁" }, ["content"] = " " },
            new JsonObject { ["type"] = "ByteFallback" },
            new JsonObject { ["type"] = "Fuse" });
        if (addPrefixSpace) decoders.Add(new JsonObject { ["type"] = "Strip", ["content"] = " ", ["start"] = 1, ["stop"] = 0 });
        return new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = added,
            ["normalizer"] = normalizer,
            ["pre_tokenizer"] = preTokenizer,
            ["post_processor"] = null,
            ["decoder"] = new JsonObject { ["type"] = "Sequence", ["decoders"] = decoders },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = "<unk>", ["fuse_unk"] = true, ["byte_fallback"] = true,
                ["vocab"] = vocab, ["merges"] = mergeJson,
            },
        }.ToJsonString();
    }

    private static (string Piece, float Score, int Type) ReadPiece(ReadOnlyMemory<byte> message)
    {
        string piece = "";
        float score = 0;
        int type = 1; // NORMAL
        foreach (var (f, w, v, span) in Fields(message))
        {
            if (f == 1 && w == 2) piece = new UTF8Encoding(false, true).GetString(span.Span);
            else if (f == 2 && w == 5) score = BitConverter.Int32BitsToSingle((int)v);
            else if (f == 3 && w == 0) type = (int)v;
        }
        return (piece, score, type);
    }

    /// <summary>The protobuf fields of a message: number, wire type, the value (varint or fixed) and the bytes of a length-delimited one.</summary>
    private static IEnumerable<(int Field, int Wire, ulong Value, ReadOnlyMemory<byte> Bytes)> Fields(ReadOnlyMemory<byte> message)
    {
        int at = 0;
        while (at < message.Length)
        {
            ulong key = Varint(message.Span, ref at);
            int field = (int)(key >> 3), wire = (int)(key & 7);
            switch (wire)
            {
                case 0: yield return (field, wire, Varint(message.Span, ref at), default); break;
                case 1: yield return (field, wire, BinaryPrimitives.ReadUInt64LittleEndian(message.Span[at..]), default); at += 8; break;
                case 5: yield return (field, wire, BinaryPrimitives.ReadUInt32LittleEndian(message.Span[at..]), default); at += 4; break;
                case 2:
                    ulong length = Varint(message.Span, ref at);
                    if (length > (ulong)(message.Length - at)) throw new InvalidDataException("a field runs past the end of the file");
                    yield return (field, wire, length, message.Slice(at, (int)length));
                    at += (int)length;
                    break;
                default: throw new InvalidDataException($"wire type {wire} at byte {at}");
            }
        }
    }

    private static ulong Varint(ReadOnlySpan<byte> span, ref int at)
    {
        ulong result = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            byte b = span[at++];
            result |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return result;
        }
        throw new InvalidDataException("a varint longer than 10 bytes");
    }
}
