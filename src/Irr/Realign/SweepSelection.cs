namespace Irr.Realign;

/// <summary>The point the selection rule chose, and why.</summary>
/// <param name="Point">The chosen point.</param>
/// <param name="Qualified">True when it met the harmful-rate bound; false when no IRR point did and the safest was taken.</param>
/// <param name="Threshold">The bound on the harmful rate: θ_A's harmful rate + the allowed increase (a fraction).</param>
/// <param name="Reason">One sentence saying which case applied, with the figures.</param>
public sealed record SweepChoice(SweepPoint Point, bool Qualified, double Threshold, string Reason)
{
    /// <summary>The rule's name (<see cref="SweepSelection.Names"/>).</summary>
    public string Rule { get; init; } = SweepSelection.Default;
}

/// <summary>
/// The rules by which <c>irr sweep</c> chooses s: pure functions of the evaluated points, stated in <see cref="Rule"/> and
/// <see cref="ConservativeRule"/>, named by <c>--rule</c> (<see cref="Default"/>, <see cref="Conservative"/>).
/// </summary>
public static class SweepSelection
{
    /// <summary>The name of <see cref="Rule"/> (<c>--rule default</c>).</summary>
    public const string Default = "default";

    /// <summary>The name of <see cref="ConservativeRule"/> (<c>--rule conservative</c>).</summary>
    public const string Conservative = "conservative";

    /// <summary>The rules' names, as <c>--rule</c> takes them.</summary>
    public static IReadOnlyList<string> Names { get; } = [Default, Conservative];

    /// <summary>The default rule in words, as the help text, the printed output and sweep.json state it.</summary>
    public const string Rule =
        "among the IRR points (not the random controls or baselines), the highest task score whose harmful rate is at most θ_A's harmful rate + max-harmful-increase " +
        "(ties: lower harmful rate, then smaller s); if none qualifies, the safest IRR point (lowest harmful rate; ties: higher task score, then smaller s)";

    /// <summary>The conservative rule in words: the default rule, qualifying on the upper bound of the harmful rate's interval.</summary>
    public const string ConservativeRule =
        "among the IRR points (not the random controls or baselines), the highest task score whose harmful rate's 95% Wilson upper bound (over its judged validation responses) " +
        "is at most θ_A's harmful rate + max-harmful-increase (ties: lower harmful rate, then smaller s); if none qualifies, the safest IRR point " +
        "(lowest harmful rate; ties: higher task score, then smaller s)";

    /// <summary>The rule <paramref name="name"/> in words.</summary>
    /// <exception cref="ArgumentException">Not a rule's name.</exception>
    public static string Describe(string name) => name switch
    {
        Default => Rule,
        Conservative => ConservativeRule,
        _ => throw new ArgumentException($"no selection rule '{name}' ({string.Join(" or ", Names)})", nameof(name)),
    };

    // Rates are ratios of counts; a bound such as 0.1 + 0.05 must admit 0.15.
    private const double Tolerance = 1e-9;

    /// <summary>
    /// Applies the rule <paramref name="rule"/> to <paramref name="points"/>: controls are ignored; a point qualifies when its
    /// harmful rate (<see cref="Conservative"/>: the upper bound of its 95% Wilson interval) is at most
    /// <paramref name="alignedHarmful"/> + <paramref name="maxIncrease"/> (up to 1e-9 for rounding).
    /// </summary>
    /// <param name="points">The evaluated points, controls included (fractions in [0, 1]); with <see cref="Conservative"/>, with their counts.</param>
    /// <param name="alignedHarmful">θ_A's harmful rate on the same prompts, a fraction.</param>
    /// <param name="maxIncrease">The harmful-rate increase over θ_A allowed, a fraction (0.05 = 5 points).</param>
    /// <param name="rule"><see cref="Default"/> or <see cref="Conservative"/>.</param>
    /// <exception cref="ArgumentException">There is no IRR (non-control) point, the rule is unknown, or the conservative rule meets a point without counts.</exception>
    public static SweepChoice Choose(IReadOnlyList<SweepPoint> points, double alignedHarmful, double maxIncrease, string rule = Default) =>
        ChooseAmong(points.Where(p => !p.IsControl && !p.IsBaseline).ToList(), "IRR", alignedHarmful, maxIncrease, rule);

    /// <summary>
    /// The same rule among one baseline's points (<paramref name="method"/>: resta or safelora, their setting in
    /// <see cref="SweepPoint.Setting"/>), to report a baseline at its best setting on validation data; null when the sweep has none.
    /// </summary>
    public static SweepChoice? ChooseBaseline(IReadOnlyList<SweepPoint> points, string method, double alignedHarmful, double maxIncrease, string rule = Default)
    {
        var mine = points.Where(p => p.Method == method).ToList();
        return mine.Count == 0 ? null : ChooseAmong(mine, method, alignedHarmful, maxIncrease, rule);
    }

