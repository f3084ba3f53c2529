namespace Irr.Eval;

/// <summary>A confidence interval [Low, High] of a rate or a difference of rates (fractions, not percent).</summary>
/// <param name="Low">The lower bound.</param>
/// <param name="High">The upper bound.</param>
public readonly record struct Interval(double Low, double High)
{
    /// <summary>The interval in percent with one decimal, as tables print it: "3.5–14.0%".</summary>
    public string ToPercent() => $"{Pct(Low)}–{Pct(High)}%";

    private static string Pct(double fraction) => (100 * fraction).ToString("F1", System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>
/// The 95% confidence intervals irr puts beside its rates (issue 28): Wilson's score interval for one proportion
/// (Wilson 1927; statsmodels' <c>proportion_confint(method="wilson")</c>), and a seeded paired bootstrap over prompts for the
/// difference of two models' rates on the same prompts (Efron and Tibshirani 1993, the percentile interval).
/// </summary>
public static class Intervals
{
    /// <summary>z of a two-sided 95% interval: Φ⁻¹(0.975), as scipy's <c>norm.ppf(0.975)</c>.</summary>
    public const double Z95 = 1.959963984540054;

    /// <summary>
    /// Wilson's score interval of <paramref name="successes"/> in <paramref name="trials"/> at 95%:
    /// centre (p̂ + z²/2n) / (1 + z²/n), half-width z / (1 + z²/n) · √(p̂(1 − p̂)/n + z²/4n²), clipped to [0, 1].
    /// Null when there are no trials (a rate of nothing has no interval).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A negative count, or more successes than trials.</exception>
    public static Interval? Wilson(int successes, int trials)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(successes);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(successes, trials);
        if (trials == 0) return null;
        double n = trials, p = successes / n, z2 = Z95 * Z95;
        double denominator = 1 + z2 / n;                                   // 1 + z²/n
        double centre = (p + z2 / (2 * n)) / denominator;                  // (p̂ + z²/2n) / (1 + z²/n)
        double half = Z95 / denominator * Math.Sqrt(p * (1 - p) / n + z2 / (4 * n * n));
        // At k = 0 (k = n) the lower (upper) bound is exactly 0 (1); the formula leaves a rounding residue like 6.9e-18 there.
        return new Interval(successes == 0 ? 0 : Math.Max(0, centre - half), successes == trials ? 1 : Math.Min(1, centre + half));
    }

    /// <summary>
    /// The 95% percentile interval of mean(a − b) over <paramref name="pairs"/> (one pair per prompt: model A's and model B's
    /// score on it, e.g. 1 for harmful, 0 for safe) from <paramref name="resamples"/> resamples of the prompts with
    /// replacement, drawn with <see cref="Random"/>(<paramref name="seed"/>): the 2.5% and 97.5% quantiles of the resampled
    /// means (linear interpolation between order statistics, numpy's default). Null without pairs.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Fewer than 2 resamples.</exception>
    public static Interval? PairedBootstrap(IReadOnlyList<(double A, double B)> pairs, int resamples = 10_000, int seed = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(resamples, 2);
        if (pairs.Count == 0) return null;
        var differences = pairs.Select(p => p.A - p.B).ToArray();         // d_i = a_i − b_i, [n]
        var means = new double[resamples];                                 // mean of one resample of d, [resamples]
        var random = new Random(seed);
        for (int r = 0; r < resamples; r++)
        {
            double sum = 0;
            for (int i = 0; i < differences.Length; i++) sum += differences[random.Next(differences.Length)];
            means[r] = sum / differences.Length;
        }
        Array.Sort(means);
        return new Interval(Quantile(means, 0.025), Quantile(means, 0.975));
    }

    /// <summary>The <paramref name="q"/>-quantile of sorted values, interpolating linearly between order statistics (numpy's "linear").</summary>
    public static double Quantile(IReadOnlyList<double> sorted, double q)
    {
        double position = q * (sorted.Count - 1);
        int below = (int)Math.Floor(position);
        int above = Math.Min(below + 1, sorted.Count - 1);
        return sorted[below] + (position - below) * (sorted[above] - sorted[below]);
    }
}
