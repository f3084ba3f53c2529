using System.Diagnostics;
using System.Text.Json.Nodes;
using Irr.Data;
using Irr.Eval;
using Irr.Eval.Report;
using Irr.IO;
using Irr.Jobs;
using Irr.Realign.Baselines;

namespace Irr.Realign;

/// <summary>
/// Runs a sweep's units into DIR, resuming: a model whose record (point.json, reference.json) holds the fingerprint asked for
/// now (<see cref="SweepFingerprints"/>, <see cref="UpToDate"/>) is done and skipped; any other is computed and recorded.
/// A whole sweep then chooses, places DIR/chosen and writes sweep.json and frontier.svg.
/// </summary>
/// <param name="job">The sweep, checked.</param>
/// <param name="sets">The harmful validation prompt sets, read once.</param>
/// <param name="examples">The task validation examples, read once.</param>
/// <param name="progress">One stream over the models run (<see cref="SweepJob.Run"/>).</param>
/// <param name="unit">The unit computed alone (<c>--point</c>), or null for a whole sweep.</param>
internal sealed class SweepRunner(SweepJob job, IReadOnlyList<PromptSet> sets, IReadOnlyList<TaskExample> examples, Action<JobProgress>? progress, SweepUnit? unit)
{
    private readonly string root = job.OutputPath;
    private readonly SweepFingerprints fingerprints = new(job, sets, examples);
    private readonly SweepEvaluation evaluation = new(job, sets, unit);
    private int realigned, resumed, position, baselinesMade, total;

    private string ReferenceDir(string label) => Path.Combine(root, "reference", label);

    private string PointDir(string label) => Path.Combine(root, "points", label);

    private string ModelDir(string label) => Path.Combine(PointDir(label), "model");

    private string ChosenDir => Path.Combine(root, "chosen");

    // What a record says about the run that made it: irr sweep --point K, --collect, or a whole sweep.
    private string Maker => unit is not null ? $"point {unit.Index}" : job.Collect ? "collect" : "sweep";

    /// <summary>Every unit, then the choice, DIR/chosen (the unchosen models deleted unless KeepModels), sweep.json and frontier.svg.</summary>
    public SweepResult Run()
    {
        var clock = Stopwatch.StartNew();
        var plan = SweepPlan.Of(job);
        var planned = plan.SelectMany(u => u.Points).ToList();
        total = planned.Count + 2;
        CheckBaselineInputs();
        CreateRoot();
        var units = KeepingOnStop(() => plan.Select(Compute).ToList()); // the references are the last two units
        var points = units.SelectMany(u => u.Points).ToList();
        var (aligned, finetuned) = (units[^2].Reference!, units[^1].Reference!);
        var choice = SweepSelection.Choose(points, aligned.HarmfulRate, job.MaxHarmfulIncrease, job.Rule);
        var baselines = SweepBaselines.All
            .Select(b => (b.Method, Choice: SweepSelection.ChooseBaseline(points, b.Method, aligned.HarmfulRate, job.MaxHarmfulIncrease, job.Rule)))
            .Where(b => b.Choice is not null).ToDictionary(b => b.Method, b => b.Choice!);
        var report = PlaceChosen(planned.Single(p => p.Label == choice.Point.Label), choice);
        if (!job.KeepModels)
            foreach (var p in planned)
                if (Directory.Exists(ModelDir(p.Label))) Directory.Delete(ModelDir(p.Label), recursive: true);
        var result = new SweepResult(points, aligned, finetuned, choice, report, ChosenDir, realigned, resumed)
        {
            Baselines = baselines, BaselinesMade = baselinesMade,
            UnitsComputed = units.Count(u => u.Computed), UnitsDoneEarlier = units.Count(u => !u.Computed),
        };
        var json = SweepRecords.SweepJson(job, result, units, ComputedBy, fingerprints.Shared(), clock.Elapsed.TotalSeconds);
        AtomicFile.WriteText(Path.Combine(root, SweepJob.FileName), JsonFiles.Format(json));
        AtomicFile.WriteText(Path.Combine(root, "frontier.svg"), FrontierChart.Of(result, job.Realign.Method, job.RandomControl));
        return result;
    }

    /// <summary>One unit alone (irr sweep --point): its models, resumed or computed, and nothing shared with other units.</summary>
    public SweepUnitResult RunUnit(PlannedUnit u)
    {
        total = u.Unit.Labels.Count;
        CheckBaselineInputs();
        CreateRoot();
        var run = KeepingOnStop(() => Compute(u));
        var dirs = u.Unit.Labels.Select(l => u.Unit.IsReference ? ReferenceDir(l) : PointDir(l)).ToList();
        return new SweepUnitResult(u.Unit, run.Points, run.Reference, dirs, realigned, resumed)
            { BaselinesMade = baselinesMade, JudgeCache = (evaluation.SafetyJob.Judge as HttpJudgeOptions)?.Cache };
    }

