using Irr.IO;
using Irr.Data;
using Irr.Jobs;
using Irr.Model;

namespace Irr.Eval;

/// <summary>What <see cref="EvalSafetyJob"/> did.</summary>
/// <param name="Run">The run as saved in the output directory: this evaluation merged with the one already there (<see cref="SafetyEvaluation.MergeWithExisting"/>).</param>
/// <param name="Judged">This evaluation's judged responses, in order.</param>
/// <param name="Replaced">True when the output directory held a run of another model, adapter or judge, which this one replaced.</param>
public sealed record EvalSafetyResult(SafetyRun Run, IReadOnlyList<JudgedResponse> Judged, bool Replaced)
{
    /// <summary>The sets this evaluation judged, as they stand in <see cref="Run"/>, in its order.</summary>
    public IReadOnlyList<SetSafety> Evaluated
    {
        get
        {
            var names = Judged.Select(j => j.Set).ToHashSet(StringComparer.Ordinal);
            return Run.Sets.Where(s => names.Contains(s.Name)).ToList();
        }
    }
}

/// <summary>
/// <c>irr eval safety</c> as a job: greedy answers to harmful prompt sets (or existing responses), judged by the
/// keyword judge, an HTTP judge or a judge given in memory, summarized, merged with the run already in the output
/// directory, and written there as <c>responses.jsonl</c>, <c>safety.json</c> and <c>summary.md</c> (docs/EVAL.md).
/// Every input is read and checked before the model is loaded, so bad input leaves no output behind.
/// </summary>
public sealed record EvalSafetyJob : IJob<EvalSafetyResult>
{
    /// <summary>The model directory to generate with; with <see cref="Responses"/>, only the label written into safety.json (may be null).</summary>
    public string? Model { get; init; }

    /// <summary>A PEFT LoRA adapter directory merged into <see cref="Model"/> on the fly, or null.</summary>
    public string? Adapter { get; init; }

    /// <summary>The prompt set files (<see cref="PromptSet.Load"/>); each is a set named after its file.</summary>
    public IReadOnlyList<string> Prompts { get; init; } = [];

    /// <summary>Prompt sets given in memory instead of <see cref="Prompts"/> (library callers); their <see cref="PromptSet.File"/> is recorded as it is.</summary>
    public IReadOnlyList<PromptSet>? Sets { get; init; }

    /// <summary>A file of existing responses to judge instead of generating (<see cref="SafetyEvaluation.LoadResponses"/>).</summary>
    public string? Responses { get; init; }

    /// <summary>The judge: <c>keyword</c> (offline refusal markers) or <c>http</c> (a judge model behind an OpenAI-compatible server).</summary>
    public string Judge { get; init; } = "keyword";

    /// <summary>A judge given in memory (the demo's); when set, the judge options (<see cref="Judge"/>, <see cref="JudgeUrl"/> …) are not used.</summary>
    public IJudge? CustomJudge { get; init; }

    /// <summary>Keyword judge: a file whose refusal markers replace the default ones (one per line, '#' comments).</summary>
    public string? RefusalMarkers { get; init; }

    /// <summary>HTTP judge: the server URL (http://host:8000, …/v1 or …/v1/chat/completions).</summary>
    public string? JudgeUrl { get; init; }

    /// <summary>HTTP judge: the model name the server serves.</summary>
    public string? JudgeModel { get; init; }

    /// <summary>HTTP judge: llama-guard, md-judge or verdict (<see cref="JudgeProtocols"/>).</summary>
    public string JudgeProtocol { get; init; } = "llama-guard";

    /// <summary>HTTP judge: the name of the environment variable holding the API key (sent as a Bearer token), or null.</summary>
    public string? ApiKeyEnv { get; init; }

    /// <summary>HTTP judge: requests in flight.</summary>
    public int JudgeConcurrency { get; init; } = 4;

    /// <summary>HTTP judge: seconds allowed per request.</summary>
    public double JudgeTimeout { get; init; } = 120;

    /// <summary>HTTP judge: retries of a request after 429, 5xx, a timeout or a connection error.</summary>
    public int JudgeRetries { get; init; } = 4;

