namespace Irr.Realign;

/// <summary>The point the selection rule chose, and why.</summary>
/// <param name="Point">The chosen point.</param>
/// <param name="Qualified">True when it met the harmful-rate bound; false when no IRR point did and the safest was taken.</param>
/// <param name="Threshold">The bound on the harmful rate: θ_A's harmful rate + the allowed increase (a fraction).</param>
/// <param name="Reason">One sentence saying which case applied, with the figures.</param>
public sealed record SweepChoice(SweepPoint Point, bool Qualified, double Threshold, string Reason);

/// <summary>The rule by which <c>irr sweep</c> chooses s: a pure function of the evaluated points, stated in <see cref="Rule"/>.</summary>
public static class SweepSelection
{
    /// <summary>The rule in words, as the help text, the printed output and sweep.json state it.</summary>
    public const string Rule =
        "among the IRR points (not the random controls or baselines), the highest task score whose harmful rate is at most θ_A's harmful rate + max-harmful-increase " +
        "(ties: lower harmful rate, then smaller s); if none qualifies, the safest IRR point (lowest harmful rate; ties: higher task score, then smaller s)";

    // Rates are ratios of counts; a bound such as 0.1 + 0.05 must admit 0.15.
    private const double Tolerance = 1e-9;

    /// <summary>
    /// Applies <see cref="Rule"/> to <paramref name="points"/>: controls are ignored; a point qualifies when its harmful rate is at
    /// most <paramref name="alignedHarmful"/> + <paramref name="maxIncrease"/> (up to 1e-9 for rounding).
    /// </summary>
    /// <param name="points">The evaluated points, controls included (fractions in [0, 1]).</param>
    /// <param name="alignedHarmful">θ_A's harmful rate on the same prompts, a fraction.</param>
    /// <param name="maxIncrease">The harmful-rate increase over θ_A allowed, a fraction (0.05 = 5 points).</param>
    /// <exception cref="ArgumentException">There is no IRR (non-control) point.</exception>
    public static SweepChoice Choose(IReadOnlyList<SweepPoint> points, double alignedHarmful, double maxIncrease) =>
        ChooseAmong(points.Where(p => !p.IsControl && !p.IsBaseline).ToList(), "IRR", alignedHarmful, maxIncrease);

    /// <summary>
    /// The same rule among one baseline's points (<paramref name="method"/>: resta or safelora, their setting in
    /// <see cref="SweepPoint.Setting"/>), to report a baseline at its best setting on validation data; null when the sweep has none.
    /// </summary>
    public static SweepChoice? ChooseBaseline(IReadOnlyList<SweepPoint> points, string method, double alignedHarmful, double maxIncrease)
    {
        var mine = points.Where(p => p.Method == method).ToList();
        return mine.Count == 0 ? null : ChooseAmong(mine, method, alignedHarmful, maxIncrease);
    }

    private static SweepChoice ChooseAmong(List<SweepPoint> irr, string what, double alignedHarmful, double maxIncrease)
    {
        if (irr.Count == 0) throw new ArgumentException($"a sweep needs at least one {what} point to choose from", nameof(irr));
        double threshold = alignedHarmful + maxIncrease;
        var qualifying = irr.Where(p => p.HarmfulRate <= threshold + Tolerance).ToList();
        if (qualifying.Count > 0)
        {
            var best = qualifying.OrderByDescending(p => p.TaskScore).ThenBy(p => p.HarmfulRate).ThenBy(p => p.Setting).First();
            return new SweepChoice(best, true, threshold,
                $"{best.Label} has the highest task score ({Percent(best.TaskScore)}) among the {qualifying.Count} of {irr.Count} {what} points " +
                $"whose harmful rate is at most {Percent(threshold)} (θ_A {Percent(alignedHarmful)} + {Percent(maxIncrease)})");
        }
        var safest = irr.OrderBy(p => p.HarmfulRate).ThenByDescending(p => p.TaskScore).ThenBy(p => p.Setting).First();
        return new SweepChoice(safest, false, threshold,
            $"no {what} point has a harmful rate of at most {Percent(threshold)} (θ_A {Percent(alignedHarmful)} + {Percent(maxIncrease)}); " +
            $"{safest.Label} is the safest ({Percent(safest.HarmfulRate)} harmful)");
    }

    /// <summary>A fraction as a percentage with one decimal, e.g. "12.5%".</summary>
    public static string Percent(double fraction) => Eval.Report.Charts.Percent(100 * fraction);

    /// <summary>
    /// Applies <see cref="Rule"/> to the points of a <c>sweep.json</c> (<see cref="SweepJob.FileName"/>): its IRR points and
    /// controls, θ_A's harmful rate from <c>references.aligned</c>, and its <c>max_harmful_increase</c> unless
    /// <paramref name="maxIncrease"/> overrides it. Choosing again with another tolerance needs no new evaluation.
    /// </summary>
    /// <param name="path">The sweep.json file.</param>
    /// <param name="maxIncrease">The harmful-rate increase allowed, a fraction, or null for the file's.</param>
    /// <exception cref="IrrException">The file is missing or not a sweep.json; the message names it and the JSON path.</exception>
    public static SweepChoice ChooseFrom(string path, double? maxIncrease = null)
    {
        string name = Path.GetFileName(path);
        if (!File.Exists(path)) throw new IrrException($"{name}: file not found ({path})");
        using var doc = IO.JsonCursor.Parse(IO.BoundedText.Read(path), name);
        var root = IO.JsonCursor.Root(doc, name);
        var points = root.Required("points").Items().Select(p => new SweepPoint(
            p.Required("label").AsString(), p.Required("method").AsString(), p.Required("sparsity").AsDouble(), p.Required("is_control").AsBool(),
            (long)p.Required("removed").AsDouble(), (long)p.Required("parameters").AsDouble(), p.Required("harmful_rate").AsDouble(),
            p.Required("task_score").AsDouble())).ToList();
        if (points.All(p => p.IsControl || p.IsBaseline)) throw root.Required("points").Error("no IRR point to choose from");
        double aligned = root.Required("references").Required("aligned").Required("harmful_rate").AsDouble();
        return Choose(points, aligned, maxIncrease ?? root.Required("max_harmful_increase").AsDouble());
    }
}
