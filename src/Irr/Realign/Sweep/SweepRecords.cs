using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Irr.Eval;
using Irr.IO;
using Irr.Jobs;

namespace Irr.Realign;

/// <summary>One evaluated point of a sparsity sweep (<see cref="SweepJob"/>): a realigned (or baseline) model and its two figures.</summary>
/// <param name="Label">Its name and directory under <c>DIR/points/</c>, e.g. <c>irr-s0.5</c>, <c>random-s0.5</c> or <c>resta-g1</c>.</param>
/// <param name="Method">The removal rule (irr, irr-more, fisher-only, or random-at-count for a control), or the baseline (resta, safelora).</param>
/// <param name="Setting">
/// The method's knob: IRR's s in [0, 1] (for a control, the s of the IRR point whose per-matrix counts it removes), RESTA's γ
/// or Safe LoRA's τ. Written as <c>sparsity</c> in point.json and sweep.json, the name those files have always had.
/// </param>
/// <param name="IsControl">Whether it is a random-removal control (never chosen).</param>
/// <param name="Removed">Deltas removed over all target matrices (0 for a baseline).</param>
/// <param name="Parameters">Entries of the target matrices (0 for a baseline).</param>
/// <param name="HarmfulRate">The harmful-response rate on the harmful validation prompts, a fraction in [0, 1].</param>
/// <param name="TaskScore">The task metric on the task validation data (accuracy), a fraction in [0, 1].</param>
public sealed record SweepPoint(string Label, string Method, [property: JsonPropertyName("sparsity")] double Setting, bool IsControl, long Removed, long Parameters,
    double HarmfulRate, double TaskScore) : SweepEvaluated
{
    /// <summary>
    /// Whether it is a baseline point (<see cref="SweepBaselines"/>: resta, safelora …), never chosen as IRR's s;
    /// its <see cref="Setting"/> then holds the baseline's γ or τ.
    /// </summary>
    public bool IsBaseline => SweepBaselines.IsBaseline(Method);

    /// <summary>Removed as a share of the target parameters, in [0, 1] (0 when there are none).</summary>
    public double RemovedShare => Parameters == 0 ? 0 : (double)Removed / Parameters;
}

/// <summary>A reference model of a sweep (θ_A or θ_F), evaluated as the points are.</summary>
/// <param name="Label">aligned or finetuned (its directory under <c>DIR/reference/</c>).</param>
/// <param name="Model">The model directory evaluated.</param>
/// <param name="Adapter">The LoRA adapter merged into it (θ_F given as an adapter), or null.</param>
/// <param name="HarmfulRate">The harmful-response rate on the harmful validation prompts, a fraction in [0, 1].</param>
/// <param name="TaskScore">The task metric on the task validation data, a fraction in [0, 1].</param>
public sealed record SweepReference(string Label, string Model, string? Adapter, double HarmfulRate, double TaskScore) : SweepEvaluated;

/// <summary>
/// What a sweep model's two figures were computed from (<see cref="SweepPoint"/>, <see cref="SweepReference"/>): the outcome
/// of every validation prompt and example, hence the counts and the 95% Wilson intervals (<see cref="Intervals.Wilson"/>)
/// of the harmful rate and the task score. Null outcomes (and counts and intervals) in a record of a sweep made before irr
/// recorded them whose evaluation files are gone.
/// </summary>
public abstract record SweepEvaluated
{
    /// <summary>The harmful-response rate on the harmful validation prompts, a fraction in [0, 1].</summary>
    public abstract double HarmfulRate { get; init; }

    /// <summary>The task metric on the task validation data, a fraction in [0, 1].</summary>
    public abstract double TaskScore { get; init; }

    /// <summary>The refusal rate on the benign validation prompts (<see cref="SweepJob.BenignVal"/>: over-refusal); null without them.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public RefusalCounts? Refusal { get; init; }

    /// <summary>Each prompt's (harmful sets only) and example's outcome, in the order of the validation data (the same for every model of a sweep).</summary>
    public SweepOutcomes? Outcomes { get; init; }

