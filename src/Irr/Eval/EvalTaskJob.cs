using Irr.IO;
using Irr.Jobs;
using Irr.Model;

namespace Irr.Eval;

/// <summary>
/// <c>irr eval task</c> as a job: greedy answers to task examples (<see cref="TaskExample.Load"/>), scored with a
/// metric; returns the <see cref="TaskRun"/> and, with <see cref="OutputDir"/>, writes task.json and predictions.jsonl
/// there. The data is read before the model is loaded.
/// </summary>
public sealed record EvalTaskJob : IJob<TaskRun>
{
    /// <summary>The model directory.</summary>
    public required string Model { get; init; }

    /// <summary>A PEFT LoRA adapter directory merged into <see cref="Model"/> on the fly, or null.</summary>
    public string? Adapter { get; init; }

    /// <summary>The task data file.</summary>
    public required string Data { get; init; }

    /// <summary>exact, contains, gsm8k or choice (<see cref="TaskMetrics.Parse"/>; any case).</summary>
    public required string Metric { get; init; }

    /// <summary>The system prompt: none, llama2 or literal text (<see cref="Text.SystemPrompt.Resolve"/>).</summary>
    public string SystemPrompt { get; init; } = "none";

    /// <summary>
    /// Tokenize the records' text as is, without the chat template (<c>--no-chat-template</c>, for base models and
    /// completion-style data; <see cref="Text.PretrainedTokenizer.RawText"/>).
    /// </summary>
    public bool NoChatTemplate { get; init; }

    /// <summary>Most tokens generated per example.</summary>
    public int MaxNewTokens { get; init; } = 256;

    /// <summary>Examples decoded together.</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>
    /// Generate through this serving engine instead of loading the weights, or null; <see cref="Model"/> is then read only
    /// for its tokenizer, chat template and EOS ids. Its answer cache defaults to <c>OUTPUT/engine-cache.jsonl</c>
    /// (without an output directory, none is kept unless <see cref="EngineOptions.Cache"/> names one).
    /// </summary>
    public EngineOptions? Engine { get; init; }

    /// <summary>
    /// Where local generation keeps each answer as it comes (<see cref="Model.GenerationCache"/>), so that an interrupted run
    /// resumes; null for <c>OUTPUT/generation-cache.jsonl</c> (without an output directory, none is kept).
    /// </summary>
    public string? GenerationCachePath { get; init; }

    /// <summary>Whether local generation keeps its answers (<see cref="GenerationCachePath"/>); false for a run whose output is thrown away when it fails (the demo's).</summary>
    public bool CacheGenerations { get; init; } = true;

    /// <summary>Use only the first N examples; null for all.</summary>
    public int? Limit { get; init; }

    /// <summary>The run directory to write task.json and predictions.jsonl into (may exist), or null to write nothing.</summary>
    public string? OutputDir { get; init; }

    /// <inheritdoc/>
    public string Command => "eval task";

    /// <inheritdoc/>
    public IReadOnlyList<string> Inputs => Provenance.Given(Model, Adapter, Data);

    /// <inheritdoc/>
    public string? Output => OutputDir;

    /// <inheritdoc/>
    public void Validate()
    {
        Validation.Require(TaskMetrics.TryParse(Metric) is not null, Command, $"metric must be exact, contains, gsm8k or choice, not \"{Metric}\"");
        Validation.RequireAtLeast(Command, "max-new-tokens", MaxNewTokens, 1);
        Validation.RequireAtLeast(Command, "batch-size", BatchSize, 1);
        JobOptions.RequireLimit(Command, Limit);
        Engine?.Validate(Command, hasAdapter: Adapter is not null, hasFullModel: Adapter is null);
        EngineOptions.RequireLocalDefault(Engine, Command, BatchSize == 8, "batch-size", "the server batches on its own");
    }

    /// <summary>
    /// Reads the examples, answers them (stage "generating", in tokens; with an engine "generating (MODEL)", in responses),
    /// scores them and saves the run when <see cref="OutputDir"/> is set. Failed generations are incorrect and counted in <see cref="TaskRun.Failed"/>.
    /// </summary>
    /// <exception cref="IrrException">An option is invalid, or the data or the model is missing or malformed.</exception>
    public TaskRun Run(Action<JobProgress>? progress = null)
    {
        Validate();
        if (OutputDir is not null) AtomicFile.RequireDirectoryTarget(OutputDir);
        var examples = JobOptions.Limit(TaskExample.Load(Data), Limit);
        var metric = TaskMetrics.Parse(Metric);
        string? system = Text.SystemPrompt.Resolve(SystemPrompt);
        IReadOnlyList<TaskPrediction> predictions;
        if (Engine is not null)
        {
            string? cache = OutputDir is null ? null : Path.Combine(OutputDir, ServingEngine.CacheFileName); // the default; Engine.Cache wins in Open
            // Without an output directory a started server's log is a temporary file, kept only when something went wrong.
            string log = OutputDir is null ? Path.Combine(Path.GetTempPath(), $"irr-engine-serve-{Guid.NewGuid():N}.log") : Path.Combine(OutputDir, EngineServer.LogFileName);
            using (var engine = EngineSession.Open(Engine, Model, cache, Command, Adapter, log, Text.PretrainedTokenizer.Load(Model, Adapter).AsRawText(NoChatTemplate)))
                predictions = TaskEvaluation.Score(examples, engine.Generate(TaskEvaluation.Requests(examples, system), MaxNewTokens, progress), metric);
            if (OutputDir is null && File.Exists(log)) File.Delete(log);
        }
        else
        {
            using var chat = ChatModel.Open(Model, Adapter, NoChatTemplate);
            var stage = ProgressStage.Start(progress, "generating", (double)examples.Count * MaxNewTokens);
            var cache = CacheGenerations && (GenerationCachePath ?? (OutputDir is null ? null : Path.Combine(OutputDir, GenerationCache.FileName))) is { } path
                ? GenerationCache.Open(path, Model, Adapter) : null;
            predictions = TaskEvaluation.Run(chat.Transformer, chat.Tokenizer, examples, metric, system, chat.Greedy(MaxNewTokens, BatchSize), n => stage.Advance(n, n), cache);
        }
        var run = new TaskRun(Provenance.Label(Model)!, Provenance.Label(Adapter), Provenance.Label(Data)!, Metric.ToLowerInvariant(), predictions.Count, predictions.Count(p => p.Correct))
        {
            Failed = predictions.Count(p => p.Error is not null),
            Refused = predictions.Count(p => OpenAiReply.IsRefusal(p.Error)),
        };
        if (OutputDir is not null) TaskEvaluation.Save(OutputDir, run, predictions);
        return run;
    }
}
