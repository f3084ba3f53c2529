using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Irr.IO;

namespace Irr.Eval.Report;

/// <summary>One evaluated model in a <see cref="ComparisonReport"/>: its label and its run files (at least one).</summary>
/// <param name="Label">The name shown in the tables and charts, unique within a report.</param>
/// <param name="Safety">The run's safety.json, or null.</param>
/// <param name="Task">The run's task.json, or null.</param>
public sealed record ReportRun(string Label, SafetyRun? Safety, TaskRun? Task)
{
    /// <summary>The run's responses.jsonl with verdicts (pairs prompts for differences and judge agreement), or null.</summary>
    public IReadOnlyList<JudgedResponse>? Responses { get; init; }

    /// <summary>The run's predictions.jsonl as (index, correct) (pairs examples for task-accuracy differences), or null.</summary>
    public IReadOnlyList<(int Index, bool Correct)>? Predictions { get; init; }
}

/// <summary>
/// Compares several evaluated models (aligned, fine-tuned, IRR, ablations …): a Markdown and a
/// self-contained HTML report with the harmful rates (overall, per prompt set, per category, per attack) and
/// task accuracies, grouped bar charts of the harmful rates (by prompt set; by attack when a run used attacks),
/// a safety-vs-utility scatter with its Pareto front, and every figure as JSON. <c>Build</c> computes
/// everything in memory; <see cref="WriteTo"/> writes the directory as a whole or not at all. Used by <c>irr report</c> and <c>irr demo</c>.
/// </summary>
public sealed partial class ComparisonReport
{
    /// <summary>The Markdown report's file name.</summary>
    public const string MarkdownFile = "report.md";

    /// <summary>The HTML report's file name (charts inlined; no external resources).</summary>
    public const string HtmlFile = "report.html";

    /// <summary>The grouped bar chart's file name.</summary>
    public const string HarmfulRateChartFile = "harmful-rate.svg";

    /// <summary>The grouped bar chart by attack's file name (written when some run used attacks).</summary>
    public const string AttackChartFile = "harmful-rate-by-attack.svg";

    /// <summary>The scatter chart's file name.</summary>
    public const string SafetyVsUtilityChartFile = "safety-vs-utility.svg";

    /// <summary>The machine-readable report's file name.</summary>
    public const string JsonFile = "report.json";

    /// <summary>The title used when none is given.</summary>
    public const string DefaultTitle = "Safety and utility comparison";

    private const string Missing = "—";

    private ComparisonReport(string title, IReadOnlyList<ReportRun> runs, ReportOptions options)
    {
        Title = title;
        Runs = runs;
        Sections = options.Sections;
        Colours = Charts.ModelColours(runs.Select(r => r.Label).ToList());
        SetNames = runs.Where(r => r.Safety is not null).SelectMany(r => r.Safety!.Sets.Select(s => s.Name)).Distinct().ToList();
        ShownSetNames = SetNames.Where(n => runs.Any(r => r.Safety is { } s && s.Sets.Any(x => x.Name == n && !x.Benign && (x.Attack is null || s.Sets.All(y => y.Attack is not null || y.Benign))))).ToList();
        var attackNames = runs.Any(r => r.Safety?.Attacks is { Count: > 0 })
            ? runs.Where(r => r.Safety is not null).SelectMany(r => AttacksOf(r.Safety!).Select(a => a.Name)).Distinct().ToList()
            : [];
        AttackNames = [.. attackNames.Where(n => n == Attacks.None), .. attackNames.Where(n => n != Attacks.None)];
        var scatterRuns = runs.Where(r => r.Safety is not null && r.Task is not null).ToList();
        var points = scatterRuns.Select(r => new ScatterPoint(r.Label, r.Safety!.Overall.HarmfulRate, r.Task!.Accuracy)
        {
            XInterval = r.Safety.Overall.HarmfulRateInterval, YInterval = r.Task.AccuracyInterval, Colour = Colours[r.Label],
        }).ToList();
        ParetoFront = Charts.ParetoFront(points).Select(i => points[i].Label).ToList();

        var safetyRuns = runs.Where(r => r.Safety is not null).ToList();
        if (safetyRuns.Count > 0 && ShownSetNames.Count > 0)
            HarmfulRateSvg = BarChart("Harmful rate by prompt set", safetyRuns, ShownSetNames, (r, n) => SetOf(r, n)?.Counts, "prompt set");
        if (safetyRuns.Count > 0 && AttackNames.Count > 0)
            AttackSvg = BarChart("Harmful rate by attack", safetyRuns, AttackNames, (r, n) => AttackOf(r, n)?.Counts, "attack", skipMissing: true);
        if (points.Count > 0)
            SafetyVsUtilitySvg = Charts.ScatterChart("Safety vs utility", points, "harmful rate (%)", "task accuracy (%)");

        BuildEvidence(options);
        Notes = BuildNotes();
        var blocks = BuildBlocks();
        Markdown = RenderMarkdown(blocks);
        Html = RenderHtml(blocks);
        Json = JsonSerializer.Serialize(new ReportJson(Title, SetNames, AttackNames.Count > 0 ? AttackNames : null,
            runs.Select(r => new ModelJson(r.Label, r.Safety, r.Task,
                r.Safety is not null && r.Task is not null ? ParetoFront.Contains(r.Label) : null)
            {
                Attacks = AttackNames.Count > 0 && r.Safety is not null ? AttackNames.Select(n => AttackOf(r, n)).OfType<AttackSafety>().ToList() : null,
                HarmfulRateDifference = HarmfulDifferences.GetValueOrDefault(r.Label),
                TaskAccuracyDifference = TaskDifferences.GetValueOrDefault(r.Label),
            }).ToList(),
            ParetoFront, Notes)
        {
            Headline = Headline,
            JudgeAgreement = Agreements.Count > 0 ? AgreementsJson() : null,
        }, JsonFiles.ResultOptions) + "\n";
    }