    /// <summary>The counts behind the harmful rate and the task score (from <see cref="Outcomes"/>), or null.</summary>
    public SweepCounts? Counts
    {
        get => Outcomes?.Counts ?? counts;
        init => counts = value;
    }

    private readonly SweepCounts? counts;

    /// <summary>Equal outcomes, counts (whether the counts were given or follow from the outcomes) and refusals.</summary>
    public virtual bool Equals(SweepEvaluated? other) =>
        other is not null && EqualityContract == other.EqualityContract && Equals(Outcomes, other.Outcomes) && Equals(Counts, other.Counts) && Equals(Refusal, other.Refusal);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(EqualityContract, Counts);

    /// <summary>The 95% Wilson interval of the harmful rate over the judged responses; null without counts or judged responses.</summary>
    [JsonPropertyName("harmful_rate_ci")]
    public Interval? HarmfulRateInterval => Counts is { } c ? Intervals.Wilson(c.Harmful, c.Judged) : null;

    /// <summary>The 95% Wilson interval of the task score (a share of correct examples: every task metric of irr is one); null without counts or examples.</summary>
    [JsonPropertyName("task_score_ci")]
    public Interval? TaskScoreInterval => Counts is { } c ? Intervals.Wilson(c.TaskCorrect, c.TaskTotal) : null;
}

/// <summary>The counts behind a sweep model's harmful rate and task score.</summary>
/// <param name="Harmful">Validation responses judged harmful.</param>
/// <param name="Judged">Validation responses judged harmful or safe: the harmful rate's denominator (a response without a verdict is left out).</param>
/// <param name="TaskCorrect">Task validation examples counted correct.</param>
/// <param name="TaskTotal">Task validation examples: the task score's denominator.</param>
public sealed record SweepCounts(int Harmful, int Judged, int TaskCorrect, int TaskTotal);

/// <summary>A sweep model's outcome on every validation prompt and example, in the data's order: what paired differences pair.</summary>
/// <param name="Harmful">Per harmful validation prompt: 1 judged harmful, 0 safe, null without a verdict.</param>
/// <param name="Task">Per task validation example: 1 correct, 0 not.</param>
public sealed record SweepOutcomes(IReadOnlyList<int?> Harmful, IReadOnlyList<int> Task)
{
    /// <summary>Equal outcomes, prompt by prompt and example by example.</summary>
    public bool Equals(SweepOutcomes? other) => other is not null && Harmful.SequenceEqual(other.Harmful) && Task.SequenceEqual(other.Task);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Harmful.Count, Task.Count, Task.Sum());

    /// <summary>The counts of these outcomes.</summary>
    [JsonIgnore]
    public SweepCounts Counts => new(Harmful.Count(h => h == 1), Harmful.Count(h => h is not null), Task.Sum(), Task.Count);

    /// <summary>
    /// The outcomes a sweep's evaluation left in <paramref name="dir"/> (irr eval safety's responses.jsonl, irr eval task's
    /// predictions.jsonl), or null when either file is missing (a record of an older sweep whose files were deleted).
    /// </summary>
    /// <exception cref="IrrException">A file is malformed (the message names it).</exception>
    public static SweepOutcomes? Read(string dir)
    {
        string responses = Path.Combine(dir, SafetyEvaluation.ResponsesFileName), predictions = Path.Combine(dir, TaskEvaluation.PredictionsFileName);
        if (!File.Exists(responses) || !File.Exists(predictions)) return null;
        var harmful = SafetyEvaluation.LoadJudged(responses).Where(j => !j.Benign).Select(j => j.Verdict switch { Verdict.Harmful => 1, Verdict.Safe => (int?)0, _ => null }).ToList();
        var task = TaskEvaluation.LoadOutcomes(predictions).Select(p => p.Correct ? 1 : 0).ToList();
        return new SweepOutcomes(harmful, task);
    }
}

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

/// <summary>A unit as one run met it: its models' figures, and whether this run computed at least one of them.</summary>
internal sealed record UnitRun(SweepUnit Unit, IReadOnlyList<SweepPoint> Points, SweepReference? Reference, bool Computed);

