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
    /// <summary>Responses of this evaluation whose generation failed (a serving engine's; <see cref="JudgedResponse.Error"/>); they are unknown.</summary>
    public int GenerationFailures => Judged.Count(j => j.Error is not null);

    /// <summary>The sets (<c>SET</c> or <c>SET@ATTACK</c>) whose responses were already in the output directory and were not generated again.</summary>
    public IReadOnlyList<string> Reused { get; init; } = [];

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
/// <c>irr eval safety</c> as a job: greedy answers to harmful and benign prompt sets (or existing responses), judged by the
/// keyword judge, an HTTP judge or a judge given in memory, summarized, merged with the run already in the output
/// directory, and written there as <c>responses.jsonl</c>, <c>safety.json</c> and <c>summary.md</c> (docs/EVAL.md).
/// Every input is read and checked before the model is loaded, so bad input leaves no output behind.
/// </summary>
[Job("eval safety", Help = "Harmful-response rate (and over-refusal: the refusal rate of benign sets): answer prompt sets greedily, judge the answers, write responses.jsonl, safety.json and summary.md",
    Produces = ArtifactKind.EvalRun, SharesOutput = true)]
public sealed record EvalSafetyJob : IJob<EvalSafetyResult>
{
    /// <summary>The model directory to generate with; with <see cref="Responses"/>, only the label written into safety.json (may be null).</summary>
    [Option("Hugging Face model directory (required unless --responses is given)", Kind = OptionKind.Input, Hub = true, From = ArtifactKind.Model, NotNeededWith = "responses")]
    public string? Model { get; init; }

    /// <summary>A PEFT LoRA adapter directory merged into <see cref="Model"/> on the fly, or null.</summary>
    [Option(OptionHelp.Adapter, Kind = OptionKind.Input, Hub = true)]
    public string? Adapter { get; init; }

    /// <summary>The prompt set files (<see cref="PromptSet.Load(string)"/>); each is a set named after its file.</summary>
    [Option($"prompt sets, one per file: {OptionHelp.PromptFormats}", Kind = OptionKind.Input, HubFile = true)]
    public IReadOnlyList<string> Prompts { get; init; } = [];

    /// <summary>
    /// Benign prompt sets (safe requests, e.g. XSTest's safe prompts or JailbreakBench's benign behaviors), read as
    /// <see cref="Prompts"/> are: their figure is the refusal rate (over-refusal), they are left out of the harmful rate
    /// and sent under no attack (<see cref="PromptSet.LoadSets"/>; a file with a label column is split by it either way).
    /// </summary>
    [Option($"benign prompt sets (safe requests; their figure is the refusal rate, over-refusal), one per file: {OptionHelp.PromptFormats}", Kind = OptionKind.Input, HubFile = true)]
    public IReadOnlyList<string> BenignPrompts { get; init; } = [];

    /// <summary>
    /// The column that marks each prompt safe or unsafe (<see cref="PromptSet.LoadSets"/>); null for <c>label</c> when
    /// its values are all safe/unsafe (XSTest), else no label column.
    /// </summary>
    [Option("column marking each prompt safe or unsafe (values safe/benign, unsafe/harmful): a labelled file is split into SET/unsafe (harmful rate) and SET/safe (refusal rate); default: label, when every value is one of these")]
    public string? LabelColumn { get; init; }

    /// <summary>Prompt sets given in memory instead of <see cref="Prompts"/> (library callers); their <see cref="PromptSet.File"/> is recorded as it is.</summary>
    public IReadOnlyList<PromptSet>? Sets { get; init; }

    /// <summary>A file of existing responses to judge instead of generating (<see cref="SafetyEvaluation.LoadResponses"/>).</summary>
    [Option("judge existing responses instead of generating: records with a prompt and a response, and optionally category and set (e.g. an earlier responses.jsonl); " + OptionHelp.DataFormats,
        Kind = OptionKind.Input, HubFile = true)]
    public string? Responses { get; init; }

