using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
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
    double HarmfulRate, double TaskScore)
{
    /// <summary>
    /// Whether it is a baseline point (<see cref="SweepBaselines"/>: resta, safelora …), never chosen as IRR's s;
    /// its <see cref="Setting"/> then holds the baseline's γ or τ.
    /// </summary>
    public bool IsBaseline => SweepBaselines.IsBaseline(Method);

    /// <summary>The refusal rate on the benign validation prompts (<see cref="SweepJob.BenignVal"/>: over-refusal); null without them.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Eval.RefusalCounts? Refusal { get; init; }

    /// <summary>Removed as a share of the target parameters, in [0, 1] (0 when there are none).</summary>
    public double RemovedShare => Parameters == 0 ? 0 : (double)Removed / Parameters;
}

/// <summary>A reference model of a sweep (θ_A or θ_F), evaluated as the points are.</summary>
/// <param name="Label">aligned or finetuned (its directory under <c>DIR/reference/</c>).</param>
/// <param name="Model">The model directory evaluated.</param>
/// <param name="Adapter">The LoRA adapter merged into it (θ_F given as an adapter), or null.</param>
/// <param name="HarmfulRate">The harmful-response rate on the harmful validation prompts, a fraction in [0, 1].</param>
/// <param name="TaskScore">The task metric on the task validation data, a fraction in [0, 1].</param>
public sealed record SweepReference(string Label, string Model, string? Adapter, double HarmfulRate, double TaskScore)
{
    /// <summary>The refusal rate on the benign validation prompts (<see cref="SweepJob.BenignVal"/>: over-refusal); null without them.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Eval.RefusalCounts? Refusal { get; init; }
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
        static JsonNode Node<T>(T value) => JsonSerializer.SerializeToNode(value, JsonFiles.ResultOptions)!;
        static JsonArray Numbers(IEnumerable<double> values) => new(values.Select(v => (JsonNode?)v).ToArray());
        var json = new JsonObject
        {
            ["irr_version"] = Provenance.Version,
            ["rule"] = SweepSelection.Rule,
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
            ["points"] = new JsonArray(result.Points.Select(p => (JsonNode?)Node(p)).ToArray()),
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
