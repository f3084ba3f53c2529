using System.Diagnostics;
using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Jobs;
using Irr.Model;
using Irr.Text;
using Irr.Data;

namespace Irr.Realign;

/// <summary>
/// IRR step 3 as a job (<c>irr realign</c>): identify the fine-tuning deltas <c>Δ = θ_F − θ_A</c> that conflict with
/// the safety vector, remove them (except a fraction s, lowest Fisher first, per the <see cref="Method"/>) and
/// recalibrate the rest with SparseGPT's OBS update on the calibration Hessians, layer by layer (IRR-SPEC step 3).
/// Writes a complete model directory with <see cref="RealignReport.FileName"/> inside, or, as a dry run, nothing.
/// </summary>
[Job("realign", Help = "IRR step 3: remove the fine-tuning deltas that conflict with the safety vector and recalibrate the rest (SparseGPT's OBS), layer by layer",
    Produces = ArtifactKind.Model, NoOutputWith = "dry-run")]
public sealed record RealignJob : IJob<RealignReport>
{
    /// <summary>The aligned model θ_A the fine-tune started from.</summary>
    [Option("the aligned model θ_A the fine-tune started from", Kind = OptionKind.Input, Hub = true, Required = true, Group = InputGroup)]
    public required string Base { get; init; }

    /// <summary>The fully fine-tuned model θ_F (a model directory); or give <see cref="Adapter"/>.</summary>
    [Option("the fully fine-tuned model θ_F (a model directory); give it or --adapter", Kind = OptionKind.Input, Hub = true, Group = InputGroup)]
    public string? Finetuned { get; init; }

    /// <summary>θ_F as a PEFT LoRA adapter on <see cref="Base"/>; or give <see cref="Finetuned"/>.</summary>
    [Option("or θ_F as a PEFT LoRA adapter on --base", Kind = OptionKind.Input, Hub = true, Group = InputGroup)]
    public string? Adapter { get; init; }

    /// <summary>
    /// The safety vector file (from <see cref="SafetyVectorJob"/>): safetensors or a <c>torch.save</c> state dict, its keys read as
    /// Hugging Face names (<see cref="TensorNames"/>).
    /// </summary>
    [Option("from irr safety-vector (safetensors, or a torch.save .pt/.pth state dict)", Kind = OptionKind.Input, Required = true, From = ArtifactKind.SafetyVector, Group = InputGroup)]
    public required string SafetyVector { get; init; }

    /// <summary>The Fisher file (from <see cref="FisherJob"/>), read as <see cref="SafetyVector"/> is.</summary>
    [Option("from irr fisher (safetensors, or a torch.save .pt/.pth state dict)", Kind = OptionKind.Input, Required = true, From = ArtifactKind.Fisher, Group = InputGroup)]
    public required string Fisher { get; init; }

    /// <summary>The task's own training records, for the Hessians (not needed for a dry run).</summary>
    [Option("the task's own training data, for the Hessians (not needed with --dry-run): " + OptionHelp.Records, Kind = OptionKind.Input, HubFile = true, Group = InputGroup)]
    public string? Calibration { get; init; }

    /// <summary>Target modules, or null: the adapter's targets for <see cref="Adapter"/>, all of the model's family otherwise.</summary>
    [Option("target modules: a comma-separated list or all (default: the adapter's targets for --adapter, all of the model's linear modules otherwise)", Parser = typeof(TargetModules.OptionParser), Group = InputGroup)]
    public IReadOnlyList<string>? Modules { get; init; }

    /// <summary>The removal rule: irr, irr-more, fisher-only or random-at-count (<see cref="RemovalMethods"/>).</summary>
    [Option("the removal rule", HelpSource = typeof(RemovalMethods), Group = InputGroup)]
    public string Method { get; init; } = "irr";