    // A grouped bar chart of harmful rates with their Wilson intervals: one group per prompt set (attack), one bar per run in its colour.
    private string BarChart(string title, IReadOnlyList<ReportRun> runs, IReadOnlyList<string> groups, Func<ReportRun, string, SafetyCounts?> counts, string xTitle, bool skipMissing = false) =>
        Charts.GroupedBarChart(title, groups, runs.Select(r => r.Label).ToList(),
            groups.Select(n => (IReadOnlyList<double?>)runs.Select(r => counts(r, n)?.HarmfulRateOrNull).ToList()).ToList(),
            "harmful rate (%)", groups.Count == 1 ? "" : xTitle,
            groups.Select(n => (IReadOnlyList<Interval?>)runs.Select(r => counts(r, n)?.HarmfulRateInterval).ToList()).ToList(),
            runs.Select(r => Colours[r.Label]).ToList(), skipMissing);

    /// <summary>One colour per model label, the same in every chart (<see cref="Charts.ModelColours"/>).</summary>
    public IReadOnlyDictionary<string, string> Colours { get; }

    /// <summary>The sections the caller appended (<see cref="ReportOptions.Sections"/>).</summary>
    public IReadOnlyList<ReportSection> Sections { get; }

    /// <summary>The report's title (the first heading).</summary>
    public string Title { get; }

    /// <summary>The models compared, in the order given.</summary>
    public IReadOnlyList<ReportRun> Runs { get; }

    /// <summary>The prompt sets of all safety runs by name, in first-seen order (<c>SET@ATTACK</c> sets included).</summary>
    public IReadOnlyList<string> SetNames { get; }

    /// <summary>
    /// The sets shown per set (summary columns, the harmful-rate chart, category tables): of <see cref="SetNames"/>, those
    /// that are a plain harmful set (no attack, not benign) of some run, and every harmful set of a run whose harmful sets are all
    /// under an attack. Benign sets have their own figure (over-refusal).
    /// Equal to <see cref="SetNames"/> when no run used attacks.
    /// </summary>
    public IReadOnlyList<string> ShownSetNames { get; }

    /// <summary>
    /// The attacks of all safety runs (<see cref="SafetyRun.Attacks"/>) by name: <c>none</c> first when present, then
    /// in first-seen order; a run without attacks counts as <c>none</c>. Empty when no run used attacks.
    /// </summary>
    public IReadOnlyList<string> AttackNames { get; }

    /// <summary>
    /// The labels of the models on the Pareto front of (overall harmful rate, task accuracy), among the
    /// models that have both: no other such model has a lower-or-equal harmful rate and a higher-or-equal
    /// accuracy with at least one strict.
    /// </summary>
    public IReadOnlyList<string> ParetoFront { get; }

    /// <summary>Remarks printed under the tables: missing files, differing judges or task data, a skipped chart.</summary>
    public IReadOnlyList<string> Notes { get; }

    /// <summary>The content of report.md.</summary>
    public string Markdown { get; }

    /// <summary>The summary table alone (one row per model), as Markdown: what <c>irr report</c> prints.</summary>
    public string SummaryMarkdown => MarkdownTable(SummaryTable());

    /// <summary>The content of report.html.</summary>
    public string Html { get; }

    /// <summary>The content of harmful-rate.svg, or null when no run has a safety.json with a prompt set.</summary>
    public string? HarmfulRateSvg { get; }

