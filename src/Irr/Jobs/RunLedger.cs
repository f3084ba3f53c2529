using System.Text.Json.Nodes;
using Irr.IO;

namespace Irr.Jobs;

/// <summary>What a step of a recipe run was and how it went, as run.json records it.</summary>
internal sealed record StepRecord
{
    /// <summary>The step's id ("eval-safety").</summary>
    public required string Id { get; init; }

    /// <summary>Its command ("eval safety").</summary>
    public required string Command { get; init; }

    /// <summary>The command line it ran, without "irr" (the same as running the step on its own).</summary>
    public required IReadOnlyList<string> Arguments { get; init; }

    /// <summary>Every option of the command with its value, defaults included, by key.</summary>
    public required JsonObject Options { get; init; }

    /// <summary>
    /// The options that can change the step's result (<see cref="JobSchema.Fingerprint"/>): what a rerun compares, so that
    /// a new timeout or concurrency does not redo the step; null in a run.json written before it (the step reruns once).
    /// </summary>
    public JsonObject? Fingerprint { get; init; }

    /// <summary>What it writes (full path), or null.</summary>
    public required string? Output { get; init; }

    /// <summary>
    /// The content hash of each input (full path → SHA-256), as they were when it ran; a Hub repo or <c>hf://</c> file as
    /// given → the blobs it read ("<c>blob ETAG</c>", "<c>blobs SHA-256</c>": <see cref="RecipeSteps.HubInputs"/>).
    /// </summary>
    public required SortedDictionary<string, string> Inputs { get; init; }

    /// <summary>Each Hub repo or <c>hf://</c> file as given → the commit it resolved to ("<c>org/name@COMMIT</c>"); null without any.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public SortedDictionary<string, string>? Hub { get; init; }

    /// <summary>When it started (UTC).</summary>
    public required DateTime Started { get; init; }

    /// <summary>How long it ran, in seconds.</summary>
    public required double Seconds { get; init; }

    /// <summary><see cref="RunLedger.Done"/>, <see cref="RunLedger.Skipped"/> or <see cref="RunLedger.Failed"/>.</summary>
    public required string Status { get; init; }
}

/// <summary>run.json as stored.</summary>
internal sealed record RunFile
{
    /// <summary>The version of irr that wrote it.</summary>
    public required string IrrVersion { get; init; }

    /// <summary>The recipe (full path).</summary>
    public required string Recipe { get; init; }

    /// <summary>The steps that have run, in recipe order.</summary>
    public required List<StepRecord> Steps { get; init; }

    /// <summary>The hash cache of the steps' inputs.</summary>
    public required List<HashEntry> Hashes { get; init; }
}

/// <summary>
/// <c>OUTPUT/run.json</c>, the ledger of a recipe's runs: each step's command, options, output, input hashes, start,
/// seconds and status, and the input hash cache. A step whose output exists and whose command, options, output and input
/// hashes are as recorded is up to date. Written atomically after every step, so it records what finished.
/// </summary>
internal sealed class RunLedger
{
    /// <summary>The ledger's file name inside the run's output directory.</summary>
    public const string FileName = "run.json";

    /// <summary>The status of a step that ran to the end in the latest run that ran it.</summary>
    public const string Done = "done";

    /// <summary>The status of a step that was up to date, so not run, in the latest run (its times are those of the run that made it).</summary>
    public const string Skipped = "skipped";

    /// <summary>The status of a step that failed; it is never up to date.</summary>
    public const string Failed = "failed";

    private readonly Dictionary<string, StepRecord> steps;

    private RunLedger(string path, IEnumerable<StepRecord> records, ContentHash hashes)
    {
        Path = path;
        steps = records.ToDictionary(r => r.Id, StringComparer.Ordinal);
        Hashes = hashes;
    }

    /// <summary>The run.json file (full path).</summary>
    public string Path { get; }

    /// <summary>The input hash cache.</summary>
    public ContentHash Hashes { get; }

    /// <summary>The record of step <paramref name="id"/>, or null when it has not run.</summary>
    public StepRecord? Find(string id) => steps.GetValueOrDefault(id);

    /// <summary>The ledger of the run directory <paramref name="outputDirectory"/>: its run.json, or an empty ledger.</summary>
    /// <exception cref="IrrException">run.json exists but is not valid.</exception>
    public static RunLedger Load(string outputDirectory)
    {
        string path = System.IO.Path.Combine(System.IO.Path.GetFullPath(outputDirectory), FileName);
        var file = JsonFiles.Load<RunFile>(path);
        return new RunLedger(path, file?.Steps ?? [], new ContentHash(file?.Hashes));
    }

    /// <summary>The content hash of each of <paramref name="inputs"/> that exists.</summary>
    public SortedDictionary<string, string> HashInputs(IEnumerable<string> inputs)
    {
        var hashes = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (string input in inputs)
            if (Hashes.Of(input) is { } hash) hashes[input] = hash;
        return hashes;
    }

    /// <summary>
    /// Whether <paramref name="candidate"/> (the step as it would run now) is up to date: it ran to the end before with the
    /// same command, options, output and input hashes, and its output still exists.
    /// </summary>
    public bool IsUpToDate(StepRecord candidate)
    {
        if (Find(candidate.Id) is not { } previous || previous.Status == Failed) return false;
        return previous.Command == candidate.Command
            && UpToDate.Same(previous.Fingerprint, candidate.Fingerprint)
            && previous.Output == candidate.Output
            && candidate.Output is not null && (File.Exists(candidate.Output) || Directory.Exists(candidate.Output))
            && previous.Inputs.Count == candidate.Inputs.Count
            && previous.Inputs.All(kv => candidate.Inputs.TryGetValue(kv.Key, out var h) && h == kv.Value);
    }

    /// <summary>Records a step (replacing its earlier record).</summary>
    public void Record(StepRecord record) => steps[record.Id] = record;

    /// <summary>Marks an up-to-date step as skipped in this run, keeping its record.</summary>
    public void MarkSkipped(string id) => steps[id] = steps[id] with { Status = Skipped };

    /// <summary>
    /// Writes run.json atomically: the records of <paramref name="stepIds"/> (the recipe's steps, in its order; records of
    /// steps no longer in the recipe are dropped) and the hash cache of their inputs.
    /// </summary>
    public void Save(string recipe, IEnumerable<string> stepIds)
    {
        var records = stepIds.Where(steps.ContainsKey).Select(id => steps[id]).ToList();
        JsonFiles.Save(Path, new RunFile
        {
            IrrVersion = Provenance.Version,
            Recipe = System.IO.Path.GetFullPath(recipe),
            Steps = records,
            Hashes = Hashes.EntriesFor(records.SelectMany(r => r.Inputs.Keys)).ToList(),
        });
    }
}
