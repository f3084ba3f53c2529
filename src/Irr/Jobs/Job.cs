using System.Reflection;
using System.Text.Json.Nodes;

namespace Irr.Jobs;

/// <summary>Where a running job is: one stage at a time, with cumulative counts inside the stage.</summary>
/// <param name="Stage">What the stage does, e.g. "realigning (64 matrices)".</param>
/// <param name="Done">Units of work done in the stage (matrices, batches, tokens …).</param>
/// <param name="Total">Units of work in the stage.</param>
/// <param name="Processed">Items processed so far in the stage, for a rate (tokens, responses), or 0.</param>
/// <param name="Unit">What <paramref name="Processed"/> counts, e.g. "tokens".</param>
public sealed record JobProgress(string Stage, double Done, double Total, long Processed = 0, string Unit = "tokens");

/// <summary>
/// One step of IRR's work as a validated record, in mergekit's manner: it owns its inputs, the validation of its
/// options (with the library's own error messages), its data preparation, the provenance it records, and its run.
/// The <c>irr</c> commands build a job from their options and run it; <c>irr demo</c> and <c>irr run</c> compose the
/// same jobs.
/// </summary>
public interface IJob
{
    /// <summary>The command that runs this job ("realign", "eval safety" …).</summary>
    string Command { get; }

    /// <summary>The files and directories the job reads (for provenance and for <c>irr run</c>'s rerun check).</summary>
    IReadOnlyList<string> Inputs { get; }

    /// <summary>The file or directory the job writes, or null when it writes nothing (a dry run).</summary>
    string? Output { get; }

    /// <summary>Checks the options without touching any file.</summary>
    /// <exception cref="IrrException">An option is out of range or options conflict; the message names the option.</exception>
    void Validate();

    /// <summary>Validates, then runs the job; returns its result (see the job's own <c>Run</c>).</summary>
    /// <exception cref="IrrException">Bad input: the message names the file, tensor or line.</exception>
    object? Execute(Action<JobProgress>? progress = null);
}

/// <summary>A job with a typed result.</summary>
/// <typeparam name="TResult">What <see cref="Run"/> returns.</typeparam>
public interface IJob<out TResult> : IJob
{
    /// <summary>Validates, then runs the job; <paramref name="progress"/> receives its stages.</summary>
    /// <exception cref="IrrException">Bad input: the message names the file, tensor or line.</exception>
    TResult Run(Action<JobProgress>? progress = null);

    object? IJob.Execute(Action<JobProgress>? progress) => Run(progress);
}

/// <summary>A stage of a job's progress: counts up and reports to the job's progress callback.</summary>
/// <param name="sink">The job's progress callback, or null.</param>
/// <param name="name">The stage's description.</param>
/// <param name="total">Units of work in the stage.</param>
/// <param name="unit">What the processed count counts.</param>
public sealed class ProgressStage(Action<JobProgress>? sink, string name, double total, string unit = "tokens")
{
    private double done;
    private long processed;

    /// <summary>Starts a stage and reports it at 0.</summary>
    public static ProgressStage Start(Action<JobProgress>? sink, string name, double total, string unit = "tokens")
    {
        var stage = new ProgressStage(sink, name, total, unit);
        stage.Advance(0);
        return stage;
    }

    /// <summary>Adds <paramref name="units"/> of work done and <paramref name="items"/> items processed.</summary>
    public void Advance(double units = 1, long items = 0)
    {
        done += units;
        processed += items;
        sink?.Invoke(new JobProgress(name, done, total, processed, unit));
    }
}

/// <summary>What every job records about itself.</summary>
public static class Provenance
{
    /// <summary>The version of the irr library, e.g. "0.1.0" (recorded in every report and metadata block).</summary>
    public static string Version { get; } =
        typeof(Provenance).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    /// <summary>The paths that are given, in order (for a job's <see cref="IJob.Inputs"/>).</summary>
    public static IReadOnlyList<string> Given(params string?[] paths) => paths.OfType<string>().ToList();

