using Irr.IO;

namespace Irr.Text;

/// <summary>
/// A <c>post_processor</c> of <c>tokenizer.json</c>: adds the special tokens (BOS/EOS) around an encoded
/// sequence when special tokens are requested. Only single sequences are encoded here.
/// </summary>
internal abstract class PostProcessor
{
    public abstract void AddSpecialTokens(List<int> ids);

    public static PostProcessor? FromJson(JsonCursor json)
    {
        if (json.IsNull) return null;
        string type = json.Required("type").AsString();
        return type switch
        {
            "TemplateProcessing" => TemplateProcessing.Read(json),
            "ByteLevel" => new ByteLevelPostProcessor(),
            "Sequence" => new SequencePostProcessor(json.Required("processors").Items().Select(p => FromJson(p)).OfType<PostProcessor>().ToArray()),
            _ => throw json.Required("type").Error($"unsupported post_processor type '{type}' (supported: TemplateProcessing, ByteLevel, Sequence)"),
        };
    }
}

/// <summary><c>ByteLevel</c> only trims offsets, which are not computed here: the ids are unchanged.</summary>
internal sealed class ByteLevelPostProcessor : PostProcessor
{
    public override void AddSpecialTokens(List<int> ids) { }
}

internal sealed class SequencePostProcessor(PostProcessor[] steps) : PostProcessor
{
    public override void AddSpecialTokens(List<int> ids)
    {
        foreach (var step in steps) step.AddSpecialTokens(ids);
    }
}

/// <summary>
/// <c>TemplateProcessing</c>: the <c>single</c> template, a list of special tokens and the sequence
/// <c>$A</c>, e.g. <c>&lt;s&gt; $A</c> for Llama-2.
/// </summary>
internal sealed class TemplateProcessing(IReadOnlyList<int[]?> single) : PostProcessor
{
    /// <summary>The template: for each piece, the ids of a special token, or null for the sequence.</summary>
    public IReadOnlyList<int[]?> Single { get; } = single;

    public static TemplateProcessing Read(JsonCursor json)
    {
        var specials = new Dictionary<string, int[]>(StringComparer.Ordinal);
        if (json.GetNonNull("special_tokens") is { } st)
            foreach (var (name, value) in st.Properties())
                specials[name] = value.Required("ids").Items().Select(Tokenizer.TokenId).ToArray();
        var pieces = new List<int[]?>();
        foreach (var piece in json.Required("single").Items())
        {
            if (piece.GetNonNull("Sequence") is { } seq)
            {
                var id = seq.Required("id");
                if (id.AsString() != "A") throw id.Error($"a single-sequence template can only use sequence A, not '{id.AsString()}'");
                pieces.Add(null);
            }
            else if (piece.GetNonNull("SpecialToken") is { } special)
            {
                var id = special.Required("id");
                pieces.Add(specials.TryGetValue(id.AsString(), out var ids) ? ids : throw id.Error($"special token '{id.AsString()}' is not in special_tokens"));
            }
            else throw piece.Error("expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
        }
        return new TemplateProcessing(pieces);
    }

    /// <summary>The template transformers builds from <c>add_bos_token</c>/<c>add_eos_token</c> (<c>update_post_processor</c>).</summary>
    public static TemplateProcessing BosEos(int? bos, int? eos)
    {
        var pieces = new List<int[]?>();
        if (bos is int b) pieces.Add([b]);
        pieces.Add(null);
        if (eos is int e) pieces.Add([e]);
        return new TemplateProcessing(pieces);
    }

    public override void AddSpecialTokens(List<int> ids)
    {
        var sequence = ids.ToArray();
        ids.Clear();
        foreach (var piece in Single) ids.AddRange(piece ?? sequence);
    }
}