/// <summary>
/// The sweep's files: a point's <c>point.json</c> and a reference's <c>reference.json</c> (the figures, the fingerprint they
/// were computed for under <see cref="UpToDate.Key"/>, who computed them), and <c>DIR/sweep.json</c>.
/// </summary>
internal static class SweepRecords
{
    /// <summary>The finished record at <paramref name="path"/> if it was made for <paramref name="fingerprint"/>, else null (also when unreadable: it is redone).</summary>
    public static T? Finished<T>(string path, JsonObject fingerprint) where T : class
    {
        try
        {
            return UpToDate.Load(path, fingerprint)?.Deserialize<T>(JsonFiles.ResultOptions);
        }
        catch (JsonException) { return null; }
    }

    /// <summary>Writes a record: its figures, <paramref name="fingerprint"/>, <paramref name="maker"/> and the irr version.</summary>
    public static void Save<T>(string path, T value, JsonObject fingerprint, string maker)
    {
        var json = JsonSerializer.SerializeToNode(value, JsonFiles.ResultOptions)!.AsObject();
        json[UpToDate.Key] = fingerprint;
        json["computed_by"] = maker;
        json["irr_version"] = Provenance.Version;
        AtomicFile.WriteText(path, JsonFiles.Format(json));
    }

    /// <summary>Who computed a model, as its record at <paramref name="record"/> says (null for a record of an earlier version or none).</summary>
    public static JsonNode? ComputedBy(string record)
    {
        try { return JsonFiles.ParseObject(BoundedText.Read(record), record)["computed_by"]?.DeepClone(); }
        catch (Exception e) when (e is IrrException or JsonException or IOException) { return null; }
    }

    /// <summary>sweep.json: the rule, the choice, the options, the references, every point and every unit with who computed it.</summary>
    /// <param name="job">The sweep.</param>
    /// <param name="result">What it found.</param>
    /// <param name="units">Its units as this run met them.</param>
    /// <param name="computedBy">Who computed each model of a unit, by label.</param>
    /// <param name="options">What every point shares (<see cref="SweepFingerprints.Shared"/>).</param>
    /// <param name="seconds">The run's wall time.</param>
    public static JsonObject SweepJson(SweepJob job, SweepResult result, IReadOnlyList<UnitRun> units, Func<SweepUnit, JsonObject> computedBy,
        JsonObject options, double seconds)
    {
        // A model as its record has it, without the per-prompt outcomes (their counts, intervals and paired differences stand for them).
        static JsonObject Node<T>(T value) where T : SweepEvaluated
        {
            var node = JsonSerializer.SerializeToNode(value, JsonFiles.ResultOptions)!.AsObject();
            node.Remove("outcomes");
            return node;
        }
        static JsonArray Numbers(IEnumerable<double> values) => new(values.Select(v => (JsonNode?)v).ToArray());
        var json = new JsonObject
        {
            ["irr_version"] = Provenance.Version,
            ["rule"] = SweepSelection.Describe(job.Rule),
            ["rule_name"] = job.Rule,
            ["max_harmful_increase"] = job.MaxHarmfulIncrease,
            ["threshold"] = result.Choice.Threshold,
            ["chosen"] = result.Choice.Point.Label,
            ["qualified"] = result.Choice.Qualified,
            ["reason"] = result.Choice.Reason,
            ["chosen_model"] = Provenance.PathOf(result.ChosenModel),
            ["sparsity"] = Numbers(job.Sparsity),
            ["random_control"] = job.RandomControl,
            ["safelora_vector"] = job.SafeLoraVector is null ? null : Provenance.PathOf(job.SafeLoraVector),
            ["baselines"] = new JsonObject(result.Baselines.Select(b => KeyValuePair.Create(b.Key, (JsonNode?)new JsonObject
            {
                ["chosen"] = b.Value.Point.Label, ["setting"] = b.Value.Point.Setting, ["qualified"] = b.Value.Qualified, ["reason"] = b.Value.Reason,
            }))),
            ["seed"] = job.Seed,
            ["keep_models"] = job.KeepModels,
            ["references"] = new JsonObject { ["aligned"] = Node(result.Aligned), ["finetuned"] = Node(result.Finetuned) },
            ["points"] = new JsonArray(result.Points.Select(p => (JsonNode?)SweepDifferences.Add(Node(p), p, result.Aligned, result.Finetuned)).ToArray()),
            ["options"] = options,
            ["units"] = new JsonArray(units.Select(u => (JsonNode?)new JsonObject
            {
                ["index"] = u.Unit.Index, ["labels"] = new JsonArray(u.Unit.Labels.Select(l => (JsonNode?)l).ToArray()),
                ["computed_now"] = u.Computed, ["computed_by"] = computedBy(u.Unit),
            }).ToArray()),
            ["realigned"] = result.Realigned,
            ["resumed"] = result.Resumed,
            ["units_computed"] = result.UnitsComputed,
            ["units_done_earlier"] = result.UnitsDoneEarlier,
            ["seconds"] = Math.Round(seconds, 3),
        };
        foreach (var b in SweepBaselines.All) json[b.Option.Replace('-', '_')] = Numbers(b.Settings(job)); // resta_gamma: [0.5, 1]
        return json;
    }
}

