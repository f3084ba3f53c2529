using System.Globalization;
using System.Text.RegularExpressions;

namespace Irr.Eval;

/// <summary>How a task's answers are scored.</summary>
public enum TaskMetric
{
    /// <summary>The response equals the gold answer after trimming and collapsing whitespace.</summary>
    Exact,

    /// <summary>The gold answer occurs in the response (whitespace collapsed, case-insensitive).</summary>
    Contains,

    /// <summary>The final number of the response (after <c>####</c>, else the last number) equals the gold answer's, numerically.</summary>
    Gsm8k,

    /// <summary>The letter the response chooses (A, B, C …) is the gold letter.</summary>
    Choice,
}

/// <summary>The task metrics and the answer extraction they use.</summary>
public static partial class TaskMetrics
{
    /// <summary>The metric of a command-line name (exact, contains, gsm8k or choice, in any case), or null for another name.</summary>
    public static TaskMetric? TryParse(string name) => name.ToLowerInvariant() switch
    {
        "exact" => TaskMetric.Exact,
        "contains" => TaskMetric.Contains,
        "gsm8k" => TaskMetric.Gsm8k,
        "choice" => TaskMetric.Choice,
        _ => null,
    };

    /// <summary>The metric of a command-line name: exact, contains, gsm8k or choice.</summary>
    /// <exception cref="IrrException">Another name.</exception>
    public static TaskMetric Parse(string name) =>
        TryParse(name) ?? throw new IrrException($"metric must be exact, contains, gsm8k or choice, not \"{name}\"");

    /// <summary>Trimmed, with every run of whitespace replaced by one space.</summary>
    public static string Normalize(string text) => Whitespace().Replace(text.Trim(), " ");

    /// <summary>What the metric reads from a response (the normalized text, the number, the letter), or null when it finds nothing.</summary>
    public static string? Extract(TaskMetric metric, string response, int choices = 4) => metric switch
    {
        TaskMetric.Gsm8k => ExtractNumber(response)?.ToString(CultureInfo.InvariantCulture),
        TaskMetric.Choice => ExtractChoice(response, choices)?.ToString(),
        _ => Normalize(response),
    };

    /// <summary>Whether <paramref name="response"/> is correct for <paramref name="gold"/> under <paramref name="metric"/>.</summary>
    public static bool IsCorrect(TaskMetric metric, string response, string gold, int choices = 4)
    {
        switch (metric)
        {
            case TaskMetric.Exact:
                return Normalize(response) == Normalize(gold);
            case TaskMetric.Contains:
                return Normalize(response).Contains(Normalize(gold), StringComparison.OrdinalIgnoreCase);
            case TaskMetric.Gsm8k:
                return ExtractNumber(gold) is { } g && ExtractNumber(response) == g;
            default:
                return ExtractChoice(gold, choices) is { } letter && ExtractChoice(response, choices) == letter;
        }
    }

    /// <summary>
    /// The final number of a GSM8K-style answer: the first number after the last <c>####</c>, else the last number in the text.
    /// Thousands separators ("1,234"), a sign, decimals ("3.50" = 3.5), a "$" and a trailing period are handled. Null when there is no number.
    /// </summary>
    public static decimal? ExtractNumber(string text)
    {
        int marker = text.LastIndexOf("####", StringComparison.Ordinal);
        var matches = Number().Matches(marker >= 0 ? text[(marker + 4)..] : text);
        if (matches.Count == 0) return null;
        var m = marker >= 0 ? matches[0] : matches[^1];
        string digits = m.Groups["int"].Value.Replace(",", "") + (m.Groups["frac"].Success ? "." + m.Groups["frac"].Value : "");
        decimal value = decimal.Parse(digits, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture);
        return m.Groups["neg"].Success ? -value : value;
    }

    /// <summary>
    /// The letter a response chooses among the first <paramref name="choices"/> letters, tried in order: "answer is (B)" /
    /// "Answer: C"; a letter opening the response ("B", "B.", "(B)", "B)"); a parenthesized letter "(C)"; the first
    /// standalone capital letter (a capital "A" followed by a lower-case word, the article, is skipped). Null when none is found.
    /// </summary>
    public static char? ExtractChoice(string text, int choices = 4)
    {
        if (choices < 1 || choices > 26) throw new ArgumentOutOfRangeException(nameof(choices));
        char last = (char)('A' + choices - 1);
        bool Valid(string s) => s.Length == 1 && char.ToUpperInvariant(s[0]) >= 'A' && char.ToUpperInvariant(s[0]) <= last;
        foreach (Match m in AnswerIs().Matches(text))
        {
            string letter = m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value;
            if (Valid(letter)) return char.ToUpperInvariant(letter[0]);
        }
        if (Leading().Match(text) is { Success: true } lead && Valid(lead.Groups[1].Value)
            && !(lead.Groups[1].Value == "A" && ArticleFollows().IsMatch(text[(lead.Groups[1].Index + 1)..])))
            return lead.Groups[1].Value[0];
        foreach (Match m in Parenthesized().Matches(text))
            if (Valid(m.Groups[1].Value)) return char.ToUpperInvariant(m.Groups[1].Value[0]);
        foreach (Match m in Standalone().Matches(text))
        {
            if (!Valid(m.Value)) continue;
            if (m.Value == "A" && ArticleFollows().IsMatch(text[(m.Index + 1)..])) continue;
            return m.Value[0];
        }
        return null;
    }

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();

    [GeneratedRegex(@"(?<neg>(?<![\w.])-\s?)?\$?(?<int>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?<frac>\d+))?")]
    private static partial Regex Number();

    [GeneratedRegex(@"\b[Aa]nswer(?:\s+is)?\s*:?\s*(?:\(([A-Za-z])\)|([A-Z])(?!\w))")]
    private static partial Regex AnswerIs();

    [GeneratedRegex(@"^\s*\(?([A-Z])(?:[\).:,]|\s|$)")]
    private static partial Regex Leading();

    [GeneratedRegex(@"\(([A-Za-z])\)")]
    private static partial Regex Parenthesized();

    [GeneratedRegex(@"\b[A-Z]\b")]
    private static partial Regex Standalone();

    [GeneratedRegex(@"^\s+[a-z]")]
    private static partial Regex ArticleFollows();
}
