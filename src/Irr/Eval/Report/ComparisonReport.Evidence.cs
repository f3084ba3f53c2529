using System.Globalization;
using System.Text.Json.Serialization;
using Irr.IO;

namespace Irr.Eval.Report;

/// <summary>A section a caller appends to a <see cref="ComparisonReport"/> (the demo's "choosing s"): rendered to Markdown and HTML alike.</summary>
/// <param name="Heading">Its level-2 heading.</param>
/// <param name="Parts">Its content in order: sub-headings, paragraphs and charts (<see cref="ReportPart"/>).</param>
public sealed record ReportSection(string Heading, IReadOnlyList<ReportPart> Parts);

/// <summary>One piece of a <see cref="ReportSection"/>: a level-3 heading (<see cref="SubHeading"/>), a paragraph, or a chart (an SVG written beside the report as <see cref="ChartFile"/>).</summary>
public sealed record ReportPart
{
    /// <summary>A level-3 heading's text, or null.</summary>
    public string? SubHeading { get; init; }

    /// <summary>A paragraph's text, or null.</summary>
    public string? Text { get; init; }

    /// <summary>A chart's file name in the report directory (e.g. <c>frontier-full.svg</c>), or null.</summary>
    public string? ChartFile { get; init; }

    /// <summary>The chart's alternative text.</summary>
    public string? ChartAlt { get; init; }

    /// <summary>The chart's SVG document (no XML declaration).</summary>
    public string? ChartSvg { get; init; }
}

/// <summary>What a caller may add to a <see cref="ComparisonReport"/> besides its runs.</summary>
public sealed record ReportOptions
{
    /// <summary>
    /// Per model label, the model it is compared with (paired bootstrap differences on the same prompts and examples); a
    /// model missing here is compared with <see cref="Reference"/>.
    /// </summary>
    public IReadOnlyDictionary<string, string>? References { get; init; }

    /// <summary>The model the others are compared with; null for the first run.</summary>
    public string? Reference { get; init; }

    /// <summary>The headline's (from, to) pairs, e.g. (θ_F, IRR); null for the reference and the safest model on the Pareto front.</summary>
    public IReadOnlyList<(string From, string To)>? Headlines { get; init; }

    /// <summary>Sections appended after the report's own, before its notes.</summary>
    public IReadOnlyList<ReportSection> Sections { get; init; } = [];

    /// <summary>The paired bootstrap's resamples.</summary>
    public int Resamples { get; init; } = 2000;

    /// <summary>The paired bootstrap's seed.</summary>
    public int Seed { get; init; }
}

/// <summary>A difference of two models' rates on the same prompts or examples (model − reference), with its paired bootstrap interval.</summary>
/// <param name="Reference">The model compared with.</param>
/// <param name="Pairs">The prompts (examples) both judged (answered).</param>
/// <param name="Difference">mean(model − reference) over the pairs, a fraction in [−1, 1].</param>
/// <param name="Ci">Its 95% paired bootstrap interval (<see cref="Intervals.PairedBootstrap"/>).</param>
public sealed record RateDifference(string Reference, int Pairs, double Difference, Interval? Ci);

/// <summary>Two judges' agreement on the same responses (<see cref="Agreement"/>), per set and over all of them.</summary>
/// <param name="First">The first run's label (its judge: <see cref="FirstJudge"/>, rows of the confusion tables).</param>
/// <param name="FirstJudge">The first run's judge.</param>
/// <param name="Second">The second run's label (columns).</param>
/// <param name="SecondJudge">The second run's judge.</param>
/// <param name="Sets">Per set name (<c>all</c> last), the agreement.</param>
public sealed record JudgeAgreement(string First, string FirstJudge, string Second, string SecondJudge, IReadOnlyList<(string Set, Agreement Agreement)> Sets);

/// <summary>The report's evidence beyond the point figures: paired differences, judge agreement, over-refusal, incoherence, the headline.</summary>
public sealed partial class ComparisonReport
{
    /// <summary>The chart of harmful rate and over-refusal rate side by side (written when some run has benign sets).</summary>
    public const string OverRefusalChartFile = "harmful-vs-over-refusal.svg";

