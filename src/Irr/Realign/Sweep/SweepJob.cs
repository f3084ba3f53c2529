using System.Globalization;
using Irr.Data;
using Irr.Eval;
using Irr.IO;
using Irr.Jobs;

namespace Irr.Realign;

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
[Job("sweep", Help = "Choose IRR's sparsity s on validation data: realign at every s (as irr realign does), evaluate harmful rate and task score, " +
    "and choose by --rule (default: " + SweepSelection.Rule + "). The chosen model goes to DIR/chosen", Produces = ArtifactKind.Model, ProducedInside = "chosen")]
public sealed record SweepJob : IJob<SweepResult>
{
    private readonly EvalSafetyJob? safety;
    private readonly EvalTaskJob? task;

    /// <summary>The file name of a point's record inside <c>DIR/points/LABEL/</c>.</summary>
    public const string PointFileName = "point.json";

    /// <summary>The file name of a reference's record inside <c>DIR/reference/LABEL/</c>.</summary>
    public const string ReferenceFileName = "reference.json";

    /// <summary>The sweep's record inside <c>DIR</c>.</summary>
    public const string FileName = "sweep.json";

    /// <summary>
    /// The realignment of every point: inputs and options as <c>irr realign</c> takes them, with <see cref="RealignJob.Method"/>
    /// irr, irr-more or fisher-only. Its sparsity, strategy, removal counts, seed, dry run, output and overwrite are the sweep's
    /// to set and must be left at their defaults. Its system prompt, no-chat-template and template-arg are the evaluations' too (one option each).
    /// </summary>
    [Options(Groups = [RealignJob.InputGroup, RealignJob.TuningGroup])]
    public required RealignJob Realign { get; init; }

    /// <summary>
    /// The harmful-prompt evaluation of every model, as <c>irr eval safety</c> runs it: the validation prompt sets
    /// (<see cref="EvalSafetyJob.Prompts"/>, or <see cref="EvalSafetyJob.Sets"/> in memory), the judge (its options, or
    /// <see cref="EvalSafetyJob.CustomJudge"/>), system prompt, max new tokens, batch size and limit. Its model, adapter and
    /// output directory are the sweep's to set (give any <see cref="EvalSafetyJob.OutputDir"/>, e.g. ""); an HTTP judge's
    /// cache defaults to <c>DIR/judge-cache.jsonl</c>, shared by every model (with <see cref="Point"/>: the unit's own file, <see cref="UnitJudgeCache"/>).
    /// Given in memory (library callers), or else the one the options describe: <see cref="HarmfulVal"/>, <see cref="MaxNewTokens"/>,
    /// <see cref="BatchSize"/>, the realignment's system prompt and no-chat-template (the judge and engine: <see cref="Judge"/>, <see cref="Engine"/>).
    /// </summary>
    public EvalSafetyJob Safety
    {
        get => safety ?? new EvalSafetyJob
        {
            Prompts = HarmfulVal, BenignPrompts = BenignVal, SystemPrompt = Realign.SystemPrompt, NoChatTemplate = Realign.NoChatTemplate, Chat = Realign.Chat, MaxNewTokens = MaxNewTokens, BatchSize = BatchSize, OutputDir = "",
        };
        init => safety = value;
    }

    /// <summary>
    /// The task evaluation of every model, as <c>irr eval task</c> runs it: the validation data (<see cref="EvalTaskJob.Data"/>),
    /// metric, system prompt, max new tokens, batch size and limit. Its model, adapter and output directory are the sweep's
    /// to set (give any <see cref="EvalTaskJob.Model"/>, e.g. ""). Given in memory, or else the one the options describe
    /// (<see cref="TaskVal"/>, <see cref="TaskMetric"/>, <see cref="MaxNewTokens"/>, <see cref="BatchSize"/>, the realignment's system prompt and no-chat-template).
    /// </summary>
    public EvalTaskJob Task
    {
        get => task ?? new EvalTaskJob
        {
            Model = "", Data = TaskVal, Metric = TaskMetric, SystemPrompt = Realign.SystemPrompt, NoChatTemplate = Realign.NoChatTemplate, Chat = Realign.Chat, MaxNewTokens = MaxNewTokens, BatchSize = BatchSize,
        };
        init => task = value;
    }