    /// <summary>
    /// Every input option of <paramref name="job"/> (<see cref="OptionKind.Input"/> in its schema) as a report records it:
    /// under its key with underscores (<c>safety_vector</c>), an absolute path (<see cref="PathOf"/>) or null when not given
    /// (a list option: a list of paths); an input read from the Hub cache (a model, adapter or <c>hf://</c> file) also as
    /// <c>KEY_hub</c>: <c>{"repo_id", "repo_type", "commit", "path"}</c> (<see cref="IO.HubCache.RepoOfCachedPath"/>; a list
    /// option: a list of those, null for a local item).
    /// </summary>
    public static JsonObject InputsOf(IJob job)
    {
        var inputs = new JsonObject();
        foreach (var option in JobSchema.Of(job.GetType()).Options.Where(o => o.Kind == OptionKind.Input))
        {
            string key = option.Key.Replace('-', '_');
            object? value = option.ValueIn(job);
            inputs[key] = value switch
            {
                string path => PathOf(path),
                IEnumerable<string> paths => new JsonArray(paths.Select(p => (JsonNode?)PathOf(p)).ToArray()),
                _ => null,
            };
            if (!option.Attribute.Hub && !option.Attribute.HubFile) continue;
            if (value is string one && HubOf(one) is { } hub) inputs[key + "_hub"] = hub;
            if (value is IEnumerable<string> many && many.Select(HubOf).ToList() is var hubs && hubs.Any(h => h is not null))
                inputs[key + "_hub"] = new JsonArray(hubs.ToArray());
        }
        return inputs;
    }

    /// <summary>The Hub repo, its type, commit and the file of a path in the Hub cache (<see cref="IO.HubCache.RepoOfCachedPath"/>), or null.</summary>
    public static JsonObject? HubOf(string path) => IO.HubCache.RepoOfCachedPath(path) is { } hub
        ? System.Text.Json.JsonSerializer.SerializeToNode(hub, IO.JsonFiles.ResultOptions)!.AsObject() // repo_id, repo_type, commit, path: as safety.json writes it
        : null;

    /// <summary>
    /// Every option of <paramref name="job"/> that shapes its result and is not a path (<see cref="OptionKind.Value"/>,
    /// <see cref="OptionAttribute.Fingerprinted"/>) as a report records it: under its key with underscores, its value as JSON.
    /// </summary>
    public static JsonObject OptionsOf(IJob job)
    {
        var options = new JsonObject();
        foreach (var option in JobSchema.Of(job.GetType()).Options.Where(o => o.Kind == OptionKind.Value && o.Attribute.Fingerprinted))
            options[option.Key.Replace('-', '_')] = JobSchema.Json(option.ValueIn(job));
        return options;
    }

    private static readonly AsyncLocal<(string From, string To)?> relocation = new();

    /// <summary>
    /// A path as recorded in provenance: absolute, and, inside a <see cref="Relocate"/> scope, as it will be once the
    /// temporary directory being written is renamed into place.
    /// </summary>
    public static string PathOf(string path)
    {
        string full = Path.GetFullPath(path);
        if (relocation.Value is not { } r) return full;
        if (full == r.From) return r.To;
        return full.StartsWith(r.From + Path.DirectorySeparatorChar, StringComparison.Ordinal) ? r.To + full[r.From.Length..] : full;
    }

    /// <summary>
    /// A path as a result file records it (safety.json's <c>model</c> …): as given, except that inside a
    /// <see cref="Relocate"/> scope a path under the temporary directory is recorded where it will be.
    /// </summary>
    public static string? Label(string? path)
    {
        if (path is null || relocation.Value is null) return path;
        string mapped = PathOf(path);
        return mapped == Path.GetFullPath(path) ? path : mapped;
    }

    /// <summary>
    /// Until the returned scope is disposed, provenance records paths under <paramref name="temporary"/> as under
    /// <paramref name="final"/>: for jobs composed inside an <see cref="IO.OutputDirectory"/> (the demo), whose files
    /// should name where their inputs will be, not the temporary directory they are built in.
    /// </summary>
    public static IDisposable Relocate(string temporary, string final)
    {
        var previous = relocation.Value;
        relocation.Value = (Path.GetFullPath(temporary).TrimEnd(Path.DirectorySeparatorChar), Path.GetFullPath(final).TrimEnd(Path.DirectorySeparatorChar));
        return new Scope(() => relocation.Value = previous);
    }

    private sealed class Scope(Action end) : IDisposable
    {
        public void Dispose() => end();
    }
}
