namespace Irr.Text;

/// <summary>
/// Finds added tokens in text, as <c>AddedVocabulary::find_matches</c> of HF <c>tokenizers</c> does:
/// non-overlapping, leftmost-longest matches, honouring <c>single_word</c>, <c>lstrip</c> and <c>rstrip</c>.
/// </summary>
internal sealed class AddedTokenMatcher
{
    private sealed class Node
    {
        public Dictionary<char, Node>? Next;
        public AddedToken? Token;
    }

    private readonly Node root = new();
    private readonly bool[] firstChars = new bool[char.MaxValue + 1];

    public AddedTokenMatcher(IEnumerable<(string Pattern, AddedToken Token)> tokens)
    {
        foreach (var (pattern, token) in tokens)
        {
            if (pattern.Length == 0) continue;
            var node = root;
            foreach (char c in pattern)
            {
                node.Next ??= [];
                if (!node.Next.TryGetValue(c, out var child)) node.Next[c] = child = new Node();
                node = child;
            }
            // The first of equal contents wins, as in HF (later duplicates map to the same pattern).
            node.Token ??= token;
            firstChars[pattern[0]] = true;
            IsEmpty = false;
        }
    }

    public bool IsEmpty { get; } = true;

    /// <summary>
    /// Splits <paramref name="text"/> into pieces: plain text (<c>Token</c> null) and added tokens.
    /// Offsets are into <paramref name="text"/>; empty plain pieces are left out.
    /// </summary>
    public void Split(string text, List<(int Start, int End, AddedToken? Token)> output)
    {
        int startOffset = 0;
        int pos = 0;
        while (pos < text.Length)
        {
            var (matchStart, matchEnd, token) = FindLeftmostLongest(text, pos);
            if (token is null) break;
            pos = matchEnd;
            int start = matchStart, stop = matchEnd;
            if (token.SingleWord)
            {
                bool startSpace = start == 0 || !IsWordChar(CodePointBefore(text, start));
                bool stopSpace = stop == text.Length || !IsWordChar(CodePointAt(text, stop));
                if (!startSpace || !stopSpace) continue;
            }
            if (token.LStrip)
            {
                int newStart = start;
                while (newStart > 0 && IsWhiteSpace(CodePointBefore(text, newStart))) newStart -= CodePointBefore(text, newStart) > 0xFFFF ? 2 : 1;
                start = Math.Max(newStart, startOffset);
            }
            if (token.RStrip)
            {
                while (stop < text.Length && IsWhiteSpace(CodePointAt(text, stop))) stop += CodePointAt(text, stop) > 0xFFFF ? 2 : 1;
            }
            if (startOffset < start) output.Add((startOffset, start, null));
            output.Add((start, stop, token));
            startOffset = stop;
        }
        if (startOffset < text.Length) output.Add((startOffset, text.Length, null));
    }

    private (int Start, int End, AddedToken? Token) FindLeftmostLongest(string text, int from)
    {
        for (int i = from; i < text.Length; i++)
        {
            if (!firstChars[text[i]]) continue;
            var node = root;
            AddedToken? best = null;
            int bestEnd = -1;
            for (int j = i; j < text.Length && node.Next is not null && node.Next.TryGetValue(text[j], out var child); j++)
            {
                node = child;
                if (node.Token is not null)
                {
                    best = node.Token;
                    bestEnd = j + 1;
                }
            }
            if (best is not null) return (i, bestEnd, best);
        }
        return (-1, -1, null);
    }

    private static int CodePointAt(string s, int i) =>
        char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]) ? char.ConvertToUtf32(s[i], s[i + 1]) : s[i];

    private static int CodePointBefore(string s, int i) =>
        char.IsLowSurrogate(s[i - 1]) && i >= 2 && char.IsHighSurrogate(s[i - 2]) ? char.ConvertToUtf32(s[i - 2], s[i - 1]) : s[i - 1];

    /// <summary>Rust's <c>char::is_whitespace</c>: the Unicode White_Space property.</summary>
    internal static bool IsWhiteSpace(int cp) => cp is (>= 0x09 and <= 0x0D) or 0x20 or 0x85 or 0xA0 or 0x1680
        or (>= 0x2000 and <= 0x200A) or 0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000;

    /// <summary>HF's word characters for <c>single_word</c>: alphanumeric or underscore.</summary>
    private static bool IsWordChar(int cp)
    {
        if (cp == '_') return true;
        var cat = System.Globalization.CharUnicodeInfo.GetUnicodeCategory(cp);
        return cat is System.Globalization.UnicodeCategory.UppercaseLetter or System.Globalization.UnicodeCategory.LowercaseLetter
            or System.Globalization.UnicodeCategory.TitlecaseLetter or System.Globalization.UnicodeCategory.ModifierLetter
            or System.Globalization.UnicodeCategory.OtherLetter or System.Globalization.UnicodeCategory.DecimalDigitNumber
            or System.Globalization.UnicodeCategory.LetterNumber or System.Globalization.UnicodeCategory.OtherNumber;
    }
}