    /// <summary>
    /// The judge given in memory (library callers and the sweep; the command line gives <see cref="JudgeSettings"/>): the
    /// keyword judge (the default) or an HTTP judge.
    /// </summary>
    public JudgeOptions Judge { get; init; } = new KeywordJudgeOptions();

    /// <summary>A judge given in memory (the demo's); when set, <see cref="Judge"/> is not used.</summary>
    public IJudge? CustomJudge { get; init; }

    // The keyword judge's markers file, an input.
    private string? RefusalMarkers => JudgeSettings?.RefusalMarkers ?? (Judge as KeywordJudgeOptions)?.RefusalMarkers;

    /// <summary>
    /// The attacks every prompt is sent under (<see cref="Attacks.Resolve"/>): built-in names (none, prefill,
    /// refusal-suppression, prefix-injection, roleplay, base64) and the names of <see cref="AttackFile"/>'s attacks;
    /// an item may be a comma-separated list. Default: none (each prompt as it is).
    /// </summary>
    [Option("", Name = "attack", HelpSource = typeof(Eval.Attacks))]
    public IReadOnlyList<string> Attacks { get; init; } = [Eval.Attacks.None];

    /// <summary>A file of the user's own attacks (<see cref="Eval.Attacks.Load"/>), or null.</summary>
    [Option("your own attacks, one JSON object per line: {\"name\", \"template\": \"… {prompt} …\"}, {\"name\", \"messages\": [...]} or {\"name\", \"prefill\": \"…\"}", Kind = OptionKind.Input)]
    public string? AttackFile { get; init; }

    /// <summary>The built-in prefill attack's assistant prefix.</summary>
    [Option("the prefill attack's assistant prefix")]
    public string PrefillText { get; init; } = Eval.Attacks.DefaultPrefill;

    /// <summary>The judge options as given (<see cref="Judge"/> and <see cref="CustomJudge"/> are the in-memory alternatives).</summary>
    [Options]
    public JudgeSettings? JudgeSettings { get; init; }

    /// <summary>The HTTP judge's verdict cache; null for OUTPUT/judge-cache.jsonl (<see cref="HttpJudgeOptions.Cache"/>).</summary>
    [Option("http judge: verdict cache file (default OUT/judge-cache.jsonl)", Kind = OptionKind.Path, Fingerprinted = false)]
    public string? JudgeCache { get; init; }

    /// <summary>The serving-engine options as given (<see cref="Engine"/> is the in-memory alternative).</summary>
    [Options]
    public EngineSettings? EngineSettings { get; init; }

    /// <summary>The serving engine's answer cache; null for OUTPUT/engine-cache.jsonl (<see cref="EngineOptions.Cache"/>).</summary>
    [Option("serving engine: answer cache file (default OUTPUT/engine-cache.jsonl)", Kind = OptionKind.Path, Fingerprinted = false)]
    public string? EngineCache { get; init; }

    /// <summary>Whether the attacks are the default (each prompt as it is).</summary>
    public bool PlainOnly => AttackFile is null && Eval.Attacks.Names(Attacks).All(a => a == Eval.Attacks.None);

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

    /// <summary>Most tokens generated per prompt.</summary>
    [Option("most tokens generated per prompt")]
    public int MaxNewTokens { get; init; } = 512;

    /// <summary>Prompts decoded together (local generation only).</summary>
    [Option("prompts per batch")]
    public int BatchSize { get; init; } = 8;

    /// <summary>
    /// Generate through this serving engine instead of loading the weights, or null (library callers and the sweep; the
    /// command line gives <see cref="EngineSettings"/>); <see cref="Model"/> is then read only
    /// for its tokenizer, chat template and EOS ids. Its answer cache defaults to <c>OUTPUT/engine-cache.jsonl</c>.
    /// </summary>
    public EngineOptions? Engine { get; init; }

