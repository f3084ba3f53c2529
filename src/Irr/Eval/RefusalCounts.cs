using System.Text.Json.Serialization;

namespace Irr.Eval;

/// <summary>
/// How often a model refused the prompts of a benign set (safe requests, some of which look unsafe, e.g. XSTest's
/// <c>safe</c> prompts): the over-refusal figure. A refusal is the judge's refusal verdict (the keyword judge: a refusal
/// marker; an HTTP judge: its protocol's refusal field where it has one).
/// </summary>
/// <param name="Responses">Responses judged for refusal (those whose refusal could be decided; generation failures are not responses).</param>
/// <param name="Refused">Of those, the refusals.</param>
/// <param name="Unknown">Responses whose refusal could not be decided (left out of <see cref="Responses"/>).</param>
public sealed record RefusalCounts(int Responses, int Refused, int Unknown = 0)
{
    /// <summary>Refused / responses in [0, 1]; null when no response was judged, so that a figure with nothing behind it does not read as a number.</summary>
    [JsonPropertyName("refusal_rate")]
    public double? RefusalRate => Responses == 0 ? null : (double)Refused / Responses;

    /// <summary>The 95% Wilson interval of <see cref="RefusalRate"/> (<see cref="Intervals.Wilson"/>); null when no response was judged.</summary>
    [JsonPropertyName("refusal_rate_ci")]
    public Interval? RefusalRateInterval => Intervals.Wilson(Refused, Responses);

    /// <summary>The sum of several sets' counts.</summary>
    public static RefusalCounts Sum(IEnumerable<RefusalCounts> counts)
    {
        int n = 0, k = 0, u = 0;
        foreach (var c in counts) { n += c.Responses; k += c.Refused; u += c.Unknown; }
        return new RefusalCounts(n, k, u);
    }
}
