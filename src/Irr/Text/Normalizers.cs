
using Irr.IO;

namespace Irr.Text;

/// <summary>
/// A <c>normalizer</c> of <c>tokenizer.json</c>: rewrites each piece of text between added tokens
/// before it is pre-tokenized. The types are those of HF <c>tokenizers</c>.
/// </summary>
internal abstract class Normalizer
{
    public abstract string Normalize(string text);

    public static Normalizer? FromJson(JsonCursor json)
    {
        if (json.IsNull) return null;
        string type = json.Required("type").AsString();
        return type switch
        {
            "Sequence" => new SequenceNormalizer(json.Required("normalizers").Items().Select(n => FromJson(n)).OfType<Normalizer>().ToArray()),
            "Prepend" => new PrependNormalizer(json.Required("prepend").AsString()),
            "Replace" => ReplaceNormalizer.Read(json),
            "NFC" => new UnicodeNormalizerStep(NormalizationForm.NFC),
            "NFD" => new UnicodeNormalizerStep(NormalizationForm.NFD),
            "NFKC" => new UnicodeNormalizerStep(NormalizationForm.NFKC),
            "NFKD" => new UnicodeNormalizerStep(NormalizationForm.NFKD),
            "Lowercase" => new LowercaseNormalizer(),
            "Strip" => new StripNormalizer(json.Bool("strip_left", true), json.Bool("strip_right", true)),
            _ => throw json.Required("type").Error($"unsupported normalizer type '{type}' (supported: Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, Lowercase, Strip)"),
        };
    }
}

internal sealed class SequenceNormalizer(Normalizer[] steps) : Normalizer
{
    public override string Normalize(string text)
    {
        foreach (var step in steps) text = step.Normalize(text);
        return text;
    }
}

/// <summary><c>Prepend</c>: puts a string in front of non-empty text (the legacy Llama "▁").</summary>
internal sealed class PrependNormalizer(string prefix) : Normalizer
{
    public override string Normalize(string text) => text.Length == 0 ? text : prefix + text;
}

/// <summary><c>Replace</c>: every match of a literal string or a regular expression becomes <c>content</c>.</summary>
internal sealed class ReplaceNormalizer(string? literal, SplitRegex? regex, string content) : Normalizer
{
    public static ReplaceNormalizer Read(JsonCursor json)
    {
        var (literal, regex) = ParsePattern(json.Required("pattern"));
        return new ReplaceNormalizer(literal, regex, json.Required("content").AsString());
    }

    /// <summary>A <c>{"String": s}</c> or <c>{"Regex": r}</c> pattern.</summary>
    public static (string? Literal, SplitRegex? Regex) ParsePattern(JsonCursor pattern)
    {
        if (pattern.GetNonNull("String") is { } s) return (s.AsString(), null);
        if (pattern.GetNonNull("Regex") is { } r) return (null, SplitRegex.Create(r));
        throw pattern.Error("expected {\"String\": ...} or {\"Regex\": ...}");
    }

    public override string Normalize(string text)
    {
        if (literal is not null) return literal.Length == 0 ? text : text.Replace(literal, content, StringComparison.Ordinal);
        var sb = new System.Text.StringBuilder(text.Length);
        int last = 0;
        foreach (var (start, length) in regex!.Matches(text))
        {
            sb.Append(text, last, start - last).Append(content);
            last = start + length;
        }
        return sb.Append(text, last, text.Length - last).ToString();
    }
}

internal sealed class UnicodeNormalizerStep(NormalizationForm form) : Normalizer
{
    public override string Normalize(string text) => UnicodeNormalizer.Normalize(text, form);
}

internal sealed class LowercaseNormalizer : Normalizer
{
    public override string Normalize(string text) => text.ToLowerInvariant();
}

/// <summary><c>Strip</c>: removes Unicode whitespace from the left and/or right.</summary>
internal sealed class StripNormalizer(bool left, bool right) : Normalizer
{
    public override string Normalize(string text)
    {
        int start = 0, end = text.Length;
        if (left) while (start < end && AddedTokenMatcher.IsWhiteSpace(text[start])) start++;
        if (right) while (end > start && AddedTokenMatcher.IsWhiteSpace(text[end - 1])) end--;
        return text[start..end];
    }
}