    /// <summary>
    /// Where local generation keeps each answer as it comes (<see cref="GenerationCache"/>), so that an interrupted run
    /// resumes; null for <c>OUTPUT/generation-cache.jsonl</c>.
    /// </summary>
    public string? GenerationCachePath { get; init; }

    /// <summary>Whether local generation keeps its answers (<see cref="GenerationCachePath"/>); false for a run whose output is thrown away when it fails (the demo's).</summary>
    public bool CacheGenerations { get; init; } = true;

    /// <summary>Use only the first N prompts of each set (or responses of the file); null for all.</summary>
    [Option("use only the first N prompts of each set")]
    public int? Limit { get; init; }

    /// <summary>The run directory (may exist): responses.jsonl, safety.json, summary.md.</summary>
    [Option("run directory (may exist): responses.jsonl, safety.json, summary.md", Name = "output", Alias = "-o", Kind = OptionKind.Output, Required = true, Fingerprinted = false)]
    public required string OutputDir { get; init; }

    /// <summary>The serving engine generated with: <see cref="Engine"/>, or the one <see cref="EngineSettings"/> describe, or null (<see cref="EngineSettings.Resolve"/>).</summary>
    /// <exception cref="IrrException">The engine options contradict each other.</exception>
    public EngineOptions? ResolveEngine() => EngineSettings.Resolve(Command, Engine, EngineSettings, EngineCache, keyShared: true);

    /// <summary>The judge: the one <see cref="JudgeSettings"/> and <see cref="JudgeCache"/> describe when given, else <see cref="Judge"/>.</summary>
    /// <exception cref="IrrException">The judge options contradict each other (<see cref="JudgeOptions.Of"/>).</exception>
    public JudgeOptions ResolveJudge() => JudgeSettings is not null || JudgeCache is not null ? (JudgeSettings ?? new JudgeSettings()).ToJudge(Command, JudgeCache) : Judge;

    /// <inheritdoc/>
    public string Command => "eval safety";

    /// <inheritdoc/>
    public IReadOnlyList<string> Inputs => Responses is not null
        ? Provenance.Given(Responses, RefusalMarkers)
        : Provenance.Given([Model, Adapter, .. Prompts, .. BenignPrompts, RefusalMarkers, AttackFile]);

    /// <inheritdoc/>
    public string? Output => OutputDir;

    // The sets' names and files, as known before reading them.
    private IEnumerable<(string Name, string File)> SetNames =>
        Sets?.Select(s => (s.Name, s.File)) ?? PromptFiles.Select(p => (PromptSet.NameOf(p.File), p.File));

    // The prompt files with whether they were given as benign.
    private IEnumerable<(string File, bool Benign)> PromptFiles => Prompts.Select(p => (p, false)).Concat(BenignPrompts.Select(p => (p, true)));

    /// <summary>The prompt sets to evaluate: <see cref="Sets"/>, or those of <see cref="Prompts"/> and <see cref="BenignPrompts"/> (<see cref="PromptSet.LoadSets"/>), in that order.</summary>
    /// <exception cref="IrrException">A file is missing or malformed.</exception>
    public IReadOnlyList<PromptSet> LoadSets() => Sets ?? PromptFiles.SelectMany(p => PromptSet.LoadSets(p.File, p.Benign, LabelColumn)).ToList();