    /// <summary>HTTP judge: seconds before the first retry (doubling; Retry-After wins).</summary>
    public double JudgeRetryDelay { get; init; } = 1;

    /// <summary>HTTP judge: the verdict cache file; null for <c>OUTPUT/judge-cache.jsonl</c>.</summary>
    public string? JudgeCache { get; init; }

    /// <summary>The system prompt: none, llama2 or literal text (<see cref="Text.SystemPrompt.Resolve"/>).</summary>
    public string SystemPrompt { get; init; } = "none";

    /// <summary>Most tokens generated per prompt.</summary>
    public int MaxNewTokens { get; init; } = 512;

    /// <summary>Prompts decoded together.</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>Use only the first N prompts of each set (or responses of the file); null for all.</summary>
    public int? Limit { get; init; }

    /// <summary>The run directory (may exist): responses.jsonl, safety.json, summary.md.</summary>
    public required string OutputDir { get; init; }

    /// <inheritdoc/>
    public string Command => "eval safety";

    /// <inheritdoc/>
    public IReadOnlyList<string> Inputs => Responses is not null
        ? Provenance.Given(Responses, RefusalMarkers)
        : Provenance.Given([Model, Adapter, .. Prompts, RefusalMarkers]);

    /// <inheritdoc/>
    public string? Output => OutputDir;

    // The sets' names and files, as known before reading them.
    private IEnumerable<(string Name, string File)> SetNames =>
        Sets?.Select(s => (s.Name, s.File)) ?? Prompts.Select(p => (Path.GetFileNameWithoutExtension(p), p));

    /// <inheritdoc/>
    public void Validate()
    {
        bool prompts = Prompts.Count > 0 || Sets is not null;
        Provenance.Require(!(prompts && Responses is not null), Command, "give either prompts (generate and judge) or responses (judge existing responses), not both");
        Provenance.Require(prompts || Responses is not null, Command, "give prompts (prompt set files) or responses (a file of responses to judge)");
        Provenance.Require(Prompts.Count == 0 || Sets is null, Command, "give the prompt sets as files (prompts) or in memory, not both");
        JobOptions.RequireLimit(Command, Limit);
        if (prompts)
        {
            Provenance.Require(Model is not null, Command, "model is required to generate responses (or give responses to judge)");
            Provenance.RequireAtLeast(Command, "max-new-tokens", MaxNewTokens, 1);
            Provenance.RequireAtLeast(Command, "batch-size", BatchSize, 1);
            var duplicate = SetNames.GroupBy(s => s.Name).FirstOrDefault(g => g.Count() > 1);
            Provenance.Require(duplicate is null, Command,
                $"two prompt sets are named \"{duplicate?.Key}\" ({string.Join(", ", duplicate?.Select(s => s.File) ?? [])}); rename one");
        }
        if (CustomJudge is null) ValidateJudge();
    }