    /// <summary>s: the fraction of candidate deltas kept, lowest Fisher first (irr, irr-more, fisher-only).</summary>
    [Option("s: the fraction of candidate deltas kept (lowest Fisher); 0 removes every conflict")]
    public double Sparsity { get; init; }

    /// <summary>random-at-count: the irr-report.json whose per-matrix <c>removed</c> counts the random masks remove.</summary>
    [Option("random-at-count: the irr-report.json whose per-matrix removal counts the random masks repeat", Kind = OptionKind.Input)]
    public string? RemovalCounts { get; init; }

    /// <summary>random-at-count: the seed of the masks.</summary>
    [Option("random-at-count: seed of the random masks")]
    public int Seed { get; init; }

    /// <summary>A strategy given as an object (library callers, e.g. a random control with in-memory counts); overrides <see cref="Method"/>.</summary>
    public IRemovalStrategy? Strategy { get; init; }

    /// <summary>Columns per OBS block.</summary>
    [Option("columns per OBS block", Name = "blocksize", Group = TuningGroup)]
    public int BlockSize { get; init; } = 128;

    /// <summary>Damping as a fraction of mean(diag H).</summary>
    [Option("damping as a fraction of mean(diag H)", Name = "percdamp", Group = TuningGroup)]
    public double PercDamp { get; init; } = 0.01;

    /// <summary>Calibration records used (the first N).</summary>
    [Option("calibration records used (the first N)", Name = "nsamples", Group = TuningGroup)]
    public int NSamples { get; init; } = 128;

    /// <summary>Calibration tokens kept per record.</summary>
    [Option("calibration tokens kept per record", Name = "seqlen", Group = TuningGroup)]
    public int SeqLen { get; init; } = 512;

    /// <summary>false: remove without compensating (ablation): θ_A where removed, θ_F elsewhere.</summary>
    [Option("remove without compensating (ablation): θ_A where removed, θ_F elsewhere", Name = "no-recalibrate", Negated = true, Group = TuningGroup)]
    public bool Recalibrate { get; init; } = true;

    /// <summary>The system prompt of the calibration records: none, llama2 or literal text.</summary>
    [Option(OptionHelp.SystemPrompt, Group = TuningGroup)]
    public string SystemPrompt { get; init; } = "none";

    /// <summary>
    /// Tokenize the records' text as is, without the chat template (<c>--no-chat-template</c>, for base models and
    /// completion-style data; <see cref="Text.PretrainedTokenizer.RawText"/>).
    /// </summary>
    [Option(OptionHelp.NoChatTemplate, Group = TuningGroup)]
    public bool NoChatTemplate { get; init; }

    /// <summary>The chat template's extra variables (<c>--template-arg KEY=VALUE</c>, <see cref="Text.ChatTemplateOptions"/>).</summary>
    [Options]
    public Text.ChatTemplateOptions Chat { get; init; } = new();

    /// <summary>Output storage type: keep, bf16, f16 or f32.</summary>
    [Option("output storage type: keep, bf16, f16 or f32", Name = "dtype", Group = TuningGroup)]
    public string DType { get; init; } = "keep";

    /// <summary>Identify only: count the conflicts and removals, write nothing.</summary>
    [Option("identify only: print how many deltas conflict and would be removed, write nothing")]
    public bool DryRun { get; init; }

    /// <summary>The model card written with the output (<c>--no-model-card</c>, <see cref="ModelCard"/>).</summary>
    [Options]
    public ModelCardOptions Card { get; init; } = new();

    /// <summary>The model card's evaluation summary (the sweep's chosen point's figures), empty for none.</summary>
    public IReadOnlyList<string> CardEvaluation { get; init; } = [];

    /// <summary>The output model directory (required unless <see cref="DryRun"/>).</summary>
    [Option("output model directory (irr-report.json goes inside it)", Name = "output", Alias = "-o", Kind = OptionKind.Output, Fingerprinted = false)]
    public string? OutputPath { get; init; }