    /// <summary>The values of s to try, each in [0, 1], no value twice (<see cref="ParseSparsity"/> reads "0,0.5,0.9").</summary>
    [Option("the values of s to try, comma-separated (e.g. 0,0.5,0.8,0.9,0.95), each in [0, 1]", Required = true, Parser = typeof(SparsityParser))]
    public IReadOnlyList<double> Sparsity { get; init; } = [0];

    /// <summary>Also run, for every IRR point, the random-removal control at that point's per-matrix removal counts (<see cref="RandomAtCountStrategy"/>).</summary>
    [Option("also realign, for every s, the random-removal control at that IRR point's per-matrix counts")]
    public bool RandomControl { get; init; }

    /// <summary>The seed of the random controls' masks.</summary>
    [Option("--random-control: seed of the random masks")]
    public int Seed { get; init; }

    /// <inheritdoc/>
    public string Command => "sweep";

    /// <inheritdoc/>
    public IReadOnlyList<string> Inputs => Realign.Inputs.Concat(Safety.Inputs).Append(Task.Data)
        .Concat(Provenance.Given(SafeLoraVector, AntidoteData, SafeDeltaData, safety is null ? JudgeSettings?.RefusalMarkers : null)).Distinct().ToList();

    /// <inheritdoc/>
    public string? Output => OutputPath;

    /// <summary>
    /// RESTA points (irr baseline resta: θ_F + γ·v over the realignment's modules) at these γ, evaluated beside IRR for the
    /// safety–utility frontier (docs/BASELINES.md); never chosen as IRR's s. Labels <c>resta-g0.5</c>.
    /// </summary>
    [Option("also evaluate the RESTA baseline (irr baseline resta) at these γ, comma-separated, as frontier points beside IRR (never chosen as s)", Parser = typeof(NumbersParser))]
    public IReadOnlyList<double> RestaGamma { get; init; } = [];

    /// <summary>
    /// Safe LoRA points (irr baseline safelora: LoRA B projected where the similarity is below τ) at these τ, for a LoRA
    /// fine-tune (<see cref="RealignJob.Adapter"/>); never chosen as IRR's s. Labels <c>safelora-t0.5</c>.
    /// </summary>
    [Option("also evaluate the Safe LoRA baseline (irr baseline safelora, LoRA fine-tunes) at these τ, comma-separated, as frontier points (never chosen as s)",
        Name = "safelora-threshold", Parser = typeof(NumbersParser))]
    public IReadOnlyList<double> SafeLoraThreshold { get; init; } = [];

    /// <summary>
    /// Safe Delta points (irr baseline safedelta: the fine-tuning deltas that fit the safety budget scaled by s, compensated
    /// on θ_A's Hessians of <see cref="SafeDeltaData"/>) at these s; never chosen as IRR's s. Labels <c>safedelta-s0.1</c>.
    /// </summary>
    [Option("also evaluate the Safe Delta baseline (irr baseline safedelta) at these budget scales s, comma-separated, each ≥ 0, as frontier points beside IRR (never chosen as s); needs --safedelta-data",
        Name = "safedelta-scale", Parser = typeof(NumbersParser))]
    public IReadOnlyList<double> SafeDeltaScale { get; init; } = [];

    /// <summary>The safety records (harmful prompt → safe answer) Safe Delta's Hessians are computed on; required with <see cref="SafeDeltaScale"/>.</summary>
    [Option("Safe Delta's safety data (harmful prompts with safe answers): " + OptionHelp.Records, Name = "safedelta-data", Kind = OptionKind.Input, HubFile = true)]
    public string? SafeDeltaData { get; init; }

    /// <summary>
    /// Antidote points (irr baseline antidote: the top ρ of each row of θ_F's target weights by |W|·‖X‖ on
    /// <see cref="AntidoteData"/> pruned) at these ρ; never chosen as IRR's s. Labels <c>antidote-r0.1</c>.
    /// </summary>
    [Option("also evaluate the Antidote baseline (irr baseline antidote) at these mask ratios ρ, comma-separated, each in [0, 1], as frontier points beside IRR (never chosen as s); needs --antidote-data",
        Parser = typeof(NumbersParser))]
    public IReadOnlyList<double> AntidoteRatio { get; init; } = [];

