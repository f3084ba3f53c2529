using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Irr.Data;
using Irr.Eval;
using Irr.Eval.Report;
using Irr.IO;
using Irr.Jobs;

namespace Irr.Realign;

/// <summary>A reference model of a sweep (θ_A or θ_F), evaluated as the points are.</summary>
/// <param name="Label">aligned or finetuned (its directory under <c>DIR/reference/</c>).</param>
/// <param name="Model">The model directory evaluated.</param>
/// <param name="Adapter">The LoRA adapter merged into it (θ_F given as an adapter), or null.</param>
/// <param name="HarmfulRate">The harmful-response rate on the harmful validation prompts, a fraction in [0, 1].</param>
/// <param name="TaskScore">The task metric on the task validation data, a fraction in [0, 1].</param>
public sealed record SweepReference(string Label, string Model, string? Adapter, double HarmfulRate, double TaskScore);

/// <summary>What <see cref="SweepJob"/> found.</summary>
/// <param name="Points">Every point in the order run: per s, the IRR point, then its random control if asked for.</param>
/// <param name="Aligned">θ_A's figures.</param>
/// <param name="Finetuned">θ_F's figures.</param>
/// <param name="Choice">The chosen point and why (<see cref="SweepSelection.Rule"/>).</param>
/// <param name="ChosenReport">The chosen point's realignment report.</param>
/// <param name="ChosenModel">The chosen model's directory, <c>DIR/chosen</c>.</param>
/// <param name="Realigned">Realignments this run did (points done by an earlier run are not realigned again).</param>
/// <param name="Resumed">Points and references found done by an earlier run with the same options, and skipped.</param>
public sealed record SweepResult(IReadOnlyList<SweepPoint> Points, SweepReference Aligned, SweepReference Finetuned, SweepChoice Choice,
    RealignReport ChosenReport, string ChosenModel, int Realigned, int Resumed)
{
    /// <summary>Baseline points made in this run (not resumed).</summary>
    public int BaselinesMade { get; init; }

    /// <summary>Units (<see cref="SweepUnit"/>) every model of which an earlier run or a <c>--point</c> job had done.</summary>
    public int UnitsDoneEarlier { get; init; }

    /// <summary>Units at least one model of which this run computed.</summary>
    public int UnitsComputed { get; init; }

    /// <summary>Each baseline swept (resta, safelora) at its setting the same rule chooses among its own points; empty without baselines.</summary>
    public IReadOnlyDictionary<string, SweepChoice> Baselines { get; init; } = new Dictionary<string, SweepChoice>();
}

/// <summary>
/// One unit of a sweep: what one <c>irr sweep --point K</c> computes, never sharing a file with another unit, so that units
/// can run as independent jobs (a Slurm array task each) into one directory. Units are numbered from 0: one per value of s in
/// the order given (its IRR point, then its random control when asked for), then one per baseline point (RESTA's γ, then
/// Safe LoRA's τ, each in the order given), then the references aligned (θ_A) and finetuned (θ_F).
/// </summary>
/// <param name="Index">Its number, from 0 to the number of units − 1.</param>
/// <param name="Labels">The labels of the models it computes, in order (<c>irr-s0.5</c>, <c>random-s0.5</c>; <c>resta-g1</c>; <c>aligned</c>).</param>
public sealed record SweepUnit(int Index, IReadOnlyList<string> Labels)
{
    /// <summary>Its first label, which names it (its judge cache, sweep.json's units).</summary>
    public string Label => Labels[0];

    /// <summary>Whether it is a reference (θ_A or θ_F) rather than points.</summary>
    public bool IsReference => Label is "aligned" or "finetuned";
}

/// <summary>What one unit computed (<see cref="SweepJob.RunUnit"/>, <c>irr sweep --point K</c>).</summary>
/// <param name="Unit">The unit.</param>
/// <param name="Points">Its points in the order run (a unit of s: the IRR point, then its control); empty for a reference.</param>
/// <param name="Reference">A reference unit's figures, else null.</param>
/// <param name="Directories">Where its models' records went: <c>DIR/points/LABEL</c> or <c>DIR/reference/LABEL</c>.</param>
/// <param name="Realigned">Realignments this run did.</param>
/// <param name="Resumed">Models of the unit found done by an earlier run with the same options, and skipped.</param>
public sealed record SweepUnitResult(SweepUnit Unit, IReadOnlyList<SweepPoint> Points, SweepReference? Reference, IReadOnlyList<string> Directories,
    int Realigned, int Resumed)
{
    /// <summary>Baseline points made in this run (not resumed).</summary>
    public int BaselinesMade { get; init; }

    /// <summary>The HTTP judge's verdict cache this unit used (its own file, see <see cref="SweepJob.UnitJudgeCache"/>), or null.</summary>
    public string? JudgeCache { get; init; }
}

/// <summary>
/// <c>irr sweep</c> as a job: chooses IRR's sparsity s on validation data. For every s it realigns θ_F exactly as
/// <see cref="Realign"/> describes (the same <see cref="RealignJob"/> run, into <c>DIR/points/LABEL/model</c>) and, with
/// <see cref="RandomControl"/>, the random-removal control at that point's per-matrix counts; it evaluates each point,
/// θ_A and θ_F with <see cref="Safety"/> and <see cref="Task"/>, and chooses a point by <see cref="SweepSelection.Rule"/>.
/// Writes <c>DIR/points/LABEL/</c> (point.json, irr-report.json, eval/), <c>DIR/reference/{aligned,finetuned}/</c>,
/// <c>DIR/chosen/</c> (the chosen model), <c>DIR/sweep.json</c> and <c>DIR/frontier.svg</c> (docs/SWEEP.md). A rerun into
/// the same directory skips what is done with the same options. With <see cref="Point"/>, <see cref="RunUnit"/> computes one
/// <see cref="SweepUnit"/> only, so that a cluster's array tasks compute a sweep in parallel and a final run collects it.
/// </summary>
public sealed record SweepJob : IJob<SweepResult>
{
    /// <summary>The file name of a point's record inside <c>DIR/points/LABEL/</c>.</summary>
    public const string PointFileName = "point.json";

    /// <summary>The file name of a reference's record inside <c>DIR/reference/LABEL/</c>.</summary>
    public const string ReferenceFileName = "reference.json";

    /// <summary>The sweep's record inside <c>DIR</c>.</summary>
    public const string FileName = "sweep.json";

