using Irr.IO;
using Irr.Jobs;
using Irr.Model;

namespace Irr.Eval;

/// <summary>
/// <c>irr eval task</c> as a job: greedy answers to task examples (<see cref="TaskExample.Load"/>), scored with a
/// metric; returns the <see cref="TaskRun"/> and, with <see cref="OutputDir"/>, writes task.json and predictions.jsonl
/// there. The data is read before the model is loaded.
/// </summary>
[Job("eval task", Help = "Task accuracy: answer examples greedily and score them (exact, contains, gsm8k, choice)", Produces = ArtifactKind.EvalRun, SharesOutput = true)]
public sealed record EvalTaskJob : IJob<TaskRun>
{
    /// <summary>The model directory.</summary>
    [Option(OptionHelp.Model, Kind = OptionKind.Input, Hub = true, Required = true, From = ArtifactKind.Model)]
    public required string Model { get; init; }

    /// <summary>A PEFT LoRA adapter directory merged into <see cref="Model"/> on the fly, or null.</summary>
    [Option(OptionHelp.Adapter, Kind = OptionKind.Input, Hub = true)]
    public string? Adapter { get; init; }

    /// <summary>The task data file.</summary>
    [Option("examples: records with a user message and an answer (output, response or answer; GSM8K {question, answer}) or multiple choice {question, choices, answer}; " + OptionHelp.DataFormats,
        Kind = OptionKind.Input, HubFile = true, Required = true)]
    public required string Data { get; init; }

    /// <summary>exact, contains, gsm8k or choice (<see cref="TaskMetrics.Parse"/>; any case).</summary>
    [Option("exact, contains, gsm8k or choice", Required = true)]
    public required string Metric { get; init; }

    /// <summary>The system prompt: none, llama2 or literal text (<see cref="Text.SystemPrompt.Resolve"/>).</summary>
    [Option(OptionHelp.SystemPrompt)]
    public string SystemPrompt { get; init; } = "none";

    /// <summary>
    /// Tokenize the records' text as is, without the chat template (<c>--no-chat-template</c>, for base models and
    /// completion-style data; <see cref="Text.PretrainedTokenizer.RawText"/>).
    /// </summary>
    [Option(OptionHelp.NoChatTemplate)]
    public bool NoChatTemplate { get; init; }

    /// <summary>The chat template's extra variables (<c>--template-arg KEY=VALUE</c>, <see cref="Text.ChatTemplateOptions"/>).</summary>
    [Options]
    public Text.ChatTemplateOptions Chat { get; init; } = new();

    /// <summary>Most tokens generated per example.</summary>
    [Option("most tokens generated per prompt")]
    public int MaxNewTokens { get; init; } = 256;

    /// <summary>Examples decoded together.</summary>
    [Option("examples per batch")]
    public int BatchSize { get; init; } = 8;

    /// <summary>
    /// Generate through this serving engine instead of loading the weights, or null (library callers and the sweep; the
    /// command line gives <see cref="EngineSettings"/>); <see cref="Model"/> is then read only
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
    [Option("use only the first N examples")]
    public int? Limit { get; init; }

    /// <summary>The run directory to write task.json and predictions.jsonl into (may exist), or null to write nothing.</summary>
    [Option("run directory (may exist): task.json and predictions.jsonl", Name = "output", Alias = "-o", Kind = OptionKind.Output, Fingerprinted = false)]
    public string? OutputDir { get; init; }

    /// <summary>The serving-engine options as given (<see cref="Engine"/> is the in-memory alternative).</summary>
    [Options]
    public EngineSettings? EngineSettings { get; init; }

    /// <summary>The serving engine's answer cache; null for OUTPUT/engine-cache.jsonl (<see cref="EngineOptions.Cache"/>).</summary>
    [Option("serving engine: answer cache file (default OUTPUT/engine-cache.jsonl)", Kind = OptionKind.Path, Fingerprinted = false)]
    public string? EngineCache { get; init; }

    /// <summary>The serving engine generated with: <see cref="Engine"/>, or the one <see cref="EngineSettings"/> describe, or null (<see cref="EngineSettings.Resolve"/>).</summary>
    /// <exception cref="IrrException">The engine options contradict each other.</exception>
    public EngineOptions? ResolveEngine() => EngineSettings.Resolve(Command, Engine, EngineSettings, EngineCache, keyShared: false);

    /// <inheritdoc/>
    public string Command => "eval task";

    /// <inheritdoc/>
    public IReadOnlyList<string> Inputs => Provenance.Given(Model, Adapter, Data);

    /// <inheritdoc/>
    public string? Output => OutputDir;

    /// <inheritdoc/>
    public void Validate()
    {
        Chat.Validate(Command, NoChatTemplate);
        Validation.Require(TaskMetrics.TryParse(Metric) is not null, Command, $"metric must be exact, contains, gsm8k or choice, not \"{Metric}\"");
        Validation.RequireAtLeast(Command, "max-new-tokens", MaxNewTokens, 1);
        Validation.RequireAtLeast(Command, "batch-size", BatchSize, 1);
        JobOptions.RequireLimit(Command, Limit);
        var engine = ResolveEngine();
        engine?.Validate(Command, hasAdapter: Adapter is not null, hasFullModel: Adapter is null);
        EngineOptions.RequireLocalDefault(engine, Command, BatchSize == 8, "batch-size", "the server batches on its own");
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
        if (ResolveEngine() is { } served)
        {
            string? cache = OutputDir is null ? null : Path.Combine(OutputDir, ServingEngine.CacheFileName); // the default; Engine.Cache wins in Open
            // Without an output directory a started server's log is a temporary file, kept only when something went wrong.
            string log = OutputDir is null ? Path.Combine(Path.GetTempPath(), $"irr-engine-serve-{Guid.NewGuid():N}.log") : Path.Combine(OutputDir, EngineServer.LogFileName);
            using (var engine = EngineSession.Open(served, Model, cache, Command, Adapter, log, Text.PretrainedTokenizer.Load(Model, Adapter).AsRawText(NoChatTemplate).WithTemplateArgs(Chat.Args)))
                predictions = TaskEvaluation.Score(examples, engine.Generate(TaskEvaluation.Requests(examples, system), MaxNewTokens, progress), metric);
            if (OutputDir is null && File.Exists(log)) File.Delete(log);
        }
        else
        {
            using var chat = ChatModel.Open(Model, Adapter, NoChatTemplate, Chat.Args);
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