    private void ValidateJudge()
    {
        Provenance.Require(Judge is "keyword" or "http", Command, $"judge must be keyword or http, not \"{Judge}\"");
        if (Judge == "keyword")
        {
            Provenance.Require(JudgeCache is null, Command, "judge-cache applies to judge http only (the keyword judge needs no cache)");
            return;
        }
        Provenance.Require(RefusalMarkers is null, Command, "refusal-markers applies to judge keyword only");
        Provenance.Require(JudgeUrl is not null, Command, "judge http needs judge-url (e.g. http://localhost:8000)");
        Provenance.Require(JudgeModel is not null, Command, "judge http needs judge-model (the model name the server serves)");
        Provenance.Require(Uri.TryCreate(JudgeUrl, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https", Command,
            $"judge-url must be an http:// or https:// URL, not {JudgeUrl}");
        Provenance.Require(JudgeProtocols.TryParse(JudgeProtocol) is not null, Command, $"judge-protocol must be llama-guard, md-judge or verdict, not \"{JudgeProtocol}\"");
        Provenance.RequireAtLeast(Command, "judge-concurrency", JudgeConcurrency, 1);
        Provenance.Require(JudgeTimeout > 0, Command, $"judge-timeout must be positive, not {JudgeTimeout}");
        Provenance.Require(JudgeRetries >= 0, Command, $"judge-retries must not be negative, not {JudgeRetries}");
        Provenance.Require(JudgeRetryDelay >= 0, Command, $"judge-retry-delay must not be negative, not {JudgeRetryDelay}");
    }

    /// <summary>
    /// Reads the prompt sets (or the responses) and builds the judge, then generates (stage "generating", in tokens),
    /// judges (stage "judging (NAME)", in responses), merges with the run in <see cref="OutputDir"/> and saves.
    /// </summary>
    /// <exception cref="IrrException">An option is invalid, a file is missing or malformed, the API key's variable is not set, or the judge fails.</exception>
    public EvalSafetyResult Run(Action<JobProgress>? progress = null)
    {
        Validate();
        AtomicFile.RequireDirectoryTarget(OutputDir);
        var sets = (Sets ?? Prompts.Select(PromptSet.Load).ToList()).Select(s => s with { Records = JobOptions.Limit(s.Records, Limit) }).ToList();
        var given = Responses is null ? null : JobOptions.Limit(SafetyEvaluation.LoadResponses(Responses), Limit);
        var owned = CustomJudge is null ? CreateJudge() : null;
        try
        {
            var judge = CustomJudge ?? owned!;
            var answers = given ?? Generate(sets, progress);
            var setFiles = given is null
                ? sets.Select(s => (s.Name, Provenance.Label(s.File)!)).ToList()
                : given.Select(r => r.Set).Distinct().Select(s => (s, Provenance.Label(Responses)!)).ToList();
            var stage = ProgressStage.Start(progress, $"judging ({judge.Name})", answers.Count, "responses");
            var judged = SafetyEvaluation.JudgeAsync(answers, judge, n => stage.Advance(n, n)).GetAwaiter().GetResult();
            var thisRun = SafetyEvaluation.Summarize(Provenance.Label(Model) ?? "", Provenance.Label(Adapter), judge.Name, setFiles, judged);
            var (run, all, replaced) = SafetyEvaluation.MergeWithExisting(OutputDir, thisRun, judged);
            SafetyEvaluation.Save(OutputDir, run, all);
            return new EvalSafetyResult(run, judged, replaced);
        }
        finally
        {
            (owned as IDisposable)?.Dispose();
        }
    }

    private IReadOnlyList<SafetyResponse> Generate(IReadOnlyList<PromptSet> sets, Action<JobProgress>? progress)
    {
        using var chat = ChatModel.Open(Model!, Adapter);
        var stage = ProgressStage.Start(progress, "generating", (double)sets.Sum(s => s.Records.Count) * MaxNewTokens);
        return SafetyEvaluation.Generate(chat.Transformer, chat.Tokenizer, sets, Text.SystemPrompt.Resolve(SystemPrompt), chat.Greedy(MaxNewTokens, BatchSize),
            n => stage.Advance(n, n));
    }

    // The judge the options describe; reads the markers file, the API key's variable and the verdict cache.
    private IJudge CreateJudge()
    {
        if (Judge == "keyword")
        {
            if (RefusalMarkers is null) return KeywordJudge.Default;
            if (!File.Exists(RefusalMarkers)) throw new IrrException($"{Path.GetFileName(RefusalMarkers)}: file not found ({RefusalMarkers})");
            return KeywordJudge.FromFile(RefusalMarkers);
        }
        string? key = null;
        if (ApiKeyEnv is { } variable)
            key = Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value ? value
                : throw new IrrException($"{Command}: the environment variable {variable} (api-key-env) is not set");
        var options = new HttpJudgeOptions
        {
            Url = new Uri(JudgeUrl!),
            Model = JudgeModel!,
            Protocol = JudgeProtocols.Parse(JudgeProtocol),
            ApiKey = key,
            Concurrency = JudgeConcurrency,
            Timeout = TimeSpan.FromSeconds(JudgeTimeout),
            MaxRetries = JudgeRetries,
            RetryBaseDelay = TimeSpan.FromSeconds(JudgeRetryDelay),
        };
        return new HttpJudge(options, VerdictCache.Open(JudgeCache ?? Path.Combine(OutputDir, "judge-cache.jsonl")));
    }
}