    /// <summary>
    /// The realignment of every point: inputs and options as <c>irr realign</c> takes them, with <see cref="RealignJob.Method"/>
    /// irr, irr-more or fisher-only. Its sparsity, strategy, removal counts, seed, dry run, output and overwrite are the sweep's
    /// to set and must be left at their defaults.
    /// </summary>
    public required RealignJob Realign { get; init; }

    /// <summary>
    /// The harmful-prompt evaluation of every model, as <c>irr eval safety</c> runs it: the validation prompt sets
    /// (<see cref="EvalSafetyJob.Prompts"/>, or <see cref="EvalSafetyJob.Sets"/> in memory), the judge (its options, or
    /// <see cref="EvalSafetyJob.CustomJudge"/>), system prompt, max new tokens, batch size and limit. Its model, adapter and
    /// output directory are the sweep's to set (give any <see cref="EvalSafetyJob.OutputDir"/>, e.g. ""); an HTTP judge's
    /// cache defaults to <c>DIR/judge-cache.jsonl</c>, shared by every model (with <see cref="Point"/>: the unit's own file, <see cref="UnitJudgeCache"/>).
    /// </summary>
    public required EvalSafetyJob Safety { get; init; }

    /// <summary>
    /// The task evaluation of every model, as <c>irr eval task</c> runs it: the validation data (<see cref="EvalTaskJob.Data"/>),
    /// metric, system prompt, max new tokens, batch size and limit. Its model, adapter and output directory are the sweep's
    /// to set (give any <see cref="EvalTaskJob.Model"/>, e.g. "").
    /// </summary>
    public required EvalTaskJob Task { get; init; }

    /// <summary>The values of s to try, each in [0, 1], no value twice (<see cref="ParseSparsity"/> reads "0,0.5,0.9").</summary>
    public IReadOnlyList<double> Sparsity { get; init; } = [0];

    /// <summary>Also run, for every IRR point, the random-removal control at that point's per-matrix removal counts (<see cref="RandomAtCountStrategy"/>).</summary>
    public bool RandomControl { get; init; }

    /// <summary>The seed of the random controls' masks.</summary>
    public int Seed { get; init; }

    /// <summary>The harmful-rate increase over θ_A a chosen point may have, a fraction in [0, 1] (0.05 = 5 percentage points).</summary>
    public double MaxHarmfulIncrease { get; init; } = 0.05;

    /// <summary>Keep every point's model directory; otherwise they are deleted at the end (the chosen one lives on as <c>DIR/chosen</c>).</summary>
    public bool KeepModels { get; init; }

    /// <summary>
    /// Compute only this unit (<see cref="Units"/>): its index (0 to the number of units − 1) or one of its labels
    /// (<c>irr-s0.5</c>, <c>random-s0.5</c>, <c>aligned</c> …), with <see cref="RunUnit"/>. Nothing is chosen, no model is
    /// deleted and no sweep.json is written; an HTTP judge's cache is the unit's own (<see cref="UnitJudgeCache"/>). Null: the
    /// whole sweep (<see cref="Run"/>).
    /// </summary>
    public string? Point { get; init; }

    /// <summary>
    /// The collect step after <see cref="Point"/> jobs: <see cref="Run"/> as always (computing what is still missing, then the
    /// choice, DIR/chosen, sweep.json and frontier.svg); recorded in the points it computes. Exclusive with <see cref="Point"/>.
    /// </summary>
    public bool Collect { get; init; }

    /// <summary>The sweep's directory DIR (may exist: a rerun resumes it).</summary>
    public required string OutputPath { get; init; }

    /// <inheritdoc/>
    public string Command => "sweep";

    /// <inheritdoc/>
    public IReadOnlyList<string> Inputs => Realign.Inputs.Concat(Safety.Inputs).Append(Task.Data).Concat(Provenance.Given(SafeLoraVector)).Distinct().ToList();

    /// <inheritdoc/>
    public string? Output => OutputPath;

    /// <summary>The method of a RESTA point (<see cref="Baselines.RestaJob"/> at γ = the point's setting).</summary>
    public const string RestaMethod = "resta";

    /// <summary>The method of a Safe LoRA point (<see cref="Baselines.SafeLoraJob"/> at τ = the point's setting).</summary>
    public const string SafeLoraMethod = "safelora";

    /// <summary>
    /// RESTA points (irr baseline resta: θ_F + γ·v over the realignment's modules) at these γ, evaluated beside IRR for the
    /// safety–utility frontier (docs/BASELINES.md); never chosen as IRR's s. Labels <c>resta-g0.5</c>.
    /// </summary>
    public IReadOnlyList<double> RestaGamma { get; init; } = [];

    /// <summary>
    /// Safe LoRA points (irr baseline safelora: LoRA B projected where the similarity is below τ) at these τ, for a LoRA
    /// fine-tune (<see cref="RealignJob.Adapter"/>); never chosen as IRR's s. Labels <c>safelora-t0.5</c>.
    /// </summary>
    public IReadOnlyList<double> SafeLoraThreshold { get; init; } = [];

    /// <summary>
    /// Safe LoRA's V (the paper's <c>θ_chat − θ_base</c>, from <c>irr safety-vector --aligned CHAT --unaligned BASE</c>), or
    /// null for the realignment's safety vector (θ_A − θ_U). Only the Safe LoRA points read it.
    /// </summary>
    public string? SafeLoraVector { get; init; }

    // The V the Safe LoRA points project with.
    private string? SafeLoraV => SafeLoraVector ?? Realign.SafetyVector;

