using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Irr.Data;
using Irr.Eval;
using Irr.IO;
using Irr.Jobs;

namespace Irr.Realign;

/// <summary>
/// What makes each model of a sweep, recorded in its point.json or reference.json and compared by <see cref="UpToDate"/> when
/// a rerun decides whether it is done: the inputs (absolute paths, and content stamps so that a file replaced in place is
/// noticed), the realignment's options as <see cref="RealignJob"/>'s schema declares them (<see cref="JobSchema.Fingerprint"/>:
/// an option added to the realignment is in every point's fingerprint without a line here), and the evaluation's.
/// </summary>
/// <param name="job">The sweep.</param>
/// <param name="sets">The harmful validation prompt sets, read once.</param>
/// <param name="examples">The task validation examples, read once.</param>
internal sealed class SweepFingerprints(SweepJob job, IReadOnlyList<PromptSet> sets, IReadOnlyList<TaskExample> examples)
{
    /// <summary>
    /// A point made by <paramref name="made"/>: an IRR point or a random control (a <see cref="RealignJob"/>), or a baseline
    /// point (a RESTA or Safe LoRA job, so that changing the Fisher, the calibration data or the OBS options redoes the IRR
    /// points alone); then the evaluation. A control's removal-counts is the IRR point's label (that point's own fingerprint
    /// says what its counts are).
    /// </summary>
    public JsonObject Point(PlannedPoint p, IJob made) => made switch
    {
        RealignJob r when p.ControlOf is { } irr => Declared(r with { RemovalCounts = null }, "realign", ("removal-counts", irr)),
        RealignJob r => Declared(r, "realign"),
        _ => Declared(made, "baseline", ("method", p.Method)),
    };

    /// <summary>What every point shares (sweep.json's options): the inputs, the realignment's options and the evaluation.</summary>
    public JsonObject Shared() => Declared(job.Realign, "realign");

    // A job's fingerprinted options as its schema declares them (JobSchema.Fingerprint: an option added to the job is in
    // the fingerprint without a line here) under `section`, its input paths made absolute and stamped apart under "inputs"
    // and "stamps" (keys with underscores, as irr-report.json's inputs), then the evaluation.
    private JsonObject Declared(IJob made, string section, params (string Key, string Value)[] extra)
    {
        var schema = JobSchema.Of(made.GetType());
        var options = schema.Fingerprint(made);
        var (inputs, stamps) = (new JsonObject(), new JsonObject());
        foreach (var input in schema.Options.Where(o => o.Kind == OptionKind.Input))
        {
            options.Remove(input.Key);
            string key = input.Key.Replace('-', '_');
            string? path = input.ValueIn(made) as string;
            inputs[key] = PathOf(path);
            if (path is not null && Provenance.HubOf(path) is { } hub) inputs[key + "_hub"] = hub; // a model from the Hub: its repo and commit
            if (path is not null) stamps[key] = Stamp(path);
        }
        foreach (var (key, value) in extra) options[key] = value;
        return new JsonObject { ["inputs"] = inputs, ["stamps"] = stamps, [section] = options, ["evaluation"] = Evaluation() };
    }

    /// <summary>A reference (θ_A, or θ_F as a model or an adapter on θ_A): the model evaluated and the evaluation.</summary>
    public JsonObject Reference(string model, string? adapter) => new()
    {
        ["model"] = Provenance.PathOf(model), ["adapter"] = PathOf(adapter),
        ["stamps"] = Stamps(("model", model), ("adapter", adapter)), ["evaluation"] = Evaluation(),
    };

    // What makes an evaluation: the prompt sets, the judge, the task data and metric, the generation options.
    private JsonObject Evaluation()
    {
        var s = job.Safety;
        var (markers, http) = ((job.Judge() as KeywordJudgeOptions)?.RefusalMarkers, job.Judge() as HttpJudgeOptions);
        var judge = s.CustomJudge is { } custom ? new JsonObject { ["name"] = custom.Name } : new JsonObject
        {
            ["judge"] = job.Judge().Kind,
            ["refusal_markers"] = PathOf(markers),
            ["refusal_markers_stamp"] = markers is null ? null : Stamp(markers),
            ["judge_url"] = http?.Url, ["judge_model"] = http?.Model, ["judge_protocol"] = http?.Protocol,
        };
        var options = new JsonObject
        {
            ["harmful_val"] = new JsonArray(sets.Select(set => (JsonNode?)SetFingerprint(set, s.Sets is null ? Provenance.PathOf(set.File) : set.File)).ToArray()),
            ["judge"] = judge,
            ["task_val"] = Provenance.PathOf(job.Task.Data),
            ["task_examples"] = examples.Count,
            ["task_sha256"] = Digest(examples.SelectMany(e => new[] { e.User, e.Gold, e.Choices.ToString(CultureInfo.InvariantCulture) })),
            // Every other option of the two evaluations as their schemas declare them: one added there is here without a line.
            ["safety"] = Generation(JobSchema.Of<EvalSafetyJob>(), s),
            ["task"] = Generation(JobSchema.Of<EvalTaskJob>(), job.Task),
        };
        // Answers of a served model may differ from local ones (another numeric precision): the engine is part of the evaluation.
        if (job.Engine() is ServedEngine e) options["engine"] = new JsonObject { ["serve"] = e.Serve, ["serve_adapter"] = e.ServeAdapter, ["api"] = e.Api };
        return options;
    }

    // A validation prompt set: its name, file, size and content digest, and "benign": true for a benign set (absent for a
    // harmful one, as before benign sets existed, so that earlier sweeps still resume).
    private static JsonObject SetFingerprint(PromptSet set, string file)
    {
        var json = new JsonObject
        {
            ["name"] = set.Name, ["file"] = file, ["prompts"] = set.Records.Count,
            ["sha256"] = Digest(set.Records.SelectMany(p => new[] { p.Prompt, p.Category ?? "" })),
        };
        if (set.Benign) json["benign"] = true;
        return json;
    }

    // An evaluation's fingerprint without what the sweep records otherwise: the model evaluated (the point's own), the data
    // (by content digest above) and the judge and engine settings (resolved above).
    private static JsonObject Generation(JobSchema schema, IJob evaluation)
    {
        var fingerprint = schema.Fingerprint(evaluation);
        foreach (var option in schema.Options.Where(o => o.Kind != OptionKind.Value || o.Properties[0].Through.Count > 0))
            fingerprint.Remove(option.Key);
        return fingerprint;
    }

    private static string? PathOf(string? path) => path is null ? null : Provenance.PathOf(path);

    // Size and modification time of each given input (a directory: its files' total size and the latest time), as irr run's hash cache keys them.
    private static JsonObject Stamps(params (string Key, string? Path)[] inputs) =>
        new(inputs.Where(i => i.Path is not null).Select(i => KeyValuePair.Create(i.Key, (JsonNode?)Stamp(i.Path!))));

    private static string? Stamp(string path) => ContentHash.StampText(Path.GetFullPath(path));

    // The SHA-256 of texts (each UTF-8, ended by a zero byte), lowercase hex: what the evaluation data says, whatever its file.
    private static string Digest(IEnumerable<string> texts)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (string text in texts)
        {
            sha.AppendData(Encoding.UTF8.GetBytes(text));
            sha.AppendData([0]);
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }
}