    /// <summary>The harmful records (prompt → harmful answer) Antidote's Wanda scores are computed on; required with <see cref="AntidoteRatio"/>.</summary>
    [Option("Antidote's harmful data (harmful prompts with harmful answers): " + OptionHelp.Records, Kind = OptionKind.Input, HubFile = true)]
    public string? AntidoteData { get; init; }

    /// <summary>
    /// Interpolation points (irr baseline interpolate: θ_A + α·(θ_F − θ_A) on every tensor) at these α; never chosen as
    /// IRR's s. Labels <c>interpolate-a0.5</c>.
    /// </summary>
    [Option("also evaluate plain interpolation (irr baseline interpolate, θ_A + α·(θ_F − θ_A)) at these α, comma-separated, as frontier points beside IRR (never chosen as s)",
        Parser = typeof(NumbersParser))]
    public IReadOnlyList<double> InterpolateAlpha { get; init; } = [];

    /// <summary>
    /// Safe LoRA's V (the paper's <c>θ_chat − θ_base</c>, from <c>irr safety-vector --aligned CHAT --unaligned BASE</c>), or
    /// null for the realignment's safety vector (θ_A − θ_U). Only the Safe LoRA points read it.
    /// </summary>
    [Option("Safe LoRA's V: the paper's θ_chat − θ_base (irr safety-vector --aligned CHAT --unaligned BASE); default: --safety-vector",
        Name = "safelora-vector", Kind = OptionKind.Input)]
    public string? SafeLoraVector { get; init; }

    // The V the Safe LoRA points project with.
    internal string? SafeLoraV => SafeLoraVector ?? Realign.SafetyVector;

    /// <summary>The harmful prompt sets of the validation split, one per file (the options' <see cref="Safety"/>).</summary>
    [Option($"harmful prompt sets of the validation split, one per file: {OptionHelp.PromptFormats}", Kind = OptionKind.Input, HubFile = true, Required = true)]
    public IReadOnlyList<string> HarmfulVal { get; init; } = [];

    /// <summary>
    /// Benign prompt sets of the validation split (the options' <see cref="Safety"/>, its <see cref="EvalSafetyJob.BenignPrompts"/>):
    /// every point's refusal rate on them (over-refusal) is recorded in sweep.json; the choice does not use it.
    /// </summary>
    [Option($"benign prompt sets of the validation split (safe requests; each point's refusal rate is recorded, not used by the rule), one per file: {OptionHelp.PromptFormats}",
        Kind = OptionKind.Input, HubFile = true)]
    public IReadOnlyList<string> BenignVal { get; init; } = [];

    /// <summary>The task examples of the validation split (the options' <see cref="Task"/>).</summary>
    [Option("task examples of the validation split (as irr eval task --data reads them)", Kind = OptionKind.Input, HubFile = true, Required = true)]
    public string TaskVal { get; init; } = "";

    /// <summary>The task metric: exact, contains, gsm8k or choice (the options' <see cref="Task"/>).</summary>
    [Option("exact, contains, gsm8k or choice", Required = true)]
    public string TaskMetric { get; init; } = "";

    /// <summary>Most tokens generated per prompt, in both evaluations.</summary>
    [Option("most tokens generated per prompt")]
    public int MaxNewTokens { get; init; } = 256;

    /// <summary>Prompts decoded together (local generation), in both evaluations.</summary>
    [Option("prompts per batch")]
    public int BatchSize { get; init; } = 8;

    /// <summary>The judge options as given (as <c>irr eval safety</c> declares them), or null for the keyword judge.</summary>
    [Options]
    public JudgeSettings? JudgeSettings { get; init; }

    /// <summary>The HTTP judge's verdict cache; null for <c>DIR/judge-cache.jsonl</c>.</summary>
    [Option("http judge: verdict cache file (default DIR/judge-cache.jsonl, shared by every model; with --point, the unit's own: DIR/judge-cache.LABEL.jsonl)",
        Kind = OptionKind.Path, Fingerprinted = false)]
    public string? JudgeCache { get; init; }