    // An interrupted sweep keeps its finished models (each with its record), and says so: a rerun resumes from them.
    private T KeepingOnStop<T>(Func<T> work)
    {
        try
        {
            return work();
        }
        catch (Exception) when (Interruption.Requested)
        {
            if (position > 0) Interruption.Keep($"kept {position} of {total} finished sweep models in {root}; run the same command to resume");
            throw;
        }
    }

    // DIR/points is made before anything else is written into DIR: that is what tells a sweep directory another job is writing
    // into from an unrelated one (SweepJob.Start).
    private void CreateRoot() => Directory.CreateDirectory(Path.Combine(root, "points"));

    // A unit's models: its points in order, or its reference; Computed when this run did at least one of them.
    private UnitRun Compute(PlannedUnit u)
    {
        int before = resumed;
        var points = u.Points.Select(RunPoint).ToList();
        var r = job.Realign;
        var reference = u.Unit.Label switch
        {
            _ when !u.Unit.IsReference => null,
            "aligned" => RunReference("aligned", r.Base, null),
            _ => RunReference("finetuned", r.Finetuned ?? r.Base, r.Finetuned is null ? r.Adapter : null),
        };
        return new UnitRun(u.Unit, points, reference, Computed: resumed - before < u.Unit.Labels.Count);
    }

    // Who computed each model of a unit, as its record says.
    private JsonObject ComputedBy(SweepUnit u) => new(u.Labels.Select(l => KeyValuePair.Create(l, SweepRecords.ComputedBy(
        u.IsReference ? Path.Combine(ReferenceDir(l), SweepJob.ReferenceFileName) : Path.Combine(PointDir(l), SweepJob.PointFileName)))));

    // The realignment of a point, into `output`: the very job irr realign runs with the same options.
    private RealignJob RealignJobOf(PlannedPoint p, string output) => p.ControlOf is { } irr
        ? job.Realign with
        {
            Card = job.Card,
            Method = RemovalMethods.RandomAtCount.Name, RemovalCounts = Path.Combine(PointDir(irr), RealignReport.FileName), Seed = job.Seed,
            OutputPath = output, Overwrite = true,
        }
        : job.Realign with { Card = job.Card, Sparsity = p.Setting, OutputPath = output, Overwrite = true };

