using Irr.Data;
using Irr.Eval;
using Irr.Jobs;

namespace Irr.Realign;

/// <summary>
/// Evaluates a sweep's models as <c>irr eval safety</c> and <c>irr eval task</c> do: the harmful rate on the validation prompt
/// sets and the task score on the validation examples, each model served (with engine-serve) under its label, its answers
/// cached per model so that a rerun asks only for those it lacks.
/// </summary>
/// <param name="job">The sweep.</param>
/// <param name="sets">The harmful validation prompt sets, read once.</param>
/// <param name="unit">The unit computed alone (<c>--point</c>), whose HTTP judge cache is its own; null for a whole sweep.</param>
internal sealed class SweepEvaluation(SweepJob job, IReadOnlyList<PromptSet> sets, SweepUnit? unit)
{
    private readonly string root = job.OutputPath;

    /// <summary>
    /// The safety evaluation with the sets read once, and an HTTP judge's cache shared by every model (DIR/judge-cache.jsonl by
    /// default), or for a unit computed alone the unit's own file, which no other job appends to.
    /// </summary>
    public EvalSafetyJob SafetyJob => job.Safety with
    {
        Prompts = [], BenignPrompts = [], Sets = sets,
        Judge = job.Safety.CustomJudge is null && job.Judge() is HttpJudgeOptions http && (http.Cache ?? Path.Combine(root, "judge-cache.jsonl")) is var cache
            ? http with { Cache = unit is null ? cache : SweepJob.UnitJudgeCache(cache, unit) }
            : job.Judge(),
    };

    /// <summary>Harmful rate and task score of a model, written into <paramref name="dir"/> as irr eval safety and irr eval task write them.</summary>
    /// <param name="label">The model's label (its server's name, its caches' names).</param>
    /// <param name="model">The model directory.</param>
    /// <param name="adapter">A LoRA adapter on it, or null.</param>
    /// <param name="dir">The evaluation directory, made anew.</param>
    /// <param name="stage">The progress of the model's phases; the safety evaluation is <paramref name="firstPhase"/>, the task evaluation the next.</param>
    /// <param name="firstPhase">The safety evaluation's phase.</param>
    /// <exception cref="GenerationsFailedException">Generations by the serving engine failed (the model is not recorded as done).</exception>
    public (double Harmful, double Task) Evaluate(string label, string model, string? adapter, string dir, Func<int, string, Action<JobProgress>> stage, int firstPhase)
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        // With engine-serve, one engine session for the model, its server started here and named after it, serves both evaluations.
        using var session = job.Engine() is { } served
            ? EngineSession.Start(served, model, adapter, Path.Combine(dir, EngineServer.LogFileName), name: label)
            : null;
        // Its answers are cached outside the evaluation directory (which is made anew), one file per model, so that a rerun
        // after failed generations asks only for those, and no two array tasks append to one file.
        var engine = session is null ? null : session.Running with { Cache = EngineCache(label) };
        // Local answers likewise, in DIR/generation-cache/LABEL.jsonl: an interrupted sweep, run again, generates only those it lacks.
        string generations = Path.Combine(root, "generation-cache", label + ".jsonl");
        var safety = SafetyJob with { Model = model, Adapter = adapter, OutputDir = dir, Engine = engine, GenerationCachePath = generations };
        var safetyResult = safety.Run(stage(firstPhase, "harmful-val: "));
        var taskRun = (job.Task with { Model = model, Adapter = adapter, OutputDir = dir, Engine = engine, GenerationCachePath = generations })
            .Run(stage(firstPhase + 1, "task-val: "));
        // A choice made on evaluations with missing answers would be wrong: the model is not recorded as done. A prompt
        // the engine refuses by itself (too long for its max_model_len) is refused for every model alike (one tokenizer,
        // one max_new_tokens): it is excluded (unknown) or incorrect for all, and does not stop the sweep.
        int refused = safetyResult.Judged.Count(j => OpenAiReply.IsRefusal(j.Error)) + taskRun.Refused;
        if (refused > 0)
            Diagnostics.Warn($"{job.Command}: {label}: {refused} {(refused == 1 ? "prompt was" : "prompts were")} refused by the serving engine " +
                             $"(too long for it; reasons in {dir}): unknown in the safety rate, incorrect in the task accuracy, as for every model");
        if (safetyResult.GenerationFailures + taskRun.Failed - refused is > 0 and var failed)
            throw new GenerationsFailedException($"{job.Command}: {label}: {failed} {(failed == 1 ? "generation" : "generations")} by the serving engine failed " +
                                                 $"(their reasons are in {dir}); rerun the sweep to evaluate this model again");
        return (safetyResult.Run.Overall.HarmfulRate, taskRun.Accuracy);
    }

    /// <summary>The over-refusal counts of the evaluation in <paramref name="dir"/> (its safety.json's <c>over_refusal</c>), or null without benign sets.</summary>
    public static RefusalCounts? OverRefusal(string dir) => SafetyRun.Load(dir)?.OverRefusal;

    // A model's engine cache: DIR/engine-cache/LABEL.jsonl, or the given engine-cache's name with the label inserted.
    private string EngineCache(string label) => job.Engine()?.Cache is { } given
        ? SweepJob.WithLabel(given, label)
        : Path.Combine(root, "engine-cache", label + ".jsonl");
}