    /// <summary>The serving-engine options as given (as the eval commands declare them), or null for local generation.</summary>
    [Options]
    public EngineSettings? EngineSettings { get; init; }

    /// <summary>The serving engine's answer cache; null for <c>DIR/engine-cache/LABEL.jsonl</c>, one file per model.</summary>
    [Option("serving engine: answer cache file (default OUTPUT/engine-cache/LABEL.jsonl, one file per model; a given FILE.jsonl becomes FILE.LABEL.jsonl)",
        Kind = OptionKind.Path, Fingerprinted = false)]
    public string? EngineCache { get; init; }

    /// <summary>The harmful-rate increase over θ_A a chosen point may have, a fraction in [0, 1] (0.05 = 5 percentage points).</summary>
    [Option("the harmful-rate increase over θ_A the chosen point may have, a fraction (0.05 = 5 points)")]
    public double MaxHarmfulIncrease { get; init; } = 0.05;

    /// <summary>
    /// The selection rule (<see cref="SweepSelection.Names"/>): <see cref="SweepSelection.Default"/> qualifies a point on its
    /// harmful rate, <see cref="SweepSelection.Conservative"/> on the upper bound of its 95% Wilson interval (docs/SWEEP.md).
    /// </summary>
    [Option("the selection rule: default (a point qualifies when its harmful rate is at most θ_A's + max-harmful-increase) or conservative " +
            "(when the upper bound of its harmful rate's 95% Wilson interval is)", HelpName = "default|conservative")]
    public string Rule { get; init; } = SweepSelection.Default;

    /// <summary>The model card of every model written (<c>--no-model-card</c>); DIR/chosen's also summarises the choice.</summary>
    [Options]
    public IO.ModelCardOptions Card { get; init; } = new();

    /// <summary>Keep every point's model directory; otherwise they are deleted at the end (the chosen one lives on as <c>DIR/chosen</c>).</summary>
    [Option("keep every point's model directory (by default only DIR/chosen stays)")]
    public bool KeepModels { get; init; }

    /// <summary>
    /// Compute only this unit (<see cref="Units"/>): its index (0 to the number of units − 1) or one of its labels
    /// (<c>irr-s0.5</c>, <c>random-s0.5</c>, <c>aligned</c> …), with <see cref="RunUnit"/>. Nothing is chosen, no model is
    /// deleted and no sweep.json is written; an HTTP judge's cache is the unit's own (<see cref="UnitJudgeCache"/>). Null: the
    /// whole sweep (<see cref="Run"/>).
    /// </summary>
    [Option("compute only unit K into DIR and exit (a cluster array task: --point $SLURM_ARRAY_TASK_ID); K is the unit's index " +
            "(0 to units-1, see --list-points) or one of its labels (irr-s0.5, random-s0.5, resta-g1, aligned …). Units never share a file, " +
            "so array tasks run at once; no choice, no DIR/chosen, no sweep.json, models kept; collect with --collect", HelpName = "K|LABEL")]
    public string? Point { get; init; }

    /// <summary>
    /// The collect step after <see cref="Point"/> jobs: <see cref="Run"/> as always (computing what is still missing, then the
    /// choice, DIR/chosen, sweep.json and frontier.svg); recorded in the points it computes. Exclusive with <see cref="Point"/>.
    /// </summary>
    [Option("the step after the --point jobs: compute whatever is still missing (as a plain rerun does), then choose, write DIR/chosen, " +
            "sweep.json and frontier.svg, and delete the unchosen models unless --keep-models; not with --point")]
    public bool Collect { get; init; }

    /// <summary>The sweep's directory DIR (may exist: a rerun resumes it).</summary>
    [Option("the sweep's directory (a rerun into it resumes: finished points with the same options are skipped)", Name = "output", Alias = "-o",
        Kind = OptionKind.Output, Required = true, Fingerprinted = false)]
    public required string OutputPath { get; init; }

