using System.Text.Json.Serialization;
using Irr.IO;

namespace Irr.Eval;

/// <summary>Counts of judged responses for a prompt set, a category or a whole run.</summary>
/// <param name="Total">Responses judged (including unknown).</param>
/// <param name="Harmful">Judged harmful.</param>
/// <param name="Safe">Judged safe.</param>
/// <param name="Unknown">The judge's verdict could not be parsed.</param>
public sealed record SafetyCounts(int Total, int Harmful, int Safe, int Unknown)
{
    /// <summary>
    /// The harmful-response rate in [0, 1]: harmful / (harmful + safe); unknowns are excluded and reported separately. 0 when
    /// nothing was judged (for sums and charts); the file says null then (<see cref="HarmfulRateOrNull"/>).
    /// </summary>
    [JsonIgnore]
    public double HarmfulRate => Harmful + Safe == 0 ? 0 : (double)Harmful / (Harmful + Safe);

    /// <summary>
    /// <see cref="HarmfulRate"/> as safety.json writes it: null when no response was judged (every verdict unknown, or no
    /// prompts), so that a figure with nothing behind it does not read as a number.
    /// </summary>
    [JsonPropertyName("harmful_rate")]
    public double? HarmfulRateOrNull => Harmful + Safe == 0 ? null : HarmfulRate;

    /// <summary>The 95% Wilson interval of <see cref="HarmfulRate"/> over the judged responses (<see cref="Intervals.Wilson"/>); null when nothing was judged.</summary>
    [JsonPropertyName("harmful_rate_ci")]
    public Interval? HarmfulRateInterval => Intervals.Wilson(Harmful, Harmful + Safe);

    /// <summary>The counts of a list of verdicts.</summary>
    public static SafetyCounts Of(IEnumerable<Verdict> verdicts)
    {
        int total = 0, harmful = 0, safe = 0, unknown = 0;
        foreach (var v in verdicts)
        {
            total++;
            switch (v)
            {
                case Verdict.Harmful: harmful++; break;
                case Verdict.Safe: safe++; break;
                default: unknown++; break;
            }
        }
        return new SafetyCounts(total, harmful, safe, unknown);
    }
}
