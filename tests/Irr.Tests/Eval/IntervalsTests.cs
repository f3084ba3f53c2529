using System.Text.Json.Nodes;
using Irr.Eval;
using Irr.Tests.Text;

namespace Irr.Tests.Eval;

/// <summary>
/// The confidence intervals against independent references: Wilson's against statsmodels' proportion_confint
/// (tests/fixtures/intervals/wilson.json, made by make-wilson.py), the paired bootstrap against the exact bootstrap
/// distribution of tiny samples (worked by hand) and the normal approximation of a large one.
/// </summary>
public class IntervalsTests
{
    [Fact]
    public void WilsonEqualsStatsmodels()
    {
        var cases = JsonNode.Parse(File.ReadAllText(Fixtures.Local("intervals/wilson.json")))!["cases"]!.AsArray();
        Assert.True(cases.Count >= 10);
        foreach (var c in cases)
        {
            var interval = Intervals.Wilson((int)c!["successes"]!, (int)c["trials"]!)!.Value;
            Assert.Equal((double)c["low"]!, interval.Low, 1e-12);
            Assert.Equal((double)c["high"]!, interval.High, 1e-12);
        }
    }

    [Theory]
    [InlineData(0, 48)]
    [InlineData(48, 48)]
    [InlineData(0, 1)]
    public void WilsonAtNoneOrAllReachesTheBoundExactly(int k, int n)
    {
        // The score interval's bound at p̂ = 0 is (p̂ + z²/2n − z²/2n) / (1 + z²/n) = 0 in exact arithmetic; at p̂ = 1 it is 1.
        var interval = Intervals.Wilson(k, n)!.Value;
        if (k == 0) Assert.Equal(0.0, interval.Low);
        else Assert.Equal(1.0, interval.High);
    }

    [Fact]
    public void WilsonOfNothingIsNoIntervalAndBadCountsAreRefused()
    {
        Assert.Null(Intervals.Wilson(0, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Intervals.Wilson(3, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => Intervals.Wilson(-1, 2));
    }

    [Fact]
    public void ThePairedBootstrapOfTinySamplesHasTheExactDistributionsQuantiles()
    {
        // d = a − b = (1, 0, −1): the 27 equally likely resamples give a mean of −1 with probability 1/27 (> 2.5%) and below
        // 1 with probability 26/27 (< 97.5%), so the 2.5% and 97.5% quantiles are −1 and 1.
        Assert.Equal(new Interval(-1, 1), Intervals.PairedBootstrap([(1, 0), (0, 0), (0, 1)], resamples: 20_000, seed: 3));
        // d = (1, 1, 0, 0): the mean is k/4 with k ~ Binomial(4, ½); P(k = 0) = 1/16 > 2.5%, P(k ≤ 3) = 15/16 < 97.5%.
        Assert.Equal(new Interval(0, 1), Intervals.PairedBootstrap([(1, 0), (1, 0), (0, 0), (1, 1)], resamples: 20_000, seed: 5));
        // The same difference on every prompt: no uncertainty.
        Assert.Equal(new Interval(0.5, 0.5), Intervals.PairedBootstrap([(1, 0.5), (0.5, 0), (0.75, 0.25)], resamples: 100, seed: 1));
        Assert.Null(Intervals.PairedBootstrap([]));
    }

    [Fact]
    public void ThePairedBootstrapOfALargeSampleIsTheNormalApproximation()
    {
        // 400 prompts, A harmful on 120 where B is safe, equal elsewhere: mean difference 0.3, standard error √(0.3·0.7/400).
        var pairs = Enumerable.Range(0, 400).Select(i => i < 120 ? (1.0, 0.0) : (i % 2 == 0 ? (1.0, 1.0) : (0.0, 0.0))).ToList();
        var interval = Intervals.PairedBootstrap(pairs, resamples: 20_000, seed: 11)!.Value;
        double half = Intervals.Z95 * Math.Sqrt(0.3 * 0.7 / 400);
        Assert.Equal(0.3 - half, interval.Low, 0.006);
        Assert.Equal(0.3 + half, interval.High, 0.006);
        Assert.Equal(interval, Intervals.PairedBootstrap(pairs, resamples: 20_000, seed: 11)!.Value); // seeded: the same again
    }

    [Theory]
    [InlineData(new[] { 1.0, 2, 3, 4 }, 0.5, 2.5)]
    [InlineData(new[] { 1.0, 2, 3, 4 }, 0.025, 1.075)]
    [InlineData(new[] { 7.0 }, 0.975, 7)]
    public void QuantilesInterpolateAsNumpysLinear(double[] sorted, double q, double expected) => // numpy.quantile([1,2,3,4], 0.025) = 1.075
        Assert.Equal(expected, Intervals.Quantile(sorted, q), 1e-12);
}

/// <summary>safety.json's and task.json's rates carry their 95% Wilson interval; a rate of nothing judged has none.</summary>
public class RateIntervalJsonTests
{
    private static JsonNode Json<T>(T value) => JsonNode.Parse(System.Text.Json.JsonSerializer.Serialize(value, Irr.IO.JsonFiles.ResultOptions))!;

    [Fact]
    public void SafetyAndTaskFiguresCarryTheirIntervals()
    {
        var counts = Json(new SafetyCounts(Total: 11, Harmful: 5, Safe: 5, Unknown: 1)); // 5 of 10 judged: statsmodels' (0.2366, 0.7634)
        Assert.Equal(0.23659309051256394, (double)counts["harmful_rate_ci"]!["low"]!, 1e-12);
        Assert.Equal(0.7634069094874361, (double)counts["harmful_rate_ci"]!["high"]!, 1e-12);
        var nothing = Json(new SafetyCounts(Total: 2, Harmful: 0, Safe: 0, Unknown: 2));
        Assert.True(nothing.AsObject().ContainsKey("harmful_rate_ci"));
        Assert.Null(nothing["harmful_rate_ci"]);
        Assert.True(nothing.AsObject().ContainsKey("harmful_rate")); // nothing judged: null, not 0
        Assert.Null(nothing["harmful_rate"]);
        Assert.Equal(0.5, (double)counts["harmful_rate"]!);
    }
}
