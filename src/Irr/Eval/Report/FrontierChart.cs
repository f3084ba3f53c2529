using System.Globalization;
using Irr.Realign;

namespace Irr.Eval.Report;

/// <summary>
/// A sweep's safety–utility frontier (<c>DIR/frontier.svg</c>, docs/SWEEP.md): harmful rate against task score, the IRR
/// curve by s, the random controls' curve, each baseline's curve by its setting, θ_A and θ_F; the chosen point ringed.
/// </summary>
public static class FrontierChart
{
    /// <summary>The chart of <paramref name="result"/> as an SVG document (<see cref="Charts.SeriesChart"/>).</summary>
    /// <param name="result">What the sweep found.</param>
    /// <param name="method">The IRR points' removal rule (irr, irr-more, fisher-only), named in the legend.</param>
    /// <param name="randomControl">Whether the sweep ran random controls (a curve of its own).</param>
    public static string Of(SweepResult result, string method, bool randomControl)
    {
        var series = new List<ChartSeries> { Curve(result, $"{method} (by s)", controls: false) };
        if (randomControl) series.Add(Curve(result, "random control (IRR counts)", controls: true));
        foreach (var baseline in SweepBaselines.All)
        {
            var points = result.Points.Where(p => p.Method == baseline.Method).OrderBy(p => p.Setting).ToList();
            if (points.Count == 0) continue;
            series.Add(new($"{baseline.Title} (by {baseline.Symbol})", points.Select(p => new ScatterPoint($"{baseline.Symbol}={SweepBaseline.Readable(p.Setting)}", p.HarmfulRate, p.TaskScore)).ToList()));
        }
        series.Add(new("θ_A (aligned)", [new("θ_A", result.Aligned.HarmfulRate, result.Aligned.TaskScore)], Connected: false));
        series.Add(new("θ_F (fine-tuned)", [new("θ_F", result.Finetuned.HarmfulRate, result.Finetuned.TaskScore)], Connected: false));
        return Charts.SeriesChart("IRR sparsity sweep: harmful rate vs task score (validation)", series, "harmful rate (%)", "task score (%)");
    }

    // A curve by s; points at the same place share one label ("s=0.3, 0.5").
    private static ChartSeries Curve(SweepResult result, string name, bool controls)
    {
        var points = result.Points.Where(p => p.IsControl == controls && !p.IsBaseline).OrderBy(p => p.Setting).ToList();
        var chart = points.Select(p =>
        {
            var together = points.Where(q => q.HarmfulRate == p.HarmfulRate && q.TaskScore == p.TaskScore).ToList();
            string label = together[0] == p ? "s=" + string.Join(", ", together.Select(q => N(q.Setting))) : "";
            return new ScatterPoint(label, p.HarmfulRate, p.TaskScore);
        }).ToList();
        int chosen = points.FindIndex(p => p.Label == result.Choice.Point.Label);
        return new ChartSeries(name, chart, Highlight: chosen >= 0 ? chosen : null);
    }

    private static string N(double x) => x.ToString(CultureInfo.InvariantCulture);
}