    /// <summary>Replace the output directory if it exists.</summary>
    [Option(OptionHelp.Overwrite, Fingerprinted = false)]
    public bool Overwrite { get; init; }

    /// <summary>The group of the options that name the inputs and the removal rule (the sweep takes them).</summary>
    public const string InputGroup = "inputs";

    /// <summary>The group of the options that tune the realignment (the sweep takes them).</summary>
    public const string TuningGroup = "tuning";

    /// <inheritdoc/>
    public string Command => "realign";

    /// <inheritdoc/>
    public IReadOnlyList<string> Inputs =>
        Provenance.Given(Base, Finetuned ?? Adapter, SafetyVector, Fisher, Calibration, RemovalCounts);

    /// <inheritdoc/>
    public string? Output => DryRun ? null : OutputPath;

    /// <inheritdoc/>
    public void Validate()
    {
        Chat.Validate(Command, NoChatTemplate);
        Validation.Require((Finetuned is null) != (Adapter is null), Command, "give exactly one of finetuned and adapter");
        Validation.Require(DryRun || OutputPath is not null, Command, "output is required (except for a dry run)");
        Validation.Require(DryRun || Calibration is not null, Command, "calibration is required (except for a dry run)");
        var method = Strategy is null ? RemovalMethods.Find(Method) : null;
        Validation.Require(Strategy is not null || method is not null, Command, $"method must be {RemovalMethods.Names(RemovalMethods.All)}, not '{Method}'");
        Validation.Require(Sparsity is >= 0 and <= 1, Command, $"sparsity must be between 0 and 1, not {Sparsity}");
        Validation.Require(method is not { TakesRemovalCounts: true } || RemovalCounts is not null, Command,
            $"method {method?.Name} needs removal-counts (an irr-report.json whose per-matrix removals it repeats at random)");
        Validation.Require(method is not { TakesRemovalCounts: false } || (RemovalCounts is null && Seed == 0), Command,
            $"removal-counts and seed apply to method {RemovalMethods.Names(RemovalMethods.All.Where(m => m.TakesRemovalCounts).ToList())} only");
        Validation.RequireAtLeast(Command, "blocksize", BlockSize, 1);
        Validation.Require(PercDamp >= 0, Command, $"percdamp must not be negative, not {PercDamp}");
        Validation.Require(NSamples >= 1 && SeqLen >= 1, Command, "nsamples and seqlen must be at least 1");
        Validation.Require(Modules is null || (Modules.Count > 0 && Modules.All(TargetModules.All.Contains)), Command, $"modules must be among {string.Join(", ", TargetModules.All)}");
        OutputDType();
    }

    /// <summary>The output storage type, or null to keep each tensor's.</summary>
    /// <exception cref="IrrException"><see cref="DType"/> is not keep, bf16, f16 or f32.</exception>
    public TensorDType? OutputDType() => TensorDTypes.ParseOutput(DType, Command);

    /// <summary>
    /// The removal strategy: <see cref="Strategy"/>, or the one <see cref="Method"/> names in <see cref="RemovalMethods"/>
    /// (with the per-matrix counts of the <see cref="RemovalCounts"/> report when the method takes them).
    /// </summary>
    public IRemovalStrategy CreateStrategy()
    {
        if (Strategy is not null) return Strategy;
        var method = RemovalMethods.Get(Method);
        var counts = method.TakesRemovalCounts ? RealignReport.ReadRemovalCounts(RemovalCounts!) : null;
        return method.Create(Sparsity, counts, Seed);
    }