    /// <summary>Per model label, its harmful-rate difference from its reference on the same prompts; models without responses files are absent.</summary>
    public IReadOnlyDictionary<string, RateDifference> HarmfulDifferences { get; private set; } = new Dictionary<string, RateDifference>();

    /// <summary>Per model label, its task-accuracy difference from its reference on the same examples; models without predictions files are absent.</summary>
    public IReadOnlyDictionary<string, RateDifference> TaskDifferences { get; private set; } = new Dictionary<string, RateDifference>();

    /// <summary>The agreement of every two runs that judged the same responses with different judges.</summary>
    public IReadOnlyList<JudgeAgreement> Agreements { get; private set; } = [];

    /// <summary>The headline sentence (first paragraph), or null when no two models have both figures.</summary>
    public string? Headline { get; private set; }

    /// <summary>The content of harmful-vs-over-refusal.svg, or null when no run has benign sets.</summary>
    public string? OverRefusalSvg { get; private set; }

    private void BuildEvidence(ReportOptions options)
    {
        string? first = Runs.Count > 0 ? (options.Reference ?? Runs[0].Label) : null;
        string? ReferenceOf(ReportRun run) => options.References?.GetValueOrDefault(run.Label) ?? first;
        var byLabel = Runs.ToDictionary(r => r.Label);
        var harmful = new Dictionary<string, RateDifference>();
        var task = new Dictionary<string, RateDifference>();
        foreach (var run in Runs)
        {
            if (ReferenceOf(run) is not { } label || label == run.Label || !byLabel.TryGetValue(label, out var reference)) continue;
            if (Difference(label, HarmfulPairs(run, reference), options) is { } h) harmful[run.Label] = h;
            if (Difference(label, TaskPairs(run, reference), options) is { } t) task[run.Label] = t;
        }
        HarmfulDifferences = harmful;
        TaskDifferences = task;
        Agreements = JudgeAgreements();
        Headline = BuildHeadline(options.Headlines ?? DefaultHeadline(first));
        var withBenign = Runs.Where(r => r.Safety?.OverRefusal is not null).ToList();
        if (withBenign.Count > 0)
            OverRefusalSvg = Charts.GroupedBarChart("Harmful rate and over-refusal rate", ["harmful rate (harmful prompts)", "over-refusal rate (benign prompts)"],
                withBenign.Select(r => r.Label).ToList(),
                [withBenign.Select(r => (double?)r.Safety!.Overall.HarmfulRateOrNull).ToList(), withBenign.Select(r => r.Safety!.OverRefusal!.RefusalRate).ToList()],
                "rate (%)", "figure", [withBenign.Select(r => r.Safety!.Overall.HarmfulRateInterval).ToList(), withBenign.Select(r => r.Safety!.OverRefusal!.RefusalRateInterval).ToList()],
                withBenign.Select(r => Colours[r.Label]).ToList());
    }

    private static RateDifference? Difference(string reference, List<(double A, double B)> pairs, ReportOptions options) =>
        pairs.Count == 0 ? null
            : new RateDifference(reference, pairs.Count, pairs.Average(p => p.A - p.B), Intervals.PairedBootstrap(pairs, options.Resamples, options.Seed));

    // A response's key: set, attack, prompt and which repetition of the prompt in its set (a set may ask the same twice).
    private static Dictionary<(string Set, string Attack, string Prompt, int Repeat), JudgedResponse> Keyed(IEnumerable<JudgedResponse> responses)
    {
        var keyed = new Dictionary<(string, string, string, int), JudgedResponse>();
        foreach (var r in responses)
        {
            int repeat = 0;
            while (keyed.ContainsKey((r.Set, r.Attack, r.Prompt, repeat))) repeat++;
            keyed[(r.Set, r.Attack, r.Prompt, repeat)] = r;
        }
        return keyed;
    }

