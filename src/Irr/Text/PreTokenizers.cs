using Irr.IO;

namespace Irr.Text;

/// <summary>
/// A piece of text on its way to the model. <see cref="AtStart"/> says whether it begins at offset 0
/// of the original input, which <c>Metaspace</c>'s <c>prepend_scheme: first</c> looks at.
/// </summary>
internal readonly record struct PreToken(string Text, bool AtStart);

/// <summary>
/// A <c>pre_tokenizer</c> of <c>tokenizer.json</c>: splits pieces of normalized text into smaller
/// pieces (words), each given to the BPE model on its own. Types and semantics are HF <c>tokenizers</c>'.
/// </summary>
internal abstract class PreTokenizer
{
    /// <summary>Replaces <paramref name="pieces"/> by their splits, in order; empty pieces are dropped.</summary>
    public abstract void PreTokenize(List<PreToken> pieces);

    /// <summary>
    /// When this pre-tokenizer amounts to "split at a regex, keeping matches and gaps, then write the
    /// bytes in the byte-level alphabet" (GPT-2, Llama-3, Qwen2), that regex: the tokenizer can then hand
    /// each word's bytes to the model without making strings. Null otherwise.
    /// </summary>
    public virtual SplitRegex? ByteLevelWordRegex => null;

    public static PreTokenizer? FromJson(JsonCursor json)
    {
        if (json.IsNull) return null;
        string type = json.Required("type").AsString();
        return type switch
        {
            "Sequence" => new SequencePreTokenizer(json.Required("pretokenizers").Items().Select(p => FromJson(p)).OfType<PreTokenizer>().ToArray()),
            "ByteLevel" => new ByteLevelPreTokenizer(json.Bool("add_prefix_space", true), json.Bool("use_regex", true)),
            "Split" => SplitPreTokenizer.Read(json),
            "Metaspace" => MetaspacePreTokenizer.Read(json),
            _ => throw json.Required("type").Error($"unsupported pre_tokenizer type '{type}' (supported: Sequence, ByteLevel, Split, Metaspace)"),
        };
    }

    /// <summary>Applies <paramref name="split"/> to every piece and puts the non-empty results in place.</summary>
    protected static void SplitEach(List<PreToken> pieces, Action<PreToken, List<PreToken>> split)
    {
        if (pieces.Count == 1)
        {
            // The usual case (one piece per segment): no copy of the input list is needed.
            var only = pieces[0];
            pieces.Clear();
            split(only, pieces);
            pieces.RemoveAll(static p => p.Text.Length == 0);
            return;
        }
        var input = pieces.ToArray();
        pieces.Clear();
        foreach (var piece in input) split(piece, pieces);
        pieces.RemoveAll(static p => p.Text.Length == 0);
    }
}

internal sealed class SequencePreTokenizer(PreTokenizer[] steps) : PreTokenizer
{
    public override SplitRegex? ByteLevelWordRegex { get; } =
        steps is [SplitPreTokenizer { IsolatedRegex: { } regex }, ByteLevelPreTokenizer { IsPlainMapping: true }] ? regex : null;

    public override void PreTokenize(List<PreToken> pieces)
    {
        foreach (var step in steps) step.PreTokenize(pieces);
    }
}

/// <summary>How a <c>Split</c> keeps the matched delimiters (HF <c>SplitDelimiterBehavior</c>).</summary>
internal enum SplitDelimiterBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

/// <summary>
/// <c>Split</c>: cuts each piece at the matches of a pattern (a literal string or a regex),
/// treating the matches per <see cref="SplitDelimiterBehavior"/>; <c>invert</c> swaps matches and gaps.
/// </summary>
internal sealed class SplitPreTokenizer(string? literal, SplitRegex? regex, SplitDelimiterBehavior behavior, bool invert) : PreTokenizer
{
    /// <summary>The regex, when matches and gaps are all kept as pieces (Isolated, not inverted).</summary>
    public SplitRegex? IsolatedRegex => behavior == SplitDelimiterBehavior.Isolated && !invert ? regex : null;