    /// <summary>The judge of every model: <see cref="Safety"/>'s when given in memory, else the one the options describe.</summary>
    /// <exception cref="IrrException">The judge options contradict each other ("sweep: judge must be keyword or http …").</exception>
    public JudgeOptions Judge() => safety is not null ? safety.Judge : (JudgeSettings ?? new JudgeSettings()).ToJudge(Command, JudgeCache);

    /// <summary>The serving engine of every model: <see cref="Safety"/>'s when given in memory, else the one the options describe, or null (local generation).</summary>
    /// <exception cref="IrrException">The engine options contradict each other.</exception>
    public EngineOptions? Engine() => safety is not null ? safety.Engine : EngineSettings.Resolve(Command, null, EngineSettings, EngineCache, keyShared: true);

    // The sparsity list's parser: the sweep's own wording for a bad entry.
    private sealed class SparsityParser : IOptionParser
    {
        public object? Parse(IReadOnlyList<string> values, string key) => ParseSparsity(values);
    }

    // A list of numbers (resta-gamma, safelora-threshold).
    private sealed class NumbersParser : IOptionParser
    {
        public object? Parse(IReadOnlyList<string> values, string key) => ParseNumbers(values, key);
    }

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
        var (judge, engine) = (Judge(), Engine());
        Require(Sparsity.Count > 0, "sparsity must list at least one value");
        foreach (double s in Sparsity) Require(s is >= 0 and <= 1, $"sparsity must be between 0 and 1, not {s.ToString(CultureInfo.InvariantCulture)}");
        var twice = Sparsity.GroupBy(s => s).FirstOrDefault(g => g.Count() > 1);
        Require(twice is null, $"sparsity lists {twice?.Key.ToString(CultureInfo.InvariantCulture)} twice");
        Require(MaxHarmfulIncrease is >= 0 and <= 1, $"max-harmful-increase must be between 0 and 1, not {MaxHarmfulIncrease.ToString(CultureInfo.InvariantCulture)}");
        Require(SweepSelection.Names.Contains(Rule), $"rule must be {string.Join(" or ", SweepSelection.Names)}, not '{Rule}'");
        Require(RemovalMethods.Sweepable.Any(m => m.Name == Realign.Method),
            $"method must be {RemovalMethods.Names(RemovalMethods.Sweepable)}, not '{Realign.Method}' (random-control adds the random-removal control)");
        Require(Seed == 0 || RandomControl, "seed applies to random-control only");
        SweepBaselines.Validate(this);
        Require(SafeLoraVector is null || SafeLoraThreshold.Count > 0, "safelora-vector applies to the Safe LoRA points only (safelora-threshold)");
        Require((AntidoteData is not null) == (AntidoteRatio.Count > 0), "antidote-ratio and antidote-data go together (the Antidote points score θ_F on the harmful data)");
        Require((SafeDeltaData is not null) == (SafeDeltaScale.Count > 0), "safedelta-scale and safedelta-data go together (the Safe Delta points need θ_A's Hessians on the safety data)");
        Require(Realign is { Sparsity: 0, Strategy: null, RemovalCounts: null, Seed: 0, DryRun: false, OutputPath: null, Overwrite: false },
            "the realignment's sparsity, strategy, removal-counts, seed, dry-run, output and overwrite are the sweep's own");
        Require(Realign.Calibration is not null, "calibration is required");
        Require(Safety.Prompts.Count > 0 || Safety.Sets is not null, "harmful-val is required (harmful prompt sets of the validation split)");
        Require(Safety.Responses is null, "the sweep generates every model's responses; it judges no responses file");
        Require(Safety.PlainOnly, "the sweep measures the plain harmful prompts; evaluate attacks on the chosen model with irr eval safety --attack");
        Require(engine is not ServedEngine { Model.Length: > 0 }, "engine-model does not apply to a sweep: each model is served under its label");
        Require(engine is null or ServedEngine,
            "the sweep evaluates a different model at every point, so it needs engine-serve (a command that serves {model}, started for each model under its label); " +
            "engine-url and engine-model name one served model (for irr eval)");
        Require(Equals(Safety.Engine, Task.Engine), "the safety and task evaluations must use one serving engine");
        // Every point is a model; θ_F of a LoRA fine-tune and Safe LoRA's points are adapters on θ_A.
        engine?.Validate(Command, hasAdapter: Realign.Finetuned is null && Realign.Adapter is not null, hasFullModel: true);
        foreach (var (serve, option) in new[] { ((engine as ServedEngine)?.Serve, "engine-serve"), ((engine as ServedEngine)?.ServeAdapter, "engine-serve-adapter") })
            Require(serve is null || serve.Contains("{name}", StringComparison.Ordinal),
                $"{option} must contain {{name}}: each model of a sweep is served under its label (vLLM: --served-model-name {{name}})");
        Require(Task.Data.Length > 0, "task-val is required");
        Require(Point is null || !Collect, "point and collect are exclusive: compute units with point, then collect them in one run without point");
        if (Point is not null) FindUnit(Point);
        Require(TaskMetrics.TryParse(Task.Metric) is not null, $"task-metric must be exact, contains, gsm8k or choice, not \"{Task.Metric}\"");
        // The rest as the jobs the sweep runs check it, in the sweep's name.
        AsSweep((Realign with { OutputPath = OutputPath }).Validate);
        AsSweep((Safety with { Model = Realign.Base, OutputDir = OutputPath, Judge = judge, Engine = engine }).Validate);
        AsSweep((Task with { Model = Realign.Base, OutputDir = OutputPath, Engine = engine }).Validate);
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
        return runner.RunUnit(SweepPlan.Of(this)[FindUnit(Point).Index]);
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
    private SweepRunner Start(Action<JobProgress>? progress)
    {
        Validate();
        RequireInputs();
        InputChecks.Realign(Command, Realign.Base, Realign.Finetuned, Realign.Adapter, Realign.SafetyVector, Realign.Fisher);
        AtomicFile.RequireDirectoryTarget(OutputPath);
        // A rerun resumes a sweep directory; any other non-empty directory is not written into. A sweep creates DIR/points
        // before it writes anything else into DIR (SweepRunner.CreateRoot), so a directory another unit's job is writing into
        // right now is either empty or has points/.
        if (Directory.Exists(OutputPath) && Directory.EnumerateFileSystemEntries(OutputPath).Any()
            && !File.Exists(Path.Combine(OutputPath, FileName)) && !Directory.Exists(Path.Combine(OutputPath, "points")))
            throw new IrrException($"{OutputPath}: exists, is not empty and is not a sweep directory (no {FileName}, no points/); choose another output");
        // The evaluation data is read before any work: a malformed file fails now, not after hours of realignment.
        var sets = Safety.LoadSets();
        var examples = TaskExample.Load(Task.Data);
        return new SweepRunner(this, sets, examples, progress, Point is null ? null : FindUnit(Point));
    }