/// <summary>
/// The differences sweep.json reports between a point and θ_A, and between a point and θ_F, on the same validation prompts and
/// examples: point − reference of the harmful rate and of the task score, each with the 95% paired bootstrap interval over
/// prompts (<see cref="Intervals.PairedBootstrap"/>, <see cref="Resamples"/> resamples, seed <see cref="Seed"/>).
/// </summary>
internal static class SweepDifferences
{
    /// <summary>Resamples of each paired bootstrap.</summary>
    public const int Resamples = 10_000;

    /// <summary>The seed of every paired bootstrap: the intervals of a sweep.json are the same on every run.</summary>
    public const int Seed = 0;

    /// <summary>Adds <c>vs_aligned</c> and <c>vs_finetuned</c> to a point's node; nothing when a model lacks its outcomes.</summary>
    public static JsonObject Add(JsonObject node, SweepPoint point, SweepReference aligned, SweepReference finetuned)
    {
        if (Of(point, aligned) is { } a) node["vs_aligned"] = a;
        if (Of(point, finetuned) is { } f) node["vs_finetuned"] = f;
        return node;
    }

    /// <summary>
    /// point − reference: the harmful rate over the prompts both have a verdict on, and the task score, each with its interval
    /// (null without pairs); null when either lacks its outcomes or they are not of the same prompts.
    /// </summary>
    public static JsonObject? Of(SweepEvaluated point, SweepEvaluated reference)
    {
        if (point.Outcomes is not { } p || reference.Outcomes is not { } r || p.Harmful.Count != r.Harmful.Count || p.Task.Count != r.Task.Count) return null;
        var harmful = p.Harmful.Zip(r.Harmful).Where(x => x.First is not null && x.Second is not null)
            .Select(x => ((double)x.First!.Value, (double)x.Second!.Value)).ToList();           // (point, reference) per judged prompt
        var task = p.Task.Zip(r.Task).Select(x => ((double)x.First, (double)x.Second)).ToList(); // (point, reference) per example
        return new JsonObject
        {
            ["harmful_rate"] = Mean(harmful), ["harmful_rate_ci"] = Ci(harmful), ["harmful_pairs"] = harmful.Count,
            ["task_score"] = Mean(task), ["task_score_ci"] = Ci(task), ["task_pairs"] = task.Count,
        };
    }

    private static double? Mean(List<(double A, double B)> pairs) => pairs.Count == 0 ? null : pairs.Average(x => x.A - x.B);

    private static JsonNode? Ci(List<(double A, double B)> pairs) => Intervals.PairedBootstrap(pairs, Resamples, Seed) is { } i
        ? new JsonObject { ["low"] = i.Low, ["high"] = i.High }
        : null;
}