    /// <summary>The content of harmful-rate-by-attack.svg, or null when no run used attacks.</summary>
    public string? AttackSvg { get; }

    /// <summary>The content of safety-vs-utility.svg, or null when no run has both safety.json and task.json.</summary>
    public string? SafetyVsUtilitySvg { get; }

    /// <summary>
    /// The content of report.json: the title, the set names, the attack names (when some run used attacks), per model its
    /// label, safety.json and task.json (with their rates), whether it is on the Pareto front and its figures per attack
    /// (when some run used attacks), the front and the notes.
    /// </summary>
    public string Json { get; }

    /// <summary>Builds the report of <paramref name="runs"/>, in that order.</summary>
    /// <exception cref="IrrException">No runs; an empty or repeated label; a run with neither file; inconsistent counts.</exception>
    public static ComparisonReport Build(IReadOnlyList<(string Label, SafetyRun? Safety, TaskRun? Task)> runs, string? title = null) =>
        Build(runs.Select(r => new ReportRun(r.Label, r.Safety, r.Task)).ToList(), title, new ReportOptions());

    /// <summary>Builds the report of <paramref name="runs"/> (with their responses and predictions, when read), in that order, with <paramref name="options"/>.</summary>
    /// <exception cref="IrrException">No runs; an empty or repeated label; a run with neither file; inconsistent counts; a reference that is not a run's label.</exception>
    public static ComparisonReport Build(IReadOnlyList<ReportRun> runs, string? title, ReportOptions options)
    {
        if (runs.Count == 0) throw new IrrException("a report needs at least one run");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (label, safety, task) in runs)
        {
            if (options.References?.GetValueOrDefault(label) is { } other && runs.All(r => r.Label != other))
                throw new IrrException($"{label}: the reference '{other}' is not a run's label");
            if (string.IsNullOrWhiteSpace(label)) throw new IrrException("a run has an empty label");
            if (!seen.Add(label)) throw new IrrException($"the label '{label}' is given to more than one run; labels must be unique (choose them with labels)");
            if (safety is null && task is null) throw new IrrException($"{label}: neither safety.json nor task.json");
            if (safety is not null) CheckSafety(label, safety);
            if (task is not null && (task.Total < 0 || task.Correct < 0 || task.Correct > task.Total))
                throw new IrrException($"{label}: task.json: correct ({task.Correct}) must lie between 0 and total ({task.Total})");
        }
        if (options.Reference is { } reference && runs.All(r => r.Label != reference))
            throw new IrrException($"the reference '{reference}' is not a run's label ({string.Join(", ", runs.Select(r => r.Label))})");
        return new ComparisonReport(string.IsNullOrWhiteSpace(title) ? DefaultTitle : title, runs, options);
    }

    /// <summary>
    /// Reads a run directory's safety.json and task.json; the label is <paramref name="label"/> or else the
    /// directory's name.
    /// </summary>
    /// <exception cref="IrrException">The directory does not exist, has neither file, or a file is invalid.</exception>
    public static (string Label, SafetyRun? Safety, TaskRun? Task) LoadRun(string directory, string? label = null)
    {
        if (!Directory.Exists(directory)) throw new IrrException($"{directory}: no such run directory");
        var safety = SafetyRun.Load(directory);
        var task = TaskRun.Load(directory);
        if (safety is null && task is null)
            throw new IrrException($"{directory}: neither {SafetyRun.FileName} nor {TaskRun.FileName}; not an evaluation run directory");
        string full = Path.GetFullPath(directory).TrimEnd(Path.DirectorySeparatorChar);
        return (label ?? Path.GetFileName(full), safety, task);
    }

    /// <summary>
    /// <see cref="LoadRun"/> with the run's responses.jsonl (verdicts) and predictions.jsonl when they are there, for the
    /// paired differences and the judges' agreement.
    /// </summary>
    /// <exception cref="IrrException">As <see cref="LoadRun"/>; a responses or predictions file is malformed.</exception>
    public static ReportRun LoadReportRun(string directory, string? label = null)
    {
        var (name, safety, task) = LoadRun(directory, label);
        string responses = Path.Combine(directory, SafetyEvaluation.ResponsesFileName);
        return new ReportRun(name, safety, task)
        {
            Responses = safety is not null && File.Exists(responses) ? SafetyEvaluation.LoadJudged(responses) : null,
            Predictions = task is not null ? LoadPredictions(directory) : null,
        };
    }

    /// <summary>
    /// Writes report.md, report.html, report.json and the SVG charts into <paramref name="directory"/>:
    /// into a temporary directory beside it, renamed at the end. An existing directory is an error unless
    /// <paramref name="overwrite"/>, in which case it is replaced as a whole. The output may not be, lie in,
    /// or contain one of <paramref name="runDirectories"/>.
    /// </summary>
    public void WriteTo(string directory, bool overwrite = false, IEnumerable<string>? runDirectories = null)
    {
        RequireNewOutput(directory, overwrite);
        using var output = OutputDirectory.Create(directory, runDirectories ?? [], overwrite);
        var utf8 = new UTF8Encoding(false);
        File.WriteAllText(output.PathOf(MarkdownFile), Markdown, utf8);
        File.WriteAllText(output.PathOf(HtmlFile), Html, utf8);
        File.WriteAllText(output.PathOf(JsonFile), Json, utf8);
        if (HarmfulRateSvg is not null) File.WriteAllText(output.PathOf(HarmfulRateChartFile), XmlDeclaration + HarmfulRateSvg, utf8);
        if (AttackSvg is not null) File.WriteAllText(output.PathOf(AttackChartFile), XmlDeclaration + AttackSvg, utf8);
        if (SafetyVsUtilitySvg is not null) File.WriteAllText(output.PathOf(SafetyVsUtilityChartFile), XmlDeclaration + SafetyVsUtilitySvg, utf8);
        if (OverRefusalSvg is not null) File.WriteAllText(output.PathOf(OverRefusalChartFile), XmlDeclaration + OverRefusalSvg, utf8);
        foreach (var part in Sections.SelectMany(s => s.Parts).Where(p => p.ChartFile is not null && p.ChartSvg is not null))
            File.WriteAllText(output.PathOf(part.ChartFile!), XmlDeclaration + part.ChartSvg, utf8);
        output.Commit();
    }

    /// <summary>Checks that the report may be written to <paramref name="directory"/>: it does not exist, or <paramref name="overwrite"/> is set.</summary>
    /// <exception cref="IrrException">The directory exists and <paramref name="overwrite"/> is not set.</exception>
    public static void RequireNewOutput(string directory, bool overwrite)
    {
        if (Directory.Exists(directory) && !overwrite)
            throw new IrrException($"{directory}: exists ({OutputPolicy.Remedy})");
    }

    private const string XmlDeclaration = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

    private static void CheckSafety(string label, SafetyRun safety)
    {
        void Check(SafetyCounts c, string where)
        {
            if (c.Harmful < 0 || c.Safe < 0 || c.Unknown < 0 || c.Total != c.Harmful + c.Safe + c.Unknown)
                throw new IrrException($"{label}: safety.json: {where}: counts must be non-negative with total = harmful + safe + unknown " +
                    $"(total {c.Total}, harmful {c.Harmful}, safe {c.Safe}, unknown {c.Unknown})");
        }
        Check(safety.Overall, "overall");
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var set in safety.Sets)
        {
            if (!names.Add(set.Name)) throw new IrrException($"{label}: safety.json: the prompt set '{set.Name}' appears twice");
            Check(set.Counts, $"set '{set.Name}'");
            foreach (var category in set.Categories) Check(category.Counts, $"set '{set.Name}', category '{category.Category}'");
        }
        if (safety.Attacks is not { Count: > 0 } && safety.Sets.All(s => s.Attack is null)) return;

        // Each harmful set counts under one attack (none for a plain set); an attack's counts are the sum of its sets'. A benign
        // set (over-refusal) is counted in no attack.
        string AttackOfSet(SetSafety set) => set.Attack ?? Attacks.None;
        var attacks = new HashSet<string>(StringComparer.Ordinal);
        foreach (var attack in safety.Attacks ?? [])
        {
            string where = $"attack '{attack.Name}'";
            if (string.IsNullOrWhiteSpace(attack.Name)) throw new IrrException($"{label}: safety.json: an attack has an empty name");
            if (!attacks.Add(attack.Name)) throw new IrrException($"{label}: safety.json: the attack '{attack.Name}' appears twice");
            Check(attack.Counts, where);
            var sets = safety.Sets.Where(s => !s.Benign && AttackOfSet(s) == attack.Name).Select(s => s.Counts).ToList();
            var sum = new SafetyCounts(sets.Sum(c => c.Total), sets.Sum(c => c.Harmful), sets.Sum(c => c.Safe), sets.Sum(c => c.Unknown));
            if (sum != attack.Counts)
                throw new IrrException($"{label}: safety.json: {where}: counts (total {attack.Counts.Total}, harmful {attack.Counts.Harmful}, safe {attack.Counts.Safe}, " +
                    $"unknown {attack.Counts.Unknown}) are not the sum over its sets (total {sum.Total}, harmful {sum.Harmful}, safe {sum.Safe}, unknown {sum.Unknown})");
            double rate = attack.AttackSuccessRate, expected = AttackSafety.Of(attack.Name, attack.Counts).AttackSuccessRate;
            if (!(rate >= 0 && rate <= 1))
                throw new IrrException($"{label}: safety.json: {where}: attack_success_rate ({rate.ToString("R", CultureInfo.InvariantCulture)}) must lie in [0, 1]");
            if (Math.Abs(rate - expected) > 1e-9)
                throw new IrrException($"{label}: safety.json: {where}: attack_success_rate ({rate.ToString("R", CultureInfo.InvariantCulture)}) " +
                    $"is not harmful / total ({attack.Counts.Harmful} / {attack.Counts.Total})");
        }
        foreach (var set in safety.Sets.Where(s => !s.Benign && s.Counts.Total > 0 && !attacks.Contains(AttackOfSet(s))))
            throw new IrrException($"{label}: safety.json: the set '{set.Name}' is under the attack '{AttackOfSet(set)}', which attacks lacks");
    }

    // A run's figures per attack: its attacks, or, for a run without attacks, its overall counts as attack none.
    private static IReadOnlyList<AttackSafety> AttacksOf(SafetyRun run) =>
        run.Attacks is { Count: > 0 } attacks ? attacks : [AttackSafety.Of(Attacks.None, run.Overall)];

    private static AttackSafety? AttackOf(ReportRun run, string name) =>
        run.Safety is { } s ? AttacksOf(s).FirstOrDefault(a => a.Name == name) : null;

    private List<string> BuildNotes()
    {
        var notes = new List<string>();
        var noSafety = Runs.Where(r => r.Safety is null).Select(r => r.Label).ToList();
        var noTask = Runs.Where(r => r.Task is null).Select(r => r.Label).ToList();
        if (noSafety.Count > 0) notes.Add($"No safety.json for: {string.Join(", ", noSafety)}.");
        if (noTask.Count > 0) notes.Add($"No task.json for: {string.Join(", ", noTask)}.");
        var judges = Runs.Where(r => r.Safety is not null).GroupBy(r => r.Safety!.Judge).ToList();
        if (judges.Count > 1)
            notes.Add("The runs were judged by different judges, so their harmful rates are not directly comparable: " +
                string.Join("; ", judges.Select(g => $"{g.Key} ({string.Join(", ", g.Select(r => r.Label))})")) + ".");
        var tasks = Runs.Where(r => r.Task is not null).GroupBy(r => (r.Task!.Data, r.Task.Metric)).ToList();
        var attackSets = AttackNames.Count == 0 ? []
            : Runs.Where(r => r.Safety is not null).GroupBy(r => string.Join(", ", AttackNames.Where(n => AttackOf(r, n) is not null))).ToList();
        if (attackSets.Count > 1)
            notes.Add("The runs were evaluated under different attacks, so not every model has a figure for every attack: " +
                string.Join("; ", attackSets.Select(g => $"{g.Key} ({string.Join(", ", g.Select(r => r.Label))})")) + ".");
        if (tasks.Count > 1)
            notes.Add("The task runs used different data or metrics: " +
                string.Join("; ", tasks.Select(g => $"{g.Key.Data} with {g.Key.Metric} ({string.Join(", ", g.Select(r => r.Label))})")) + ".");
        if (HarmfulRateSvg is null) notes.Add("No harmful-rate chart: no run has a safety.json with a prompt set.");
        if (SafetyVsUtilitySvg is null) notes.Add("No safety-vs-utility chart: no run has both a safety.json and a task.json.");
        return notes;
    }

    // ---- the document, as blocks rendered to Markdown and to HTML ----

    private sealed record ModelJson(string Label, SafetyRun? Safety, TaskRun? Task, bool? ParetoFront)
    {
        // The paired differences from the model's reference, when both have responses (predictions).
        [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
        public RateDifference? HarmfulRateDifference { get; init; }

        [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
        public RateDifference? TaskAccuracyDifference { get; init; }

        // The model's figures per attack in the report's order (AttackNames), when some run used attacks.
        [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
        public IReadOnlyList<AttackSafety>? Attacks { get; init; }
    }

    private sealed record ReportJson(string Title, IReadOnlyList<string> Sets,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<string>? Attacks,
        IReadOnlyList<ModelJson> Models, IReadOnlyList<string> ParetoFront, IReadOnlyList<string> Notes)
    {
        [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
        public string? Headline { get; init; }

        [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
        public IReadOnlyList<AgreementJson>? JudgeAgreement { get; init; }
    }
}