    /// <summary>The sweep's units in their order (<see cref="SweepUnit"/>), from the options alone (no file is read).</summary>
    public IReadOnlyList<SweepUnit> Units() => SweepPlan.Units(this);

    /// <summary>The unit <paramref name="point"/> names: its index (0, 1 …) or one of its labels.</summary>
    /// <exception cref="IrrException">No unit has that index or label ("sweep: point must be … 0 to U − 1 (U units) …").</exception>
    public SweepUnit FindUnit(string point) => SweepPlan.Find(this, point);

    /// <summary>
    /// The HTTP judge's verdict cache of a unit computed alone: <paramref name="cache"/> with the unit's label before its
    /// extension (<c>DIR/judge-cache.jsonl</c> → <c>DIR/judge-cache.irr-s0.5.jsonl</c>), so that units running at the same
    /// time never append to one file.
    /// </summary>
    public static string UnitJudgeCache(string cache, SweepUnit unit) => WithLabel(cache, unit.Label);

    // A cache file's name with a label before its extension: judge-cache.jsonl → judge-cache.irr-s0.5.jsonl.
    internal static string WithLabel(string path, string label) =>
        Path.Combine(Path.GetDirectoryName(path) ?? "", $"{Path.GetFileNameWithoutExtension(path)}.{label}{Path.GetExtension(path)}");

}