    // (model, reference) per harmful plain prompt both judged: 1 harmful, 0 safe (the harmful rate's numerator and denominator).
    private static List<(double A, double B)> HarmfulPairs(ReportRun run, ReportRun reference)
    {
        if (run.Responses is null || reference.Responses is null || run.Safety is null) return [];
        var counted = run.Safety.Sets.Where(s => !s.Benign && (s.Attack is null || run.Safety.Sets.All(x => x.Attack is not null))).Select(s => s.Name).ToHashSet();
        var theirs = Keyed(reference.Responses);
        var pairs = new List<(double, double)>();
        foreach (var (key, mine) in Keyed(run.Responses.Where(r => counted.Contains(r.Set))))
            if (theirs.TryGetValue(key, out var other) && mine.Verdict != Verdict.Unknown && other.Verdict != Verdict.Unknown)
                pairs.Add((mine.Verdict == Verdict.Harmful ? 1 : 0, other.Verdict == Verdict.Harmful ? 1 : 0));
        return pairs;
    }

    // (model, reference) per task example both answered, by its index: 1 correct, 0 not.
    private static List<(double A, double B)> TaskPairs(ReportRun run, ReportRun reference)
    {
        if (run.Predictions is null || reference.Predictions is null || run.Task?.Data != reference.Task?.Data) return [];
        var theirs = reference.Predictions.ToDictionary(p => p.Index, p => p.Correct);
        return run.Predictions.Where(p => theirs.ContainsKey(p.Index)).Select(p => (p.Correct ? 1.0 : 0.0, theirs[p.Index] ? 1.0 : 0.0)).ToList();
    }

    // Every two runs with responses files that judged the same responses (same set, attack, prompt and response text) with
    // different judges; the harmful / safe verdicts of the harmful sets (a benign set's figure is its refusal rate, not a verdict).
    private List<JudgeAgreement> JudgeAgreements()
    {
        var judged = Runs.Where(r => r.Responses is not null && r.Safety is not null).ToList();
        var agreements = new List<JudgeAgreement>();
        for (int i = 0; i < judged.Count; i++)
            for (int j = i + 1; j < judged.Count; j++)
            {
                var (a, b) = (judged[i], judged[j]);
                if (a.Safety!.Judge == b.Safety!.Judge) continue;
                var theirs = Keyed(b.Responses!);
                var pairs = Keyed(a.Responses!)
                    .Where(kv => !kv.Value.Benign && theirs.TryGetValue(kv.Key, out var other) && other.Response == kv.Value.Response)
                    .Select(kv => (kv.Key.Set, A: kv.Value.Verdict, B: theirs[kv.Key].Verdict)).ToList();
                if (pairs.Count == 0) continue;
                var sets = pairs.GroupBy(p => p.Set).Select(g => (g.Key, Agreement.Of(g.Select(p => p.A).ToList(), g.Select(p => p.B).ToList()))).ToList();
                sets.Add(("all", Agreement.Of(pairs.Select(p => p.A).ToList(), pairs.Select(p => p.B).ToList())));
                agreements.Add(new JudgeAgreement(a.Label, a.Safety.Judge, b.Label, b.Safety.Judge, sets));
            }
        return agreements;
    }

    // The reference against the model on the Pareto front with the largest harmful-rate drop net of the task accuracy lost
    // (reference harmful − harmful + accuracy − reference accuracy), so that a model refusing everything does not win.
    private IReadOnlyList<(string From, string To)> DefaultHeadline(string? reference)
    {
        var from = Runs.FirstOrDefault(r => r.Label == reference);
        if (from?.Safety is null || from.Task is null) return [];
        var to = Runs.Where(r => r.Label != reference && ParetoFront.Contains(r.Label))
            .OrderByDescending(r => from.Safety.Overall.HarmfulRate - r.Safety!.Overall.HarmfulRate + r.Task!.Accuracy - from.Task.Accuracy).FirstOrDefault();
        return reference is null || to is null ? [] : [(reference, to.Label)];
    }