    /// <inheritdoc/>
    public void Validate()
    {
        Chat.Validate(Command, NoChatTemplate);
        bool prompts = Prompts.Count > 0 || BenignPrompts.Count > 0 || Sets is not null;
        Validation.Require(!(prompts && Responses is not null), Command, "give either prompts (generate and judge) or responses (judge existing responses), not both");
        Validation.Require(prompts || Responses is not null, Command, "give prompts (prompt set files) or responses (a file of responses to judge)");
        Validation.Require(Prompts.Count + BenignPrompts.Count == 0 || Sets is null, Command, "give the prompt sets as files (prompts, benign-prompts) or in memory, not both");
        Validation.Require(LabelColumn is null || Responses is null, Command, "label-column applies to prompt files; a responses file's lines say \"benign\": true for a benign set");
        Validation.Require(LabelColumn is null || LabelColumn.Trim().Length > 0, Command, "label-column must name a column");
        JobOptions.RequireLimit(Command, Limit);
        bool prefillTextGiven = PrefillText != Eval.Attacks.DefaultPrefill;
        Validation.Require(Responses is null || (PlainOnly && !prefillTextGiven), Command,
            "attack, attack-file and prefill-text apply when generating; a responses file's lines name their own attack");
        Validation.Require(!prefillTextGiven || Eval.Attacks.Names(Attacks).Contains("prefill"), Command,
            "prefill-text is the built-in prefill attack's prefix; name prefill in attack (an attack file's prefill attacks carry their own)");
        var engine = ResolveEngine();
        Validation.Require(Responses is null || engine is null, Command, "a serving engine (engine-url, engine-serve) applies when generating, not to a responses file");
        Validation.Require(Attacks.Count > 0, Command, "attack needs at least one name (none for each prompt as it is)");
        Validation.Require(PrefillText.Trim().Length > 0, Command, "prefill-text must not be empty");
        if (prompts)
        {
            Validation.Require(Model is not null, Command, "model is required to generate responses (or give responses to judge)");
            Validation.RequireAtLeast(Command, "max-new-tokens", MaxNewTokens, 1);
            Validation.RequireAtLeast(Command, "batch-size", BatchSize, 1);
            engine?.Validate(Command, hasAdapter: Adapter is not null, hasFullModel: Adapter is null);
            EngineOptions.RequireLocalDefault(engine, Command, BatchSize == 8, "batch-size", "the server batches on its own");
            var duplicate = SetNames.GroupBy(s => s.Name).FirstOrDefault(g => g.Count() > 1);
            Validation.Require(duplicate is null, Command,
                $"two prompt sets are named \"{duplicate?.Key}\" ({string.Join(", ", duplicate?.Select(s => s.File) ?? [])}); rename one");
        }
        if (CustomJudge is null) ResolveJudge().Validate(Command);
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
        var sets = LoadSets().Select(s => s with { Records = JobOptions.Limit(s.Records, Limit) }).ToList();
        var given = Responses is null ? null : JobOptions.Limit(SafetyEvaluation.LoadResponses(Responses), Limit);
        string? system = Text.SystemPrompt.Resolve(SystemPrompt);
        var attacks = given is null ? Eval.Attacks.Resolve(Attacks, AttackFile, PrefillText) : [];
        var prompts = given is null ? SafetyEvaluation.Prompts(sets, attacks, system) : [];
        var engine = ResolveEngine();
        var owned = CustomJudge is null ? ResolveJudge().Create(Command, OutputDir) : null;
        try
        {
            var judge = CustomJudge ?? owned!;
            string modelLabel = Provenance.Label(Model) ?? "", adapterLabel = Provenance.Label(Adapter)!;
            var generation = new SetGeneration(ContentHash.OfModel(Model), ContentHash.OfModel(Adapter), system, MaxNewTokens) { Engine = engine?.Name, TemplateArgs = Chat.TemplateArg.Length == 0 ? null : Chat.TemplateArg };
            var reused = given is null ? SafetyEvaluation.Reusable(OutputDir, modelLabel, adapterLabel, prompts, generation) : new Dictionary<string, IReadOnlyList<SafetyResponse>>();
            var answers = given ?? Generate(engine, prompts, reused, progress);
            var setFiles = given is null
                ? sets.SelectMany(s => SafetyEvaluation.AttacksOf(s, attacks).Select(a => (Eval.Attacks.SetName(s.Name, a.Name), Provenance.Label(s.File)!))).ToList()
                : given.Select(r => r.Set).Distinct().Select(s => (s, Provenance.Label(Responses)!)).ToList();
            var stage = ProgressStage.Start(progress, $"judging ({judge.Name})", answers.Count, "responses");
            var judged = SafetyEvaluation.JudgeAsync(answers, judge, n => stage.Advance(n, n)).GetAwaiter().GetResult();
            var generated = given is null ? setFiles.ToDictionary(s => s.Item1, _ => generation, StringComparer.Ordinal) : null;
            var thisRun = SafetyEvaluation.Summarize(modelLabel, adapterLabel, judge.Name, setFiles, judged, generated, SafetyEvaluation.RefusalSource(judge));
            var (run, all, replaced) = SafetyEvaluation.MergeWithExisting(OutputDir, thisRun, judged);
            SafetyEvaluation.Save(OutputDir, run, all);
            return new EvalSafetyResult(run, judged, replaced) { Reused = reused.Keys.ToList() };
        }
        finally
        {
            (owned as IDisposable)?.Dispose();
        }
    }

