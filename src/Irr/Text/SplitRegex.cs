using System.Globalization;
using System.Text.RegularExpressions;
using Irr.IO;

namespace Irr.Text;

/// <summary>
/// A <c>Regex</c> pattern of <c>tokenizer.json</c> (HF compiles it with Oniguruma) run by .NET's engine.
/// Both engines agree on the classes these patterns use (<c>\p{L}</c>, <c>\p{N}</c>, <c>\s</c> is
/// White_Space in both), except that .NET matches UTF-16 code units: a letter outside the BMP is two
/// surrogates to it, not a <c>\p{L}</c>. So text with surrogate pairs is matched in a projection where
/// each pair stands as one BMP character of the same general category, and the offsets are mapped back.
/// A pattern comes from a downloaded file, so each match runs under a time limit (<see cref="MatchTimeout"/>): a pattern
/// that backtracks without end (<c>(a+)+$</c>) is an error naming the file, the pattern's place and the pattern, not a
/// hang. (<c>RegexOptions.NonBacktracking</c> would bound the time by construction, but it has no lookarounds, which
/// the GPT-2 and Llama-3 patterns use: <c>\s+(?!\S)</c>; and its leftmost-longest-free semantics differ from
/// Oniguruma's backtracking alternation order.)
/// </summary>
internal sealed class SplitRegex
{
    // Compiling takes milliseconds; a process that loads tokenizers again (tests, several models of one family) reuses them.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(string, TimeSpan), Regex> Compiled = new();

    private readonly Regex regex;
    private readonly string where;
    private readonly char[] representative = new char[32];

    private SplitRegex(string pattern, string where)
    {
        this.where = where;
        var timeout = MatchTimeout;
        regex = Compiled.TryGetValue((pattern, timeout), out var known) ? known : new Regex(pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant, timeout);
        if (Compiled.Count < 64) Compiled.TryAdd((pattern, timeout), regex);
        for (int cat = 0; cat < representative.Length; cat++) representative[cat] = '\uE000';
        var taken = new bool[representative.Length];
        for (int c = 0xA1; c <= 0xFFFD; c++)
        {
            char ch = (char)c;
            if (char.IsSurrogate(ch)) continue;
            int cat = (int)char.GetUnicodeCategory(ch);
            if (taken[cat] || pattern.Contains(ch) || pattern.Contains(char.ToUpperInvariant(ch)) || pattern.Contains(char.ToLowerInvariant(ch))) continue;
            representative[cat] = ch;
            taken[cat] = true;
        }
    }

    public override string ToString() => regex.ToString();

    /// <summary>Compiles the pattern at <paramref name="json"/> (a string); a pattern .NET rejects is an error naming it.</summary>
    public static SplitRegex Create(JsonCursor json)
    {
        try
        {
            return new SplitRegex(json.AsString(), json.Where);
        }
        catch (ArgumentException e)
        {
            throw json.Error($"regular expression not supported: {e.Message}");
        }
    }

    /// <summary>Compiles a pattern known to be valid.</summary>
    public static SplitRegex FromPattern(string pattern) => new(pattern, "the built-in pattern");

    /// <summary>
    /// The longest one match of a pattern from a file may take: <c>IRR_MAX_REGEX_SECONDS</c>, 10 s by default. The
    /// patterns of real tokenizers match one word at a time, in microseconds.
    /// </summary>
    internal static TimeSpan MatchTimeout => TimeSpan.FromSeconds(Limits.Get("IRR_MAX_REGEX_SECONDS", 10));

    [ThreadStatic] private static long _textDeadline;

    /// <summary>This thread's budget of one text's matches (a <see cref="System.Diagnostics.Stopwatch"/> timestamp), or 0 outside one.</summary>
    internal static long TextDeadline => _textDeadline;