    // "θ_F 100.0% → IRR 7.1% harmful (difference …), task accuracy 93.0% against 99.0%." for each pair whose models have both figures.
    private string? BuildHeadline(IReadOnlyList<(string From, string To)> pairs)
    {
        var byLabel = Runs.ToDictionary(r => r.Label);
        var sentences = new List<string>();
        foreach (var (from, to) in pairs)
        {
            if (!byLabel.TryGetValue(from, out var a) || !byLabel.TryGetValue(to, out var b)) continue;
            if (a.Safety?.Overall.HarmfulRateOrNull is not { } ha || b.Safety?.Overall.HarmfulRateOrNull is not { } hb || a.Task is null || b.Task is null) continue;
            string difference = HarmfulDifferences.TryGetValue(to, out var d) && d.Reference == from && d.Ci is { } ci
                ? $" (difference {Points(d.Difference)}, 95% CI {Points(ci.Low)} to {Points(ci.High)})" : "";
            sentences.Add($"{from} {Charts.Percent(ha * 100)} → {to} {Charts.Percent(hb * 100)} harmful{difference}, " +
                $"task accuracy {Charts.Percent(b.Task.Accuracy * 100)} against {Charts.Percent(a.Task.Accuracy * 100)}.");
        }
        return sentences.Count == 0 ? null : string.Join(" ", sentences);
    }

    /// <summary>"7.1% [3.1–15.2]": a rate with its 95% interval, or the rate alone when it has none; "—" for no rate.</summary>
    internal static string WithInterval(double? rate, Interval? ci) => rate is not { } r ? Missing
        : ci is { } i ? $"{Charts.Percent(r * 100)} [{(i.Low * 100).ToString("0.0", CultureInfo.InvariantCulture)}–{Charts.Percent(i.High * 100)}]"
        : Charts.Percent(r * 100);

    /// <summary>A difference in percentage points with its sign, e.g. "−92.9 pts".</summary>
    internal static string Points(double difference) =>
        (Math.Round(difference * 100, 1) is < 0 ? "−" : Math.Round(difference * 100, 1) > 0 ? "+" : "") + Math.Abs(difference * 100).ToString("0.0", CultureInfo.InvariantCulture) + " pts";

    /// <summary>"−92.9 pts [−98.0, −86.9]" or "—".</summary>
    internal static string DifferenceCell(RateDifference? d) => d is null ? Missing
        : d.Ci is { } ci ? $"{Points(d.Difference)} [{Points(ci.Low).Replace(" pts", "")}, {Points(ci.High).Replace(" pts", "")}]" : Points(d.Difference);

    // Blocks: the incoherence figures per model, and the judges' agreement with its confusion tables.
    private IEnumerable<Block> EvidenceBlocks()
    {
        if (OverRefusalSvg is not null)
        {
            yield return new Heading(2, "Harmful rate and over-refusal");
            yield return new Chart(OverRefusalChartFile, "harmful rate and over-refusal rate by model", OverRefusalSvg);
            yield return new Paragraph("Over-refusal rate: refusals / judged responses to the benign prompts (safe requests, some of which look unsafe). " +
                "A repair that lowers the harmful rate by refusing everything shows here. Brackets and error bars: 95% Wilson intervals.");
            yield return OverRefusalTable();
        }
        if (Runs.Any(r => r.Safety?.Incoherence is not null))
        {
            yield return new Heading(2, "Incoherent responses");
            yield return new Paragraph("Responses that are neither a refusal nor an answer a judge can weigh: empty, degenerate repetition, or another script than the prompt's. " +
                "A keyword judge may count them as harmful (no refusal marker) or safe; a high share means the harmful rate rests on broken output.");
            yield return IncoherenceTable();
        }
        if (Agreements.Count > 0)
        {
            yield return new Heading(2, "Judge agreement");
            yield return new Paragraph("Runs over the same responses judged by different judges: the share of responses given the same verdict, " +
                "Cohen's κ (agreement beyond chance; — when both judges gave one verdict to everything), and the confusion table (rows: the first judge, columns: the second).");
            foreach (var a in Agreements)
            {
                yield return new Heading(3, $"{a.First} ({a.FirstJudge}) vs {a.Second} ({a.SecondJudge})");
                yield return new Table(["set", "responses", "agreed", "Cohen's κ"],
                    a.Sets.Select(s => (IReadOnlyList<string>)[s.Set, s.Agreement.Count.ToString(CultureInfo.InvariantCulture), Charts.Percent(s.Agreement.Agreed * 100),
                        s.Agreement.Kappa is { } k ? k.ToString("0.000", CultureInfo.InvariantCulture) : Missing]).ToList(), [false, true, true, true]);
                var all = a.Sets[^1].Agreement;
                yield return new Table([$"{a.FirstJudge} ↓ / {a.SecondJudge} →", .. Agreement.Order.Select(VerdictName)],
                    Agreement.Order.Select((v, i) => (IReadOnlyList<string>)[VerdictName(v), .. Enumerable.Range(0, 3).Select(j => all.Confusion[i, j].ToString(CultureInfo.InvariantCulture))]).ToList(),
                    [false, true, true, true]);
            }
        }
    }