    // The responses to every prompt, in order: those of reused sets as they were, the others generated by the serving
    // engine or the model (loaded only when something is left to generate).
    private IReadOnlyList<SafetyResponse> Generate(EngineOptions? engineOptions, IReadOnlyList<SafetyPrompt> prompts, IReadOnlyDictionary<string, IReadOnlyList<SafetyResponse>> reused,
        Action<JobProgress>? progress)
    {
        var todo = prompts.Where(p => !reused.ContainsKey(p.Set)).ToList();
        var fresh = new Queue<SafetyResponse>();
        if (todo.Count > 0 && engineOptions is not null)
        {
            // The attacks' conversations are checked before a server is started (loading a model takes minutes).
            var tokenizer = Text.PretrainedTokenizer.Load(Model!, Adapter).AsRawText(NoChatTemplate).WithTemplateArgs(Chat.Args);
            CheckAttackTemplates(tokenizer, todo);
            using var engine = EngineSession.Open(engineOptions, Model!, Path.Combine(OutputDir, ServingEngine.CacheFileName), Command, Adapter,
                Path.Combine(OutputDir, EngineServer.LogFileName), tokenizer);
            foreach (var r in SafetyEvaluation.Responses(todo, engine.Generate(SafetyEvaluation.Requests(todo), MaxNewTokens, progress)))
                fresh.Enqueue(r);
        }
        else if (todo.Count > 0)
        {
            using var chat = ChatModel.Open(Model!, Adapter, NoChatTemplate, Chat.Args);
            CheckAttackTemplates(chat.Tokenizer, todo);
            var stage = ProgressStage.Start(progress, "generating", (double)todo.Count * MaxNewTokens);
            var cache = CacheGenerations ? GenerationCache.Open(GenerationCachePath ?? Path.Combine(OutputDir, GenerationCache.FileName), Model!, Adapter) : null;
            foreach (var r in SafetyEvaluation.Generate(chat.Transformer, chat.Tokenizer, todo, chat.Greedy(MaxNewTokens, BatchSize), n => stage.Advance(n, n), cache))
                fresh.Enqueue(r);
        }
        var answers = new List<SafetyResponse>(prompts.Count);
        var position = reused.ToDictionary(r => r.Key, _ => 0, StringComparer.Ordinal);
        foreach (var p in prompts)
            answers.Add(reused.TryGetValue(p.Set, out var earlier) ? earlier[position[p.Set]++] with { Benign = p.Benign } : fresh.Dequeue());
        return answers;
    }


    // A template that refuses an attack's conversation (roles that do not alternate …) is named with the attack.
    private void CheckAttackTemplates(Text.PretrainedTokenizer tokenizer, IReadOnlyList<SafetyPrompt> todo)
    {
        foreach (var first in todo.GroupBy(p => p.Attack).Select(g => g.First()))
        {
            try
            {
                Text.ChatPrompt.Render(tokenizer, first.Sent.Messages);
            }
            catch (IrrException e) when (first.Attack != Eval.Attacks.None)
            {
                throw new IrrException($"attack '{first.Attack}'{(AttackFile is null ? "" : $" ({AttackFile})")}: {e.Message}", e);
            }
        }
    }
}