    public static SplitPreTokenizer Read(JsonCursor json)
    {
        var (literal, regex) = ReplaceNormalizer.ParsePattern(json.Required("pattern"));
        var b = json.Required("behavior");
        var behavior = Enum.TryParse<SplitDelimiterBehavior>(b.AsString(), out var v) && Enum.IsDefined(v)
            ? v
            : throw b.Error($"unknown split behavior '{b.AsString()}' (expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous)");
        return new SplitPreTokenizer(literal, regex, behavior, json.Bool("invert", false));
    }

    public override void PreTokenize(List<PreToken> pieces) => SplitEach(pieces, (piece, output) =>
    {
        string text = piece.Text;
        if (behavior == SplitDelimiterBehavior.Isolated && !invert && regex is not null)
        {
            // The byte-level case (Llama-3, Qwen2): every match and every gap is a piece, in order.
            int prev = 0;
            foreach (var (start, length) in regex.Matches(text))
            {
                if (length == 0) continue;
                if (prev < start) output.Add(new PreToken(text[prev..start], piece.AtStart && prev == 0));
                output.Add(new PreToken(text.Substring(start, length), piece.AtStart && start == 0));
                prev = start + length;
            }
            if (prev < text.Length) output.Add(new PreToken(prev == 0 ? text : text[prev..], piece.AtStart && prev == 0));
            return;
        }
        foreach (var (start, end) in Split(text, FindMatches(text), behavior, invert))
            output.Add(new PreToken(text[start..end], piece.AtStart && start == 0));
    });

    private List<(int Start, int Length)> FindMatches(string text)
    {
        if (regex is not null) return regex.Matches(text);
        var result = new List<(int, int)>();
        if (literal!.Length == 0) return result;
        for (int i = text.IndexOf(literal, StringComparison.Ordinal); i >= 0; i = text.IndexOf(literal, i + literal.Length, StringComparison.Ordinal))
            result.Add((i, literal.Length));
        return result;
    }

    /// <summary>HF <c>NormalizedString::split</c>: the (start, end) ranges to keep, in order.</summary>
    internal static List<(int Start, int End)> Split(string text, List<(int Start, int Length)> found, SplitDelimiterBehavior behavior, bool invert)
    {
        // Cover the text with (range, isMatch) parts.
        var parts = new List<(int Start, int End, bool IsMatch)>();
        int prev = 0;
        foreach (var (start, length) in found)
        {
            if (length == 0) continue;
            if (prev != start) parts.Add((prev, start, invert));
            parts.Add((start, start + length, !invert));
            prev = start + length;
        }
        if (prev != text.Length) parts.Add((prev, text.Length, invert));

        var kept = new List<(int Start, int End)>();
        switch (behavior)
        {
            case SplitDelimiterBehavior.Isolated:
                foreach (var p in parts) kept.Add((p.Start, p.End));
                break;
            case SplitDelimiterBehavior.Removed:
                foreach (var p in parts) if (!p.IsMatch) kept.Add((p.Start, p.End));
                break;
            case SplitDelimiterBehavior.Contiguous:
                for (int i = 0; i < parts.Count; i++)
                {
                    if (i > 0 && parts[i].IsMatch && parts[i - 1].IsMatch) kept[^1] = (kept[^1].Start, parts[i].End);
                    else kept.Add((parts[i].Start, parts[i].End));
                }
                break;
            case SplitDelimiterBehavior.MergedWithPrevious:
            {
                bool previousMatch = false;
                foreach (var p in parts)
                {
                    if (p.IsMatch && !previousMatch && kept.Count > 0) kept[^1] = (kept[^1].Start, p.End);
                    else kept.Add((p.Start, p.End));
                    previousMatch = p.IsMatch;
                }
                break;
            }
            case SplitDelimiterBehavior.MergedWithNext:
            {
                bool previousMatch = false;
                for (int i = parts.Count - 1; i >= 0; i--)
                {
                    var p = parts[i];
                    if (p.IsMatch && !previousMatch && kept.Count > 0) kept[^1] = (p.Start, kept[^1].End);
                    else kept.Add((p.Start, p.End));
                    previousMatch = p.IsMatch;
                }
                kept.Reverse();
                break;
            }
        }
        return kept;
    }
}