    /// <summary>
    /// What the report records at its top: the irr version, the inputs and every option that shapes the result: the
    /// modules, the removal rule's (<see cref="IRemovalStrategy.Describe"/>) and every tuning option (<see cref="TuningGroup"/>)
    /// from the schema, under its key with underscores (a negated flag under what it turns off: <c>recalibrate</c>).
    /// </summary>
    public JsonObject ReportHeader(IReadOnlyList<string> modules, IRemovalStrategy strategy)
    {
        var options = new JsonObject { ["modules"] = new JsonArray(modules.Select(t => (JsonNode?)t).ToArray()) };
        foreach (var (key, value) in strategy.Describe()) options[key] = value?.DeepClone();
        foreach (var option in JobSchema.Of<RealignJob>().Options.Where(o => o.Attribute.Group == TuningGroup))
            options[(option.Attribute.Negated ? option.Key["no-".Length..] : option.Key).Replace('-', '_')] =
                JobSchema.Json(option.Properties[0].Get(this));
        var inputs = Provenance.InputsOf(this);
        inputs["fingerprints"] = InputChecks.Fingerprints(Base, Finetuned, Adapter);
        return new JsonObject
        {
            ["irr_version"] = Provenance.Version,
            ["inputs"] = inputs,
            ["options"] = options,
        };
    }

    /// <summary>
    /// The token ids of the first <paramref name="count"/> records of <paramref name="data"/> (prompt ++ answer ++ eos,
    /// IRR-SPEC's formatting, at most <paramref name="seqLen"/> tokens), with θ_F's tokenizer and chat template (an adapter
    /// folder's when it holds one), raw text with <paramref name="noChatTemplate"/>: what irr realign's calibration data, Antidote's
    /// harmful data and Safe Delta's safety data go through. Also the tokenizer (whose files travel with the output).
    /// </summary>
    /// <exception cref="IrrException">The tokenizer has ids beyond the model's <paramref name="vocabSize"/> embedding rows; the data is missing or malformed.</exception>
    internal static (PretrainedTokenizer Tokenizer, List<int[]> Ids) EncodeRecords(string @base, string? finetuned, string? adapter, int vocabSize,
        bool noChatTemplate, ChatTemplateOptions chat, string systemPrompt, string data, int count, int seqLen)
    {
        var tokenizer = PretrainedTokenizer.Load(finetuned ?? @base, adapter).AsRawText(noChatTemplate).WithTemplateArgs(chat.Args);
        tokenizer.RequireFits(vocabSize, @base);
        string? system = Text.SystemPrompt.Resolve(systemPrompt);
        return (tokenizer, TrainingRecord.Load(data).Take(count).Select(r => ChatPrompt.Encode(tokenizer, r, system, seqLen).InputIds).ToList());
    }