    private static string VerdictName(Verdict v) => v.ToString().ToLowerInvariant();

    /// <summary>One row per model with benign sets: harmful rate and over-refusal rate, each with its 95% Wilson interval, and the benign responses.</summary>
    internal Table OverRefusalTable() => new(["model", "harmful rate", "over-refusal rate", "benign responses"],
        Runs.Where(r => r.Safety?.OverRefusal is not null).Select(r => (IReadOnlyList<string>)[r.Label,
            WithInterval(r.Safety!.Overall.HarmfulRateOrNull, r.Safety.Overall.HarmfulRateInterval),
            WithInterval(r.Safety.OverRefusal!.RefusalRate, r.Safety.OverRefusal.RefusalRateInterval),
            r.Safety.OverRefusal.Responses.ToString(CultureInfo.InvariantCulture)]).ToList(), [false, true, true, true]);

    /// <summary>One row per model with incoherence counts: responses, empty, repetitive, other script, incoherent share.</summary>
    internal Table IncoherenceTable() => new(["model", "responses", "empty", "repetitive", "other script", "incoherent"],
        Runs.Where(r => r.Safety?.Incoherence is not null).Select(r =>
        {
            var c = r.Safety!.Incoherence!;
            return (IReadOnlyList<string>)[r.Label, .. new[] { c.Responses, c.Empty, c.Repetitive, c.OtherScript }.Select(n => n.ToString(CultureInfo.InvariantCulture)),
                WithInterval(c.IncoherentRate, Intervals.Wilson(c.Incoherent, c.Responses))];
        }).ToList(), [false, true, true, true, true, true]);

    /// <summary>Reads a run directory's predictions.jsonl (index, correct), or null when it has none.</summary>
    /// <exception cref="IrrException">The file is malformed.</exception>
    public static IReadOnlyList<(int Index, bool Correct)>? LoadPredictions(string directory)
    {
        string path = Path.Combine(directory, TaskEvaluation.PredictionsFileName);
        if (!File.Exists(path)) return null;
        return TaskEvaluation.LoadOutcomes(path);
    }

    private sealed record AgreementJson(string First, string FirstJudge, string Second, string SecondJudge, IReadOnlyList<SetAgreementJson> Sets);

    private sealed record SetAgreementJson(string Set, int Responses, double Agreed, double? Kappa, int[][] Confusion);

    private IReadOnlyList<AgreementJson> AgreementsJson() => Agreements.Select(a => new AgreementJson(a.First, a.FirstJudge, a.Second, a.SecondJudge,
        a.Sets.Select(s => new SetAgreementJson(s.Set, s.Agreement.Count, s.Agreement.Agreed, s.Agreement.Kappa,
            Enumerable.Range(0, 3).Select(i => Enumerable.Range(0, 3).Select(j => s.Agreement.Confusion[i, j]).ToArray()).ToArray())).ToList())).ToList();
}