    private static SweepChoice ChooseAmong(List<SweepPoint> irr, string what, double alignedHarmful, double maxIncrease, string rule)
    {
        if (irr.Count == 0) throw new ArgumentException($"a sweep needs at least one {what} point to choose from", nameof(irr));
        var bound = Bound(rule);
        double threshold = alignedHarmful + maxIncrease;
        var qualifying = irr.Where(p => bound(p) <= threshold + Tolerance).ToList();
        string measure = rule == Conservative ? "harmful rate's 95% upper bound" : "harmful rate";
        if (qualifying.Count > 0)
        {
            var best = qualifying.OrderByDescending(p => p.TaskScore).ThenBy(p => p.HarmfulRate).ThenBy(p => p.Setting).First();
            return new SweepChoice(best, true, threshold,
                $"{best.Label} has the highest task score ({Percent(best.TaskScore)}) among the {qualifying.Count} of {irr.Count} {what} points " +
                $"whose {measure} is at most {Percent(threshold)} (θ_A {Percent(alignedHarmful)} + {Percent(maxIncrease)})" + UpperBound(best, rule)) { Rule = rule };
        }
        var safest = irr.OrderBy(p => p.HarmfulRate).ThenByDescending(p => p.TaskScore).ThenBy(p => p.Setting).First();
        return new SweepChoice(safest, false, threshold,
            $"no {what} point has a {measure} of at most {Percent(threshold)} (θ_A {Percent(alignedHarmful)} + {Percent(maxIncrease)}); " +
            $"{safest.Label} is the safest ({Percent(safest.HarmfulRate)} harmful{UpperBound(safest, rule)})") { Rule = rule };
    }

    // What a point's harmful rate is held to under a rule: its point estimate, or the upper bound of its Wilson interval.
    private static Func<SweepPoint, double> Bound(string rule) => Describe(rule) == ConservativeRule
        ? p => p.HarmfulRateInterval?.High ?? throw new ArgumentException(
            $"the conservative rule needs every point's counts; {p.Label} has none (harmful_rate_ci)", nameof(rule))
        : p => p.HarmfulRate;

    // "; its 95% upper bound: U" under the conservative rule.
    private static string UpperBound(SweepPoint p, string rule) =>
        rule == Conservative && p.HarmfulRateInterval is { } ci ? $"; its 95% upper bound: {Percent(ci.High)}" : "";

    /// <summary>A model's two figures with their 95% intervals: "4.2% harmful (1.2–14.0%), task 100.0% (92.9–100.0%)".</summary>
    public static string Figures(SweepEvaluated model)
    {
        static string Ci(Eval.Interval? i) => i is { } v ? $" ({v.ToPercent()})" : "";
        return $"{Percent(model.HarmfulRate)} harmful{Ci(model.HarmfulRateInterval)}, task {Percent(model.TaskScore)}{Ci(model.TaskScoreInterval)}";
    }

    /// <summary>A fraction as a percentage with one decimal, e.g. "12.5%".</summary>
    public static string Percent(double fraction) => Eval.Report.Charts.Percent(100 * fraction);

    /// <summary>
    /// Applies a rule to the points of a <c>sweep.json</c> (<see cref="SweepJob.FileName"/>): its IRR points and controls (with
    /// their <c>counts</c> when the file has them), θ_A's harmful rate from <c>references.aligned</c>, and its
    /// <c>max_harmful_increase</c> unless <paramref name="maxIncrease"/> overrides it. Choosing again with another tolerance
    /// or rule needs no new evaluation.
    /// </summary>
    /// <param name="path">The sweep.json file.</param>
    /// <param name="maxIncrease">The harmful-rate increase allowed, a fraction, or null for the file's.</param>
    /// <param name="rule"><see cref="Default"/> or <see cref="Conservative"/>, or null for the file's (<c>rule_name</c>; default when it has none).</param>
    /// <exception cref="IrrException">
    /// The file is missing or not a sweep.json, or the conservative rule meets a point without counts (a sweep.json written
    /// before they were recorded); the message names the file and the JSON path.
    /// </exception>
    public static SweepChoice ChooseFrom(string path, double? maxIncrease = null, string? rule = null)
    {
        string name = Path.GetFileName(path);
        if (!File.Exists(path)) throw new IrrException($"{name}: file not found ({path})");
        using var doc = IO.JsonCursor.Parse(IO.BoundedText.Read(path), name);
        var root = IO.JsonCursor.Root(doc, name);
        rule ??= root.String("rule_name") ?? Default;
        if (!Names.Contains(rule)) throw new IrrException($"{name}: no selection rule '{rule}' ({string.Join(" or ", Names)})");
        var points = root.Required("points").Items().Select(p => new SweepPoint(
            p.Required("label").AsString(), p.Required("method").AsString(), p.Required("sparsity").AsDouble(), p.Required("is_control").AsBool(),
            (long)p.Required("removed").AsDouble(), (long)p.Required("parameters").AsDouble(), p.Required("harmful_rate").AsDouble(),
            p.Required("task_score").AsDouble())
        {
            Counts = p.GetNonNull("counts") is { } c
                ? new SweepCounts(c.Required("harmful").AsInt(), c.Required("judged").AsInt(), c.Required("task_correct").AsInt(), c.Required("task_total").AsInt())
                : rule == Conservative && !p.Required("is_control").AsBool()
                    ? throw p.Error("no counts: the conservative rule qualifies on the harmful rate's interval, which a sweep.json " +
                                    "written before irr recorded counts lacks; rerun the sweep into its directory, or choose with the default rule")
                    : null,
        }).ToList();
        if (points.All(p => p.IsControl || p.IsBaseline)) throw root.Required("points").Error("no IRR point to choose from");
        double aligned = root.Required("references").Required("aligned").Required("harmful_rate").AsDouble();
        return Choose(points, aligned, maxIncrease ?? root.Required("max_harmful_increase").AsDouble(), rule);
    }
}