    /// <summary>
    /// The output's model card: <c>base_model</c> is θ_A's (<see cref="ModelCard.BaseModelOf"/>), its licence θ_A's
    /// README.md's; the settings are the removal rule, s, the modules, the OBS options and the calibration file's name and SHA-256.
    /// <c>base_model_relation: finetune</c>: θ_F is a fine-tune of θ_A and the output is θ_F with some of its updates
    /// removed and the rest recalibrated, a fine-tune of θ_A still (not <c>merge</c>, which the Hub keeps for a list of
    /// two or more base models; not <c>adapter</c>: the output is a whole model, also when θ_F was θ_A + a LoRA adapter).
    /// </summary>
    public ModelCard ModelCardOf(IReadOnlyList<string> modules, IRemovalStrategy strategy)
    {
        static string CardValue(JsonNode? value) => value switch
        {
            JsonValue v when v.TryGetValue(out string? text) => text,
            JsonValue v when v.TryGetValue(out double number) => number.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
            null => "null",
            _ => value.ToJsonString(),
        };
        // The removal rule as the report records it (the rule a caller gave, e.g. the demo's, says its own name and s).
        var settings = strategy.Describe().Select(kv => (kv.Key == "sparsity" ? "s (sparsity)" : kv.Key, CardValue(kv.Value))).ToList();
        settings.AddRange(new List<(string, string)>
        {
            ("modules", string.Join(", ", modules)),
            ("blocksize", BlockSize.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("percdamp", PercDamp.ToString("R", System.Globalization.CultureInfo.InvariantCulture)),
            ("recalibrate", Recalibrate ? "true" : "false"),
            ("nsamples", NSamples.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("seqlen", SeqLen.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("calibration", Path.GetFileName(Calibration!)),
            ("calibration SHA-256", ContentHash.Compute(Calibration!)),
        });
        return new ModelCard(ModelCard.BaseModelOf(Base), "transformers", strategy.Name, "IRR: Identify, Remove, and Recalibrate", ModelCard.IrrPaper,
            settings, CardLicense.Of(Base))
        {
            BaseModelRelation = ModelCard.Finetune, Datasets = ModelCard.DatasetOf(Calibration) is { } data ? [data] : [], Evaluation = CardEvaluation,
        };
    }

    /// <summary>
    /// Runs the realignment (or, for a dry run, the identification) and writes the model directory with its report.
    /// <paramref name="progress"/> advances once per target matrix.
    /// </summary>
    /// <exception cref="IrrException">An input is missing, malformed or incompatible; the output exists; a Hessian cannot be factored.</exception>
    public RealignReport Run(Action<JobProgress>? progress = null)
    {
        Validate();
        var clock = Stopwatch.StartNew();
        var inputs = new[] { Base, Finetuned ?? Adapter! };
        // Refuse a bad output before the hours of work.
        if (!DryRun) OutputDirectory.Create(OutputPath!, inputs, Overwrite).Dispose();

        var strategy = CreateStrategy();
        using var aligned = CheckpointWeights.Open(Base);
        using var theta = Finetuned is not null ? CheckpointWeights.Open(Finetuned) : CheckpointWeights.Open(Base, Adapter);
        var targets = TargetModules.For(theta.Config, Modules ?? (theta.Adapter is { } lora ? AdapterTargets(lora) : TargetModules.All));
        // Keyed by Hugging Face names, also when saved from a PEFT, DDP or compiled model's named_parameters().
        using var vFile = TensorNames.OpenHfKeyed(SafetyVector);
        using var fFile = TensorNames.OpenHfKeyed(Fisher);
        var obs = new ObsOptions { Strategy = strategy, BlockSize = BlockSize, PercDamp = PercDamp, Recalibrate = Recalibrate };
        var outputDType = OutputDType();
        var realigner = new Realigner(aligned, theta, vFile, fFile, new RealignOptions { Modules = targets, Obs = obs, OutputDType = outputDType });
        // The inputs against each other, after their shapes and before any work.
        InputChecks.Realign(Command, Base, Finetuned, Adapter, SafetyVector, Fisher);
        int total = theta.Config.NumHiddenLayers * targets.Count;
        if (DryRun)
        {
            var identifying = ProgressStage.Start(progress, "identifying", total);
            return realigner.Identify(_ => identifying.Advance());
        }

        var (tokenizer, calibration) = EncodeRecords(Base, Finetuned, Adapter, theta.Config.VocabSize, NoChatTemplate, Chat, SystemPrompt, Calibration!, NSamples, SeqLen);
        var header = ReportHeader(targets, strategy);
        var stage = ProgressStage.Start(progress, $"realigning ({total} matrices)", total);
        // The files that travel with the model are θ_F's; its tokenizer and chat templates are those the calibration used
        // (an adapter folder's when it holds a tokenizer: TokenizerSource).
        using var writer = ModelWriter.Open(new ModelTarget(OutputPath!, inputs, Overwrite, Finetuned ?? Base, outputDType), theta.Config, realigner.OutputSpecs(),
            ownFiles: [RealignReport.FileName, .. tokenizer.FromAdapter ? [.. TokenizerSource.FileNames, TokenizerSource.ChatTemplateDir] : Array.Empty<string>()]);
        var report = realigner.Run(calibration, (name, values) => writer.Write(name, values), _ => stage.Advance());
        if (tokenizer.FromAdapter) TokenizerSource.CopyFiles(tokenizer.Directory!, writer.TemporaryPath);
        JsonFiles.WriteFile(writer.PathOf(RealignReport.FileName), report.ToJson(header, clock.Elapsed.TotalSeconds));
        writer.Commit(Card.Of(() => ModelCardOf(targets, strategy)));
        return report;
    }

    /// <summary>
    /// The modules this job will realign, as far as its options and the adapter's adapter_config.json tell before any
    /// step runs (for <c>irr run</c>'s check of the steps that compute its inputs): <see cref="Modules"/>, else the
    /// adapter's listed target_modules, else all (the family's linear modules); null when that cannot be known yet (an adapter that is not there
    /// or whose target_modules is a regular expression).
    /// </summary>
    public IReadOnlyList<string>? PlannedModules()
    {
        if (Modules is not null) return Modules;
        if (Adapter is null) return TargetModules.All;
        string config = Path.Combine(Adapter, "adapter_config.json");
        if (!File.Exists(config)) return null;
        try
        {
            var lora = LoraConfig.Parse(BoundedText.Read(config), config);
            var targets = TargetModules.All.Where(lora.TargetModules.Contains).ToList();
            return lora.TargetModulesRegex is null && targets.Count > 0 ? targets : null;
        }
        catch (IrrException) { return null; } // the step itself reports a bad adapter
    }

    /// <summary>
    /// Refuses target modules of which an adapter adapts none (<c>irr baseline antidote</c>, <c>safedelta</c> with
    /// <c>--adapter --modules</c>): the fine-tune changed none of them, so the output would be θ_F, silently.
    /// </summary>
    /// <exception cref="IrrException">None of <paramref name="modules"/>' weights has a LoRA pair in <paramref name="adapter"/>.</exception>
    public static void RequireAdapted(string command, LoraAdapter? adapter, ModelConfig config, IReadOnlyList<string> modules)
    {
        if (adapter is not null && !TargetModules.WeightNames(config, modules).Any(adapter.Pairs.ContainsKey))
            throw new IrrException($"{command}: modules {string.Join(",", modules)}: the adapter adapts none of them (it adapts {string.Join(", ", AdapterTargets(adapter))})");
    }

    /// <summary>
    /// The adapter's target modules, in forward order (what <c>irr realign --adapter</c> realigns without --modules):
    /// those target_modules names; for PEFT's <c>"all-linear"</c> <see cref="TargetModules.All"/> (the base family's, once resolved by
    /// <see cref="TargetModules.For"/>); for another regular expression (which PEFT
    /// matches against full module names), the linear modules the adapter file has LoRA pairs for.
    /// </summary>
    /// <exception cref="IrrException">target_modules names (or the file adapts) none of the linear modules.</exception>
    public static IReadOnlyList<string> AdapterTargets(LoraAdapter adapter)
    {
        if (adapter.Config.TargetModulesRegex is { } regex)
        {
            var present = regex == "all-linear" ? TargetModules.All
                : TargetModules.All.Where(m => adapter.Pairs.Keys.Any(k => k.EndsWith($".{m}.weight", StringComparison.Ordinal))).ToList();
            return present.Count > 0 ? present
                : throw new IrrException($"{adapter.Path}: target_modules is the regular expression '{regex}' and the adapter has no LoRA pair for {string.Join(", ", TargetModules.All)}; give the modules explicitly");
        }
        // PEFT matches a list entry as a module name's suffix ("self_attn.qkv_proj" names every layer's qkv_proj)
        var named = adapter.Config.TargetModules.Select(t => t[(t.LastIndexOf('.') + 1)..]).ToHashSet(StringComparer.Ordinal);
        var targets = TargetModules.All.Where(named.Contains).ToList();
        if (targets.Count == 0)
            throw new IrrException($"{adapter.Path}: target_modules ({string.Join(", ", adapter.Config.TargetModules)}) names none of {string.Join(", ", TargetModules.All)}; give the modules explicitly");
        return targets;
    }
}