/// <summary>
/// <c>ByteLevel</c>: optionally a space in front of each piece and GPT-2's regex split, then every
/// piece rewritten as its UTF-8 bytes in the byte-level alphabet.
/// </summary>
internal sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : PreTokenizer
{
    /// <summary>GPT-2's pre-tokenization pattern, used when <c>use_regex</c> is true.</summary>
    internal const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private static readonly Lazy<SplitRegex> Gpt2 = new(() => SplitRegex.FromPattern(Gpt2Pattern));

    /// <summary>Only the byte mapping: no prefix space, no regex split.</summary>
    public bool IsPlainMapping => !addPrefixSpace && !useRegex;

    public override SplitRegex? ByteLevelWordRegex => !addPrefixSpace && useRegex ? Gpt2.Value : null;

    public override void PreTokenize(List<PreToken> pieces)
    {
        if (addPrefixSpace || useRegex)
        {
            SplitEach(pieces, (piece, output) =>
            {
                string text = addPrefixSpace && !piece.Text.StartsWith(' ') ? " " + piece.Text : piece.Text;
                if (!useRegex)
                {
                    output.Add(piece with { Text = text });
                    return;
                }
                var found = Gpt2.Value.Matches(text);
                foreach (var (start, end) in SplitPreTokenizer.Split(text, found, SplitDelimiterBehavior.Isolated, invert: false))
                    output.Add(new PreToken(text[start..end], piece.AtStart && start == 0));
            });
        }
        for (int i = 0; i < pieces.Count; i++) pieces[i] = pieces[i] with { Text = ByteLevelAlphabet.Encode(pieces[i].Text) };
    }
}

/// <summary>How <c>Metaspace</c> puts the replacement character in front of text.</summary>
internal enum PrependScheme { Always, Never, First }

/// <summary>
/// <c>Metaspace</c>: spaces become the replacement ("▁"), and "▁" is put in front of a piece per the
/// prepend scheme (<c>first</c>: only the piece at the start of the input); <c>split</c> cuts before each "▁".
/// </summary>
internal sealed class MetaspacePreTokenizer(char replacement, PrependScheme scheme, bool split) : PreTokenizer
{
    public static MetaspacePreTokenizer Read(JsonCursor json)
    {
        var (replacement, scheme) = ParseReplacementAndScheme(json);
        return new MetaspacePreTokenizer(replacement, scheme, json.Bool("split", true));
    }

    /// <summary>The <c>replacement</c> and <c>prepend_scheme</c> (or the older <c>add_prefix_space</c>) of a Metaspace pre-tokenizer or decoder.</summary>
    internal static (char Replacement, PrependScheme Scheme) ParseReplacementAndScheme(JsonCursor json)
    {
        var r = json.Required("replacement");
        string s = r.AsString();
        if (s.Length != 1) throw r.Error("expected a single character");
        PrependScheme scheme;
        if (json.GetNonNull("prepend_scheme") is { } ps)
        {
            scheme = ps.AsString() switch
            {
                "always" => PrependScheme.Always,
                "never" => PrependScheme.Never,
                "first" => PrependScheme.First,
                var other => throw ps.Error($"unknown prepend_scheme '{other}' (expected always, never or first)"),
            };
        }
        else scheme = json.Bool("add_prefix_space", true) ? PrependScheme.Always : PrependScheme.Never;
        return (s[0], scheme);
    }

    public override void PreTokenize(List<PreToken> pieces) => SplitEach(pieces, (piece, output) =>
    {
        string text = piece.Text.Replace(' ', replacement);
        bool prepend = scheme == PrependScheme.Always || scheme == PrependScheme.First && piece.AtStart;
        if (prepend && text.Length > 0 && text[0] != replacement) text = replacement + text;
        if (!split)
        {
            output.Add(new PreToken(text, piece.AtStart));
            return;
        }
        int start = 0;
        for (int i = 1; i <= text.Length; i++)
        {
            if (i == text.Length || text[i] == replacement)
            {
                output.Add(new PreToken(text[start..i], piece.AtStart && start == 0));
                start = i;
            }
        }
    });
}