    /// <summary>
    /// Starts the time budget of one text's matches on this thread (<see cref="MatchTimeout"/> in all, as for one match):
    /// what <see cref="Tokenizer.Encode"/> calls before it splits a text.
    /// </summary>
    /// <returns>Ends the budget when disposed (other matching on the thread, a BPE trainer's, has none).</returns>
    internal static TextBudget BeginText()
    {
        long previous = _textDeadline;
        _textDeadline = System.Diagnostics.Stopwatch.GetTimestamp() + (long)(MatchTimeout.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
        return new TextBudget(previous);
    }

    /// <summary>The time budget of one text's matches, ended by <see cref="Dispose"/>.</summary>
    internal readonly struct TextBudget(long previous) : IDisposable
    {
        public void Dispose() => _textDeadline = previous;
    }

    /// <summary>The error of a match of <paramref name="pattern"/> (at <paramref name="where"/>) that ran out of time.</summary>
    /// <param name="where">The file and the pattern's place in it.</param>
    /// <param name="pattern">The pattern.</param>
    /// <param name="e">The timeout.</param>
    /// <param name="length">The text's length in UTF-16 units, when it was matched as a span (<c>e.Input</c> is then empty).</param>
    internal static IrrException TimedOut(string where, string pattern, RegexMatchTimeoutException e, int? length = null) =>
        new($"{where}: the regular expression \"{Shown(pattern)}\" took longer than {e.MatchTimeout.TotalSeconds:0.###} s to match " +
            $"a text of {length ?? e.Input.Length:N0} characters (it backtracks without end; raise the limit with IRR_MAX_REGEX_SECONDS=…)", e);

    // A pattern as shown in a message: control characters escaped, at most 200 characters.
    private static string Shown(string pattern) => Diagnostics.Escape(pattern.Length <= 200 ? pattern : pattern[..200] + "…");

    /// <summary>Non-overlapping matches, left to right, as (start, length) in UTF-16 units of <paramref name="text"/>.</summary>
    /// <exception cref="IrrException">A match takes longer than <see cref="MatchTimeout"/>.</exception>
    public List<(int Start, int Length)> Matches(ReadOnlySpan<char> text)
    {
        try
        {
            var result = MatchesUnguarded(text);
            // Each match is bounded by the timeout; all the matches of one text together by the same time (BeginText), so
            // that a pattern slow on every word of a long text (a second a word) cannot run for hours either.
            if (_textDeadline != 0 && System.Diagnostics.Stopwatch.GetTimestamp() > _textDeadline)
                throw new IrrException($"{where}: the regular expression \"{Shown(regex.ToString())}\" took longer than {MatchTimeout.TotalSeconds:0.###} s in all " +
                                       $"to match one text (it backtracks on every piece of it; raise the limit with IRR_MAX_REGEX_SECONDS=…)");
            return result;
        }
        catch (RegexMatchTimeoutException e)
        {
            throw TimedOut(where, regex.ToString(), e, text.Length);
        }
    }

    private List<(int Start, int Length)> MatchesUnguarded(ReadOnlySpan<char> text)
    {
        var result = new List<(int, int)>();
        if (text.IndexOfAnyInRange('\uD800', '\uDFFF') < 0)
        {
            foreach (var m in regex.EnumerateMatches(text)) result.Add((m.Index, m.Length));
            return result;
        }
        // Project: one char per code point; map[i] is the offset in text of projected char i.
        var projected = new char[text.Length];
        var map = new int[text.Length + 1];
        int n = 0;
        for (int i = 0; i < text.Length; i++)
        {
            map[n] = i;
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                var cat = CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(text[i], text[i + 1]));
                projected[n++] = representative[(int)cat];
                i++;
            }
            else projected[n++] = char.IsSurrogate(text[i]) ? '\uFFFD' : text[i];
        }
        map[n] = text.Length;
        foreach (var m in regex.EnumerateMatches(projected.AsSpan(0, n)))
            result.Add((map[m.Index], map[m.Index + m.Length] - map[m.Index]));
        return result;
    }
}