    // A point: realigned (IRR, or its random control) or made by a baseline, into DIR/points/LABEL/model, then evaluated.
    private SweepPoint RunPoint(PlannedPoint p)
    {
        Interruption.ThrowIfRequested();
        var baseline = SweepBaselines.Of(p.Method);
        string reportName = baseline?.ReportFileName ?? RealignReport.FileName;
        string dir = PointDir(p.Label), record = Path.Combine(dir, SweepJob.PointFileName), reportCopy = Path.Combine(dir, reportName), output = ModelDir(p.Label);
        var fingerprint = fingerprints.Point(p, baseline is not null ? baseline.Job(job, p.Setting, output) : RealignJobOf(p, output));
        if (SweepRecords.Finished<SweepPoint>(record, fingerprint) is { } done && File.Exists(reportCopy))
            return Skip(p.Label, WithOutcomes(done, Path.Combine(dir, "eval")));

        var stage = Stage(p.Label, 3);
        (long Removed, long Parameters) counts = (0, 0);
        try
        {
            if (baseline is not null) MakeBaseline(baseline.Job(job, p.Setting, output), stage(0, ""));
            else counts = Realign(p, output, stage(0, ""));
        }
        catch
        {
            // Nothing of a point that failed stays behind (an earlier, finished point keeps its record).
            if (!File.Exists(record) && Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            throw;
        }
        AtomicFile.WriteText(reportCopy, File.ReadAllText(Path.Combine(output, reportName)));
        // A Safe LoRA point is an adapter on θ_A; every other point is a model.
        var (harmful, task) = baseline is { MakesAdapter: true }
            ? evaluation.Evaluate(p.Label, job.Realign.Base, output, Path.Combine(dir, "eval"), stage, 1)
            : evaluation.Evaluate(p.Label, output, null, Path.Combine(dir, "eval"), stage, 1);
        var point = new SweepPoint(p.Label, p.Method, p.Setting, p.ControlOf is not null, counts.Removed, counts.Parameters, harmful, task)
            { Outcomes = SweepOutcomes.Read(Path.Combine(dir, "eval")), Refusal = SweepEvaluation.OverRefusal(Path.Combine(dir, "eval")) };
        SweepRecords.Save(record, point, fingerprint, Maker);
        position++;
        return point;
    }

    // IRR (or the random control) at the point, as irr realign: the deltas removed and the target parameters.
    private (long Removed, long Parameters) Realign(PlannedPoint p, string output, Action<JobProgress> progress)
    {
        var report = RealignJobOf(p, output).Run(progress);
        realigned++;
        return (report.Modules.Sum(m => m.Removed), report.Modules.Sum(m => m.Parameters));
    }

    // A baseline point (irr baseline … at the point's setting), made into its output.
    private void MakeBaseline(IJob baseline, Action<JobProgress> progress)
    {
        baseline.Execute(progress);
        baselinesMade++;
    }

    // The swept baselines' own input checks (as their irr baseline commands make them), before any point is realigned.
    private void CheckBaselineInputs()
    {
        foreach (var b in SweepBaselines.All)
            if (b.CheckInputs is { } check && b.Settings(job).Count > 0) check(job);
    }

    private SweepReference RunReference(string label, string model, string? adapter)
    {
        Interruption.ThrowIfRequested();
        string dir = ReferenceDir(label), record = Path.Combine(dir, SweepJob.ReferenceFileName);
        var fingerprint = fingerprints.Reference(model, adapter);
        if (SweepRecords.Finished<SweepReference>(record, fingerprint) is { } done) return Skip(label, WithOutcomes(done, dir));
        // What an earlier run left for other options is replaced, not merged.
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        var (harmful, task) = evaluation.Evaluate(label, model, adapter, dir, Stage(label, 2), 0);
        var reference = new SweepReference(label, Provenance.Label(model)!, Provenance.Label(adapter), harmful, task) { Outcomes = SweepOutcomes.Read(dir), Refusal = SweepEvaluation.OverRefusal(dir) };
        SweepRecords.Save(record, reference, fingerprint, Maker);
        position++;
        return reference;
    }

    // A record of a sweep made before outcomes were recorded: its outcomes from its evaluation's files, when they are still there.
    private static T WithOutcomes<T>(T done, string evalDir) where T : SweepEvaluated =>
        done.Outcomes is null && SweepOutcomes.Read(evalDir) is { } read ? (T)((SweepEvaluated)done with { Outcomes = read }) : done;

    private T Skip<T>(string label, T done)
    {
        resumed++;
        progress?.Invoke(new JobProgress($"{label} ({position + 1}/{total}): done earlier", position + 1, total));
        position++;
        return done;
    }

    // The progress of a model's phases (each a 1/phases share of its unit): phase i reports its own stages, named after the model.
    private Func<int, string, Action<JobProgress>> Stage(string label, int phases) => (phase, what) => p =>
        progress?.Invoke(new JobProgress($"{label} ({position + 1}/{total}): {what}{p.Stage}",
            position + (phase + (p.Total > 0 ? Math.Min(1, p.Done / p.Total) : 1)) / phases, total, p.Processed, p.Unit));

    // DIR/chosen: the chosen point's model, moved (or copied, with KeepModels) from its point directory; realigned again
    // when an earlier run deleted it; left alone when it already holds this realignment. Its model card ends with the choice.
    private RealignReport PlaceChosen(PlannedPoint p, SweepChoice choice)
    {
        var evaluation = CardEvaluation(choice);
        string placedReport = Path.Combine(ChosenDir, RealignReport.FileName), pointReport = Path.Combine(PointDir(p.Label), RealignReport.FileName);
        if (SameRealignment(placedReport, pointReport)) return RealignReport.Load(placedReport);
        if (File.Exists(Path.Combine(ModelDir(p.Label), RealignReport.FileName)))
        {
            using var output = OutputDirectory.Create(ChosenDir, [], overwrite: true);
            if (job.KeepModels) CopyDirectory(ModelDir(p.Label), output.TemporaryPath);
            else
            {
                Directory.Delete(output.TemporaryPath);
                Directory.Move(ModelDir(p.Label), output.TemporaryPath);
            }
            string card = output.PathOf(ModelCard.FileName);
            if (job.Card.ModelCard && File.Exists(card)) File.AppendAllText(card, ModelCard.EvaluationSection(evaluation));
            output.Commit();
            return RealignReport.Load(placedReport);
        }
        total++; // one more realignment than planned
        var report = (RealignJobOf(p, ChosenDir) with { CardEvaluation = evaluation }).Run(Stage($"chosen: {p.Label} again", 1)(0, ""));
        realigned++;
        return report;
    }

    // The chosen point's validation figures and the rule, for DIR/chosen's model card.
    private IReadOnlyList<string> CardEvaluation(SweepChoice choice) =>
    [
        $"chosen by irr sweep: {choice.Point.Label} (s = {Number(choice.Point.Setting)})",
        $"validation harmful rate: {Number(choice.Point.HarmfulRate)} (allowed at most {Number(choice.Threshold)}: θ_A's + max-harmful-increase {Number(job.MaxHarmfulIncrease)})",
        $"validation task score ({job.TaskMetric}): {Number(choice.Point.TaskScore)}",
        $"choice: {choice.Reason}",
        $"rule: {SweepSelection.Describe(job.Rule)}",
    ];

    private static string Number(double value) => value.ToString("0.####", System.Globalization.CultureInfo.InvariantCulture);

    // Whether two irr-report.json files record the same inputs and options.
    private static bool SameRealignment(string a, string b)
    {
        if (!File.Exists(a) || !File.Exists(b)) return false;
        var (x, y) = (JsonFiles.ParseObject(BoundedText.Read(a), a), JsonFiles.ParseObject(BoundedText.Read(b), b));
        return JsonNode.DeepEquals(x["inputs"], y["inputs"]) && JsonNode.DeepEquals(x["options"], y["options"]);
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string file in Directory.GetFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        foreach (string sub in Directory.GetDirectories(from)) CopyDirectory(sub, Path.Combine(to, Path.GetFileName(sub)));
    }
}