    /// <summary>The label of a point: <c>METHOD-sS</c> (<c>irr-s0.5</c>), or <c>random-sS</c> for the control of the IRR point at s.</summary>
    public static string Label(string method, double sparsity) => $"{method}-s{sparsity.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Reads a list of numbers separated by commas (or given one by one), e.g. "0.25,0.5,1" for <paramref name="option"/>.</summary>
    /// <exception cref="IrrException">An entry is not a finite number ("sweep: OPTION must be …").</exception>
    public static IReadOnlyList<double> ParseNumbers(IEnumerable<string> values, string option) =>
        values.SelectMany(v => v.Split(',', StringSplitOptions.TrimEntries)).Select(v =>
            double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double x) && double.IsFinite(x) ? x
                : throw new IrrException($"sweep: {option} must be a list of numbers (e.g. 0.25,0.5,1), not '{v}'")).ToList();

    /// <summary>Reads a sparsity list: numbers separated by commas (or given one by one), e.g. "0,0.5,0.9".</summary>
    /// <exception cref="IrrException">An entry is not a number ("sweep: sparsity must be …").</exception>
    public static IReadOnlyList<double> ParseSparsity(IEnumerable<string> values) =>
        values.SelectMany(v => v.Split(',', StringSplitOptions.TrimEntries)).Select(v =>
            double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double s) && double.IsFinite(s) ? s
                : throw new IrrException($"sweep: sparsity must be a list of numbers between 0 and 1 (e.g. 0,0.5,0.9), not '{v}'")).ToList();

    /// <inheritdoc/>
    public void Validate()
    {
        void Require(bool ok, string message) => Validation.Require(ok, Command, message);
        Require(OutputPath.Length > 0, "output is required");
        Require(Sparsity.Count > 0, "sparsity must list at least one value");
        foreach (double s in Sparsity) Require(s is >= 0 and <= 1, $"sparsity must be between 0 and 1, not {s.ToString(CultureInfo.InvariantCulture)}");
        var twice = Sparsity.GroupBy(s => s).FirstOrDefault(g => g.Count() > 1);
        Require(twice is null, $"sparsity lists {twice?.Key.ToString(CultureInfo.InvariantCulture)} twice");
        Require(MaxHarmfulIncrease is >= 0 and <= 1, $"max-harmful-increase must be between 0 and 1, not {MaxHarmfulIncrease.ToString(CultureInfo.InvariantCulture)}");
        Require(RemovalMethods.Sweepable.Any(m => m.Name == Realign.Method),
            $"method must be {RemovalMethods.Names(RemovalMethods.Sweepable)}, not '{Realign.Method}' (random-control adds the random-removal control)");
        Require(Seed == 0 || RandomControl, "seed applies to random-control only");
        foreach (double g in RestaGamma) Require(double.IsFinite(g), $"resta-gamma must be finite numbers, not {g.ToString(CultureInfo.InvariantCulture)}");
        Require(RestaGamma.Distinct().Count() == RestaGamma.Count, "resta-gamma lists a value twice");
        foreach (double t in SafeLoraThreshold) Require(t is >= -1 and <= 1, $"safelora-threshold must be between -1 and 1, not {t.ToString(CultureInfo.InvariantCulture)}");
        Require(SafeLoraThreshold.Distinct().Count() == SafeLoraThreshold.Count, "safelora-threshold lists a value twice");
        Require(SafeLoraThreshold.Count == 0 || Realign.Adapter is not null, "safelora-threshold needs a LoRA fine-tune (adapter): Safe LoRA is defined for LoRA");
        Require(SafeLoraVector is null || SafeLoraThreshold.Count > 0, "safelora-vector applies to the Safe LoRA points only (safelora-threshold)");
        Require(Realign is { Sparsity: 0, Strategy: null, RemovalCounts: null, Seed: 0, DryRun: false, OutputPath: null, Overwrite: false },
            "the realignment's sparsity, strategy, removal-counts, seed, dry-run, output and overwrite are the sweep's own");
        Require(Realign.Calibration is not null, "calibration is required");
        Require(Safety.Prompts.Count > 0 || Safety.Sets is not null, "harmful-val is required (harmful prompt sets of the validation split)");
        Require(Safety.Responses is null, "the sweep generates every model's responses; it judges no responses file");
        Require(Safety.PlainOnly, "the sweep measures the plain harmful prompts; evaluate attacks on the chosen model with irr eval safety --attack");
        Require(Safety.Engine is not ServedEngine { Model.Length: > 0 }, "engine-model does not apply to a sweep: each model is served under its label");
        Require(Safety.Engine is null or ServedEngine,
            "the sweep evaluates a different model at every point, so it needs engine-serve (a command that serves {model}, started for each model under its label); " +
            "engine-url and engine-model name one served model (for irr eval)");
        Require(Equals(Safety.Engine, Task.Engine), "the safety and task evaluations must use one serving engine");
        // Every point is a model; θ_F of a LoRA fine-tune and Safe LoRA's points are adapters on θ_A.
        Safety.Engine?.Validate(Command, hasAdapter: Realign.Finetuned is null && Realign.Adapter is not null, hasFullModel: true);
        foreach (var (serve, option) in new[] { ((Safety.Engine as ServedEngine)?.Serve, "engine-serve"), ((Safety.Engine as ServedEngine)?.ServeAdapter, "engine-serve-adapter") })
            Require(serve is null || serve.Contains("{name}", StringComparison.Ordinal),
                $"{option} must contain {{name}}: each model of a sweep is served under its label (vLLM: --served-model-name {{name}})");
        Require(Task.Data.Length > 0, "task-val is required");
        Require(Point is null || !Collect, "point and collect are exclusive: compute units with point, then collect them in one run without point");
        if (Point is not null) FindUnit(Point);
        Require(TaskMetrics.TryParse(Task.Metric) is not null, $"task-metric must be exact, contains, gsm8k or choice, not \"{Task.Metric}\"");
        // The rest as the jobs the sweep runs check it, in the sweep's name.
        AsSweep((Realign with { OutputPath = OutputPath }).Validate);
        AsSweep((Safety with { Model = Realign.Base, OutputDir = OutputPath }).Validate);
        AsSweep((Task with { Model = Realign.Base, OutputDir = OutputPath }).Validate);
    }

    private void AsSweep(Action validate)
    {
        try { validate(); }
        catch (IrrException e) when (e.Message.IndexOf(": ", StringComparison.Ordinal) is > 0 and var at)
        {
            throw new IrrException($"{Command}: {e.Message[(at + 2)..]}", e);
        }
    }

    /// <summary>
    /// Runs the sweep: the points (realign, then evaluate), θ_A and θ_F, the choice, <c>DIR/chosen</c>, sweep.json and frontier.svg.
    /// <paramref name="progress"/> reports one stream over the whole sweep: <see cref="JobProgress.Done"/> of
    /// <see cref="JobProgress.Total"/> counts the models (points, then θ_A and θ_F; fractional inside one), and
    /// <see cref="JobProgress.Stage"/> names the model and what it does ("irr-s0.5 (2/7): realigning (12 matrices)").
    /// </summary>
    /// <exception cref="IrrException">An option is invalid, an input is missing, malformed or incompatible, or the judge fails.</exception>
    public SweepResult Run(Action<JobProgress>? progress = null)
    {
        if (Point is not null) throw new InvalidOperationException("a sweep with Point computes one unit: call RunUnit");
        var runner = Start(progress);
        bool existed = Directory.Exists(OutputPath);
        try
        {
            return runner.Run();
        }
        catch when (!existed && Directory.Exists(OutputPath) && !Directory.EnumerateFiles(OutputPath, "*", SearchOption.AllDirectories).Any())
        {
            Directory.Delete(OutputPath, recursive: true); // a run that failed before writing anything leaves no directory behind
            throw;
        }
    }

    /// <summary>
    /// Computes the unit <see cref="Point"/> names into DIR, as <see cref="Run"/> would compute it (the same files, resumed
    /// the same way): a unit of s realigns and evaluates its IRR point, then its random control; a baseline unit its point; a
    /// reference unit evaluates θ_A or θ_F. Several processes may compute different units into one directory at the same time.
    /// <paramref name="progress"/> counts the unit's models.
    /// </summary>
    /// <exception cref="IrrException">An option is invalid (<see cref="Point"/> names no unit, …), an input is missing, malformed or incompatible, or the judge fails.</exception>
    public SweepUnitResult RunUnit(Action<JobProgress>? progress = null)
    {
        if (Point is null) throw new InvalidOperationException("RunUnit needs Point");
        var runner = Start(progress);
        // No clean-up of DIR on failure: other units may be writing into it (a failed point still removes its own directory).
        return runner.RunUnit(Plan()[FindUnit(Point).Index]);
    }

    object? IJob.Execute(Action<JobProgress>? progress) => Point is null ? Run(progress) : RunUnit(progress);

    /// <summary>
    /// Checks that every input (<see cref="Inputs"/>: models, adapter, safety vector, Fisher, data) exists, so that a
    /// missing one fails before any work in every array task (<see cref="Point"/>), and in <c>--list-points</c> before
    /// anything is submitted, not only in the task that reads it.
    /// </summary>
    /// <exception cref="IrrException">An input does not exist (the message names it).</exception>
    public void RequireInputs()
    {
        foreach (string path in Inputs.Where(p => p.Length > 0))
            if (!File.Exists(path) && !Directory.Exists(path)) throw new IrrException($"{Command}: {path}: no such file or directory");
    }

    // The checks before any work, and the evaluation data read once.
    private Runner Start(Action<JobProgress>? progress)
    {
        Validate();
        RequireInputs();
        InputChecks.Realign(Command, Realign.Base, Realign.Finetuned, Realign.Adapter, Realign.SafetyVector, Realign.Fisher);
        AtomicFile.RequireDirectoryTarget(OutputPath);
        // A rerun resumes a sweep directory; any other non-empty directory is not written into. A sweep creates DIR/points
        // before it writes anything else into DIR (Runner.CreateRoot), so a directory another unit's job is writing into
        // right now is either empty or has points/.
        if (Directory.Exists(OutputPath) && Directory.EnumerateFileSystemEntries(OutputPath).Any()
            && !File.Exists(Path.Combine(OutputPath, FileName)) && !Directory.Exists(Path.Combine(OutputPath, "points")))
            throw new IrrException($"{OutputPath}: exists, is not empty and is not a sweep directory (no {FileName}, no points/); choose another output");
        // The evaluation data is read before any work: a malformed file fails now, not after hours of realignment.
        var sets = Safety.Sets ?? Safety.Prompts.Select(PromptSet.Load).ToList();
        var examples = TaskExample.Load(Task.Data);
        return new Runner(this, sets, examples, progress);
    }

    /// <summary>The sweep's units in their order (<see cref="SweepUnit"/>), from the options alone (no file is read).</summary>
    public IReadOnlyList<SweepUnit> Units() => Plan().Select(u => u.Unit).ToList();

    /// <summary>The unit <paramref name="point"/> names: its index (0, 1 …) or one of its labels.</summary>
    /// <exception cref="IrrException">No unit has that index or label ("sweep: point must be … 0 to U − 1 (U units) …").</exception>
    public SweepUnit FindUnit(string point)
    {
        var units = Units();
        var found = int.TryParse(point, NumberStyles.Integer, CultureInfo.InvariantCulture, out int index)
            ? (index >= 0 && index < units.Count ? units[index] : null)
            : units.FirstOrDefault(u => u.Labels.Contains(point, StringComparer.Ordinal));
        return found ?? throw new IrrException(
            $"{Command}: point must be a unit's index, 0 to {units.Count - 1} ({units.Count} units), or one of its labels " +
            $"({string.Join(", ", units.Select(u => u.Label).Take(3))}{(units.Count > 3 ? ", …" : "")}; list-points lists them), not '{point}'");
    }

    /// <summary>
    /// The HTTP judge's verdict cache of a unit computed alone: <paramref name="cache"/> with the unit's label before its
    /// extension (<c>DIR/judge-cache.jsonl</c> → <c>DIR/judge-cache.irr-s0.5.jsonl</c>), so that units running at the same
    /// time never append to one file.
    /// </summary>
    public static string UnitJudgeCache(string cache, SweepUnit unit) => WithLabel(cache, unit.Label);

    // A cache file's name with a label before its extension: judge-cache.jsonl → judge-cache.irr-s0.5.jsonl.
    private static string WithLabel(string path, string label) =>
        Path.Combine(Path.GetDirectoryName(path) ?? "", $"{Path.GetFileNameWithoutExtension(path)}.{label}{Path.GetExtension(path)}");

    private static readonly string RandomMethod = RemovalMethods.RandomAtCount.Name;

    // A unit and the points it computes (none for a reference).
    private sealed record PlannedUnit(SweepUnit Unit, IReadOnlyList<PlannedPoint> Points);

    // Every unit: per s its IRR point (and control), each baseline point, then the references.
    private IReadOnlyList<PlannedUnit> Plan()
    {
        static string N(double x) => x.ToString(CultureInfo.InvariantCulture);
        var units = Sparsity.Select(s => new[] { new PlannedPoint(Label(Realign.Method, s), Realign.Method, s, null) }
                .Concat(RandomControl ? [new PlannedPoint(Label("random", s), RandomMethod, s, Label(Realign.Method, s))] : []).ToList())
            .Concat(RestaGamma.Select(g => new List<PlannedPoint> { new($"{RestaMethod}-g{N(g)}", RestaMethod, g, null) }))
            .Concat(SafeLoraThreshold.Select(t => new List<PlannedPoint> { new($"{SafeLoraMethod}-t{N(t)}", SafeLoraMethod, t, null) }))
            .Select(points => (Labels: points.Select(p => p.Label).ToList(), Points: points))
            .Append((Labels: ["aligned"], Points: [])).Append((Labels: ["finetuned"], Points: []));
        return units.Select((u, i) => new PlannedUnit(new SweepUnit(i, u.Labels), u.Points)).ToList();
    }

    // A point to run: its label, method and s, and for a control the label of the IRR point whose counts it removes.
    private sealed record PlannedPoint(string Label, string Method, double Sparsity, string? ControlOf);

    private sealed class Runner(SweepJob job, IReadOnlyList<PromptSet> sets, IReadOnlyList<TaskExample> examples, Action<JobProgress>? progress)
    {
        private readonly string root = job.OutputPath;
        private int realigned, resumed, position, baselinesMade;
        private int total;
        private SweepUnit? unit; // the unit computed alone (RunUnit), else null

        private sealed record UnitRun(SweepUnit Unit, IReadOnlyList<SweepPoint> Points, SweepReference? Reference, bool Computed);

        private string ReferenceDir(string label) => Path.Combine(root, "reference", label);

        private string PointDir(string label) => Path.Combine(root, "points", label);

        private string ChosenDir => Path.Combine(root, "chosen");

        public SweepResult Run()
        {
            var clock = Stopwatch.StartNew();
            var plan = job.Plan();
            var planned = plan.SelectMany(u => u.Points).ToList();
            total = planned.Count + 2;
            CheckBaselineInputs();
            CreateRoot();
            var units = KeepingOnStop(() => plan.Select(Compute).ToList()); // the references are the last two units
            var points = units.SelectMany(u => u.Points).ToList();
            var (aligned, finetuned) = (units[^2].Reference!, units[^1].Reference!);
            var choice = SweepSelection.Choose(points, aligned.HarmfulRate, job.MaxHarmfulIncrease);
            var baselines = new[] { RestaMethod, SafeLoraMethod }
                .Select(m => (Method: m, Choice: SweepSelection.ChooseBaseline(points, m, aligned.HarmfulRate, job.MaxHarmfulIncrease)))
                .Where(b => b.Choice is not null).ToDictionary(b => b.Method, b => b.Choice!);
            var report = PlaceChosen(planned.Single(p => p.Label == choice.Point.Label));
            if (!job.KeepModels)
                foreach (var p in planned)
                    if (Directory.Exists(ModelDir(p.Label))) Directory.Delete(ModelDir(p.Label), recursive: true);
            var result = new SweepResult(points, aligned, finetuned, choice, report, ChosenDir, realigned, resumed)
            {
                Baselines = baselines, BaselinesMade = baselinesMade,
                UnitsComputed = units.Count(u => u.Computed), UnitsDoneEarlier = units.Count(u => !u.Computed),
            };
            AtomicFile.WriteText(Path.Combine(root, FileName), JsonFiles.Format(SweepJson(result, units, clock.Elapsed.TotalSeconds)));
            AtomicFile.WriteText(Path.Combine(root, "frontier.svg"), Frontier(result));
            return result;
        }

        // One unit alone (irr sweep --point): its models, resumed or computed, and nothing shared with other units.
        public SweepUnitResult RunUnit(PlannedUnit u)
        {
            unit = u.Unit;
            total = u.Unit.Labels.Count;
            CheckBaselineInputs();
            CreateRoot();
            var run = KeepingOnStop(() => Compute(u));
            var dirs = u.Unit.Labels.Select(l => u.Unit.IsReference ? ReferenceDir(l) : PointDir(l)).ToList();
            return new SweepUnitResult(u.Unit, run.Points, run.Reference, dirs, realigned, resumed) { BaselinesMade = baselinesMade, JudgeCache = (SafetyJob.Judge as HttpJudgeOptions)?.Cache };
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

        // Who computed each model of a unit, as its record says (null for a record of an earlier version).
        private JsonObject ComputedBy(SweepUnit u) => new(u.Labels.Select(l =>
        {
            string record = u.IsReference ? Path.Combine(ReferenceDir(l), ReferenceFileName) : Path.Combine(PointDir(l), PointFileName);
            try { return KeyValuePair.Create(l, JsonFiles.ParseObject(BoundedText.Read(record), record)["computed_by"]?.DeepClone()); }
            catch (Exception e) when (e is IrrException or JsonException or IOException) { return KeyValuePair.Create(l, (JsonNode?)null); }
        }));

        // What a record says about the run that made it: irr sweep --point K, --collect, or a whole sweep.
        private string Maker => unit is not null ? $"point {unit.Index}" : job.Collect ? "collect" : "sweep";

        private string ModelDir(string label) => Path.Combine(PointDir(label), "model");

        // The realignment of a point, into `output`: the very job irr realign runs with the same options.
        private RealignJob RealignJobOf(PlannedPoint p, string output) => p.ControlOf is { } irr
            ? job.Realign with
            {
                Method = RandomMethod, RemovalCounts = Path.Combine(PointDir(irr), RealignReport.FileName), Seed = job.Seed,
                OutputPath = output, Overwrite = true,
            }
            : job.Realign with { Sparsity = p.Sparsity, OutputPath = output, Overwrite = true };

        // A point: realigned (IRR, or its random control) or made by a baseline, into DIR/points/LABEL/model, then evaluated.
        private SweepPoint RunPoint(PlannedPoint p)
        {
            Interruption.ThrowIfRequested();
            bool baseline = p.Method is RestaMethod or SafeLoraMethod;
            string reportName = baseline ? Baselines.SafeLoraReport.FileName : RealignReport.FileName;
            string dir = PointDir(p.Label), record = Path.Combine(dir, PointFileName), reportCopy = Path.Combine(dir, reportName), output = ModelDir(p.Label);
            var options = PointOptions(p);
            if (Finished<SweepPoint>(record, options) is { } done && File.Exists(reportCopy)) return Skip(p.Label, done);

            var stage = Stage(p.Label, 3);
            (long Removed, long Parameters) counts = (0, 0);
            try
            {
                if (baseline) MakeBaseline(p, output, stage(0, ""));
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
            var (harmful, task) = p.Method == SafeLoraMethod
                ? Evaluate(p.Label, job.Realign.Base, output, Path.Combine(dir, "eval"), stage, 1)
                : Evaluate(p.Label, output, null, Path.Combine(dir, "eval"), stage, 1);
            var point = new SweepPoint(p.Label, p.Method, p.Sparsity, p.ControlOf is not null, counts.Removed, counts.Parameters, harmful, task);
            Save(record, point, options);
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

        // irr baseline resta (a model) or safelora (an adapter on θ_A) at the point's setting.
        private void MakeBaseline(PlannedPoint p, string output, Action<JobProgress> progress)
        {
            var r = job.Realign;
            if (p.Method == RestaMethod)
                new Baselines.RestaJob
                {
                    Base = r.Base, Finetuned = r.Finetuned, Adapter = r.Adapter, SafetyVector = r.SafetyVector, Gamma = p.Sparsity,
                    Modules = BaselineModules(), DType = r.DType, OutputPath = output, Overwrite = true,
                }.Run(progress);
            else
                new Baselines.SafeLoraJob { Base = r.Base, Adapter = r.Adapter, SafetyVector = job.SafeLoraV!, Threshold = p.Sparsity, OutputPath = output, Overwrite = true }
                    .Run(progress);
            baselinesMade++;
        }

        // RESTA works on the realignment's modules (for a LoRA fine-tune without --modules: the adapter's targets, as irr realign).
        private IReadOnlyList<string>? BaselineModules()
        {
            if (job.Realign.Modules is not null || job.Realign.Adapter is null) return job.Realign.Modules;
            using var adapter = LoraAdapter.Open(job.Realign.Adapter);
            return RealignJob.AdapterTargets(adapter);
        }

        // Safe LoRA's inputs, checked (as irr baseline safelora checks them) before any point is realigned.
        private void CheckBaselineInputs()
        {
            if (job.SafeLoraThreshold.Count == 0) return;
            var r = job.Realign;
            new Baselines.SafeLoraJob { Base = r.Base, Adapter = r.Adapter, SafetyVector = job.SafeLoraV!, Threshold = job.SafeLoraThreshold[0], OutputPath = "" }.CheckInputs();
        }

        private SweepReference RunReference(string label, string model, string? adapter)
        {
            Interruption.ThrowIfRequested();
            string dir = ReferenceDir(label), record = Path.Combine(dir, ReferenceFileName);
            var options = new JsonObject
            {
                ["model"] = Provenance.PathOf(model), ["adapter"] = adapter is null ? null : Provenance.PathOf(adapter),
                ["stamps"] = Stamps(("model", model), ("adapter", adapter)), ["evaluation"] = EvaluationOptions(),
            };
            if (Finished<SweepReference>(record, options) is { } done) return Skip(label, done);
            // What an earlier run left for other options is replaced, not merged.
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            var (harmful, task) = Evaluate(label, model, adapter, dir, Stage(label, 2), 0);
            var reference = new SweepReference(label, Provenance.Label(model)!, Provenance.Label(adapter), harmful, task);
            Save(record, reference, options);
            position++;
            return reference;
        }

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

        // Harmful rate and task score of a model, written into `dir` as irr eval safety and irr eval task write them.
        private (double Harmful, double Task) Evaluate(string label, string model, string? adapter, string dir, Func<int, string, Action<JobProgress>> stage, int firstPhase)
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            // With engine-serve, one server for the model, started here and named after it, serves both evaluations.
            using var server = job.Safety.Engine is ServedEngine served
                ? EngineServer.Start(served, model, adapter, label, Path.Combine(dir, EngineServer.LogFileName))
                : null;
            // Its answers are cached outside the evaluation directory (which is made anew), one file per model, so that a rerun
            // after failed generations asks only for those, and no two array tasks append to one file.
            var engine = server is null ? null : server.Serving((ServedEngine)job.Safety.Engine!) with { Cache = EngineCache(label) };
            // Local answers likewise, in DIR/generation-cache/LABEL.jsonl: an interrupted sweep, run again, generates only those it lacks.
            string generations = Path.Combine(root, "generation-cache", label + ".jsonl");
            var safety = SafetyJob with { Model = model, Adapter = adapter, OutputDir = dir, Engine = engine, GenerationCachePath = generations };
            var safetyResult = safety.Run(stage(firstPhase, "harmful-val: "));
            var taskRun = (job.Task with { Model = model, Adapter = adapter, OutputDir = dir, Engine = engine, GenerationCachePath = generations })
                .Run(stage(firstPhase + 1, "task-val: "));
            // A choice made on evaluations with missing answers would be wrong: the model is not recorded as done. A prompt
            // the engine refuses by itself (too long for its max_model_len) is refused for every model alike (one tokenizer,
            // one max_new_tokens): it is excluded (unknown) or incorrect for all, and does not stop the sweep.
            int refused = safetyResult.Judged.Count(j => Eval.OpenAiReply.IsRefusal(j.Error)) + taskRun.Refused;
            if (refused > 0)
                Diagnostics.Warn($"{job.Command}: {label}: {refused} {(refused == 1 ? "prompt was" : "prompts were")} refused by the serving engine " +
                                 $"(too long for it; reasons in {dir}): unknown in the safety rate, incorrect in the task accuracy, as for every model");
            if (safetyResult.GenerationFailures + taskRun.Failed - refused is > 0 and var failed)
                throw new GenerationsFailedException($"{job.Command}: {label}: {failed} {(failed == 1 ? "generation" : "generations")} by the serving engine failed " +
                                       $"(their reasons are in {dir}); rerun the sweep to evaluate this model again");
            return (safetyResult.Run.Overall.HarmfulRate, taskRun.Accuracy);
        }

        // A model's engine cache: DIR/engine-cache/LABEL.jsonl, or the given engine-cache's name with the label inserted.
        private string EngineCache(string label) => job.Safety.Engine?.Cache is { } given
            ? WithLabel(given, label)
            : Path.Combine(root, "engine-cache", label + ".jsonl");

        // The safety evaluation with the sets read once, and an HTTP judge's cache shared by every model (DIR/judge-cache.jsonl by
        // default), or for a unit computed alone the unit's own file, which no other job appends to.
        private EvalSafetyJob SafetyJob => job.Safety with
        {
            Prompts = [], Sets = sets,
            Judge = job.Safety is { CustomJudge: null, Judge: HttpJudgeOptions http } && (http.Cache ?? Path.Combine(root, "judge-cache.jsonl")) is var cache
                ? http with { Cache = unit is null ? cache : UnitJudgeCache(cache, unit) }
                : job.Safety.Judge,
        };

        // The finished record at `path` if it was made with these options, else null (also when it cannot be read: it is redone).
        private static T? Finished<T>(string path, JsonObject options) where T : class
        {
            try
            {
                return UpToDate.Load(path, options)?.Deserialize<T>(JsonFiles.ResultOptions);
            }
            catch (JsonException) { return null; }
        }

        private void Save<T>(string path, T value, JsonObject options)
        {
            var json = JsonSerializer.SerializeToNode(value, JsonFiles.ResultOptions)!.AsObject();
            json["options"] = options;
            json["computed_by"] = Maker;
            json["irr_version"] = Provenance.Version;
            AtomicFile.WriteText(path, JsonFiles.Format(json));
        }

        // DIR/chosen: the chosen point's model, moved (or copied, with KeepModels) from its point directory; realigned again
        // when an earlier run deleted it; left alone when it already holds this realignment.
        private RealignReport PlaceChosen(PlannedPoint p)
        {
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
                output.Commit();
                return RealignReport.Load(placedReport);
            }
            total++; // one more realignment than planned
            var report = RealignJobOf(p, ChosenDir).Run(Stage($"chosen: {p.Label} again", 1)(0, ""));
            realigned++;
            return report;
        }

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

        // What makes a point: the method and s (a control: the IRR point whose counts it removes, and the seed), then what every point shares.
        private JsonObject PointOptions(PlannedPoint p)
        {
            if (p.Method is RestaMethod or SafeLoraMethod) return BaselineOptions(p);
            var options = SharedOptions();
            var realign = options["realign"]!.AsObject();
            realign.Insert(0, "method", p.Method);
            if (p.ControlOf is null) realign.Insert(1, "sparsity", p.Sparsity);
            else
            {
                realign.Insert(1, "removal_counts", p.ControlOf);
                realign.Insert(2, "seed", job.Seed);
            }
            return options;
        }

        // What makes a baseline point: only what RESTA or Safe LoRA reads (not the Fisher, the calibration data or the OBS
        // options, so that changing those redoes the IRR points alone), and the evaluation.
        private JsonObject BaselineOptions(PlannedPoint p)
        {
            var r = job.Realign;
            static string? P(string? path) => path is null ? null : Provenance.PathOf(path);
            string? v = p.Method == SafeLoraMethod ? job.SafeLoraV : r.SafetyVector;
            return new JsonObject
            {
                ["inputs"] = new JsonObject { ["base"] = P(r.Base), ["finetuned"] = P(r.Finetuned), ["adapter"] = P(r.Adapter), ["safety_vector"] = P(v) },
                ["stamps"] = Stamps(("base", r.Base), ("finetuned", r.Finetuned), ("adapter", r.Adapter), ("safety_vector", v)),
                ["baseline"] = p.Method == RestaMethod
                    ? new JsonObject
                    {
                        ["method"] = p.Method, ["gamma"] = p.Sparsity, ["dtype"] = r.DType,
                        ["modules"] = r.Modules is null ? null : new JsonArray(r.Modules.Select(m => (JsonNode?)m).ToArray()),
                    }
                    : new JsonObject { ["method"] = p.Method, ["threshold"] = p.Sparsity },
                ["evaluation"] = EvaluationOptions(),
            };
        }

        // What every point shares: the inputs (paths, and sizes and times, so that a file replaced in place is noticed), the
        // realignment's options and the evaluation's.
        private JsonObject SharedOptions()
        {
            var r = job.Realign;
            static string? P(string? path) => path is null ? null : Provenance.PathOf(path);
            return new JsonObject
            {
                ["inputs"] = new JsonObject
                {
                    ["base"] = P(r.Base), ["finetuned"] = P(r.Finetuned), ["adapter"] = P(r.Adapter), ["safety_vector"] = P(r.SafetyVector),
                    ["fisher"] = P(r.Fisher), ["calibration"] = P(r.Calibration),
                },
                ["stamps"] = Stamps(("base", r.Base), ("finetuned", r.Finetuned), ("adapter", r.Adapter), ("safety_vector", r.SafetyVector),
                    ("fisher", r.Fisher), ("calibration", r.Calibration)),
                ["realign"] = RealignOptions(r),
                ["evaluation"] = EvaluationOptions(),
            };
        }

        private static JsonObject RealignOptions(RealignJob r)
        {
            var options = new JsonObject
            {
                ["modules"] = r.Modules is null ? null : new JsonArray(r.Modules.Select(m => (JsonNode?)m).ToArray()),
                ["blocksize"] = r.BlockSize, ["percdamp"] = r.PercDamp, ["nsamples"] = r.NSamples, ["seqlen"] = r.SeqLen,
                ["recalibrate"] = r.Recalibrate, ["system_prompt"] = r.SystemPrompt, ["dtype"] = r.DType,
            };
            // Only when set, so that the options of sweeps run before the flag existed still match.
            if (r.NoChatTemplate) options["no_chat_template"] = true;
            return options;
        }

        // What makes an evaluation: the prompt sets, the judge, the task data and metric, the generation options.
        private JsonObject EvaluationOptions()
        {
            var s = job.Safety;
            var (markers, http) = ((s.Judge as KeywordJudgeOptions)?.RefusalMarkers, s.Judge as HttpJudgeOptions);
            var judge = s.CustomJudge is { } custom ? new JsonObject { ["name"] = custom.Name } : new JsonObject
            {
                ["judge"] = s.Judge.Kind,
                ["refusal_markers"] = markers is null ? null : Provenance.PathOf(markers),
                ["refusal_markers_stamp"] = markers is null ? null : Stamp(markers),
                ["judge_url"] = http?.Url, ["judge_model"] = http?.Model, ["judge_protocol"] = http?.Protocol,
            };
            var options = new JsonObject
            {
                ["harmful_val"] = new JsonArray(sets.Select(set => (JsonNode?)new JsonObject
                {
                    ["name"] = set.Name, ["file"] = job.Safety.Sets is null ? Provenance.PathOf(set.File) : set.File, ["prompts"] = set.Records.Count,
                    ["sha256"] = Digest(set.Records.SelectMany(p => new[] { p.Prompt, p.Category ?? "" })),
                }).ToArray()),
                ["judge"] = judge,
                ["safety_system_prompt"] = s.SystemPrompt,
                ["safety_max_new_tokens"] = s.MaxNewTokens,
                ["safety_batch_size"] = s.BatchSize,
                ["safety_limit"] = s.Limit,
                ["task_val"] = Provenance.PathOf(job.Task.Data),
                ["task_examples"] = examples.Count,
                ["task_sha256"] = Digest(examples.SelectMany(e => new[] { e.User, e.Gold, e.Choices.ToString(CultureInfo.InvariantCulture) })),
                ["task_metric"] = job.Task.Metric.ToLowerInvariant(),
                ["task_system_prompt"] = job.Task.SystemPrompt,
                ["task_max_new_tokens"] = job.Task.MaxNewTokens,
                ["task_batch_size"] = job.Task.BatchSize,
                ["task_limit"] = job.Task.Limit,
            };
            // Answers of a served model may differ from local ones (another numeric precision): the engine is part of the evaluation.
            if (s.NoChatTemplate || job.Task.NoChatTemplate) options["no_chat_template"] = true;
            if (s.Engine is ServedEngine e) options["engine"] = new JsonObject { ["serve"] = e.Serve, ["serve_adapter"] = e.ServeAdapter, ["api"] = e.Api };
            return options;
        }

        // Size and modification time of each given input (a directory: its files' total size and the latest time), as irr run's hash cache keys them.
        private static JsonObject Stamps(params (string Key, string? Path)[] inputs) =>
            new(inputs.Where(i => i.Path is not null).Select(i => KeyValuePair.Create(i.Key, (JsonNode?)Stamp(i.Path!))));

        private static string? Stamp(string path) => ContentHash.StampText(Path.GetFullPath(path));

        // The SHA-256 of texts (each UTF-8, ended by a zero byte), lowercase hex: what the evaluation data says, whatever its file.
        private static string Digest(IEnumerable<string> texts)
        {
            using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
            foreach (string text in texts)
            {
                sha.AppendData(System.Text.Encoding.UTF8.GetBytes(text));
                sha.AppendData([0]);
            }
            return Convert.ToHexStringLower(sha.GetHashAndReset());
        }

        private JsonObject SweepJson(SweepResult result, IReadOnlyList<UnitRun> units, double seconds)
        {
            JsonNode Node<T>(T value) => JsonSerializer.SerializeToNode(value, JsonFiles.ResultOptions)!;
            return new JsonObject
            {
                ["irr_version"] = Provenance.Version,
                ["rule"] = SweepSelection.Rule,
                ["max_harmful_increase"] = job.MaxHarmfulIncrease,
                ["threshold"] = result.Choice.Threshold,
                ["chosen"] = result.Choice.Point.Label,
                ["qualified"] = result.Choice.Qualified,
                ["reason"] = result.Choice.Reason,
                ["chosen_model"] = Provenance.PathOf(result.ChosenModel),
                ["sparsity"] = new JsonArray(job.Sparsity.Select(s => (JsonNode?)s).ToArray()),
                ["random_control"] = job.RandomControl,
                ["resta_gamma"] = new JsonArray(job.RestaGamma.Select(g => (JsonNode?)g).ToArray()),
                ["safelora_threshold"] = new JsonArray(job.SafeLoraThreshold.Select(t => (JsonNode?)t).ToArray()),
                ["safelora_vector"] = job.SafeLoraVector is null ? null : Provenance.PathOf(job.SafeLoraVector),
                ["baselines"] = new JsonObject(result.Baselines.Select(b => KeyValuePair.Create(b.Key, (JsonNode?)new JsonObject
                {
                    ["chosen"] = b.Value.Point.Label, ["setting"] = b.Value.Point.Sparsity, ["qualified"] = b.Value.Qualified, ["reason"] = b.Value.Reason,
                }))),
                ["seed"] = job.Seed,
                ["keep_models"] = job.KeepModels,
                ["references"] = new JsonObject { ["aligned"] = Node(result.Aligned), ["finetuned"] = Node(result.Finetuned) },
                ["points"] = new JsonArray(result.Points.Select(p => (JsonNode?)Node(p)).ToArray()),
                ["options"] = SharedOptions(),
                ["units"] = new JsonArray(units.Select(u => (JsonNode?)new JsonObject
                {
                    ["index"] = u.Unit.Index, ["labels"] = new JsonArray(u.Unit.Labels.Select(l => (JsonNode?)l).ToArray()),
                    ["computed_now"] = u.Computed, ["computed_by"] = ComputedBy(u.Unit),
                }).ToArray()),
                ["realigned"] = result.Realigned,
                ["resumed"] = result.Resumed,
                ["units_computed"] = result.UnitsComputed,
                ["units_done_earlier"] = result.UnitsDoneEarlier,
                ["seconds"] = Math.Round(seconds, 3),
            };
        }

        // Harmful rate against task score: the IRR curve by s, the random controls' curve, θ_A and θ_F; the chosen point ringed.
        private string Frontier(SweepResult result)
        {
            // A curve by s; points at the same place share one label ("s=0.3, 0.5").
            ChartSeries Curve(string name, bool controls)
            {
                var points = result.Points.Where(p => p.IsControl == controls && !p.IsBaseline).OrderBy(p => p.Sparsity).ToList();
                var chart = points.Select(p =>
                {
                    var together = points.Where(q => q.HarmfulRate == p.HarmfulRate && q.TaskScore == p.TaskScore).ToList();
                    string label = together[0] == p ? "s=" + string.Join(", ", together.Select(q => q.Sparsity.ToString(CultureInfo.InvariantCulture))) : "";
                    return new ScatterPoint(label, p.HarmfulRate, p.TaskScore);
                }).ToList();
                int chosen = points.FindIndex(p => p.Label == result.Choice.Point.Label);
                return new ChartSeries(name, chart, Highlight: chosen >= 0 ? chosen : null);
            }
            var series = new List<ChartSeries> { Curve($"{job.Realign.Method} (by s)", controls: false) };
            if (job.RandomControl) series.Add(Curve("random control (IRR counts)", controls: true));
            foreach (var (method, name, knob) in new[] { (RestaMethod, "RESTA (by γ)", "γ"), (SafeLoraMethod, "Safe LoRA (by τ)", "τ") })
            {
                var points = result.Points.Where(p => p.Method == method).OrderBy(p => p.Sparsity).ToList();
                if (points.Count == 0) continue;
                series.Add(new(name, points.Select(p => new ScatterPoint($"{knob}={p.Sparsity.ToString(CultureInfo.InvariantCulture)}", p.HarmfulRate, p.TaskScore)).ToList()));
            }
            series.Add(new("θ_A (aligned)", [new("θ_A", result.Aligned.HarmfulRate, result.Aligned.TaskScore)], Connected: false));
            series.Add(new("θ_F (fine-tuned)", [new("θ_F", result.Finetuned.HarmfulRate, result.Finetuned.TaskScore)], Connected: false));
            return Charts.SeriesChart("IRR sparsity sweep: harmful rate vs task score (validation)", series, "harmful rate (%)", "task score (%)");
        }
    }
}
