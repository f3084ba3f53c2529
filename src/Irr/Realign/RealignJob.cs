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
public sealed record RealignJob : IJob<RealignReport>
{
    /// <summary>The aligned model θ_A the fine-tune started from.</summary>
    public required string Base { get; init; }

    /// <summary>The fully fine-tuned model θ_F (a model directory); or give <see cref="Adapter"/>.</summary>
    public string? Finetuned { get; init; }

    /// <summary>θ_F as a PEFT LoRA adapter on <see cref="Base"/>; or give <see cref="Finetuned"/>.</summary>
    public string? Adapter { get; init; }

    /// <summary>
    /// The safety vector file (from <see cref="SafetyVectorJob"/>): safetensors or a <c>torch.save</c> state dict, its keys read as
    /// Hugging Face names (<see cref="TensorNames"/>).
    /// </summary>
    public required string SafetyVector { get; init; }

    /// <summary>The Fisher file (from <see cref="FisherJob"/>), read as <see cref="SafetyVector"/> is.</summary>
    public required string Fisher { get; init; }

    /// <summary>The task's own training records, for the Hessians (not needed for a dry run).</summary>
    public string? Calibration { get; init; }

    /// <summary>Target modules, or null: the adapter's targets for <see cref="Adapter"/>, all seven otherwise.</summary>
    public IReadOnlyList<string>? Modules { get; init; }

    /// <summary>The removal rule: irr, irr-more, fisher-only or random-at-count (<see cref="RemovalMethods"/>).</summary>
    public string Method { get; init; } = "irr";

    /// <summary>s: the fraction of candidate deltas kept, lowest Fisher first (irr, irr-more, fisher-only).</summary>
    public double Sparsity { get; init; }

    /// <summary>random-at-count: the irr-report.json whose per-matrix <c>removed</c> counts the random masks remove.</summary>
    public string? RemovalCounts { get; init; }

    /// <summary>random-at-count: the seed of the masks.</summary>
    public int Seed { get; init; }

    /// <summary>A strategy given as an object (library callers, e.g. a random control with in-memory counts); overrides <see cref="Method"/>.</summary>
    public IRemovalStrategy? Strategy { get; init; }

    /// <summary>Columns per OBS block.</summary>
    public int BlockSize { get; init; } = 128;

    /// <summary>Damping as a fraction of mean(diag H).</summary>
    public double PercDamp { get; init; } = 0.01;

    /// <summary>Calibration records used (the first N).</summary>
    public int NSamples { get; init; } = 128;

    /// <summary>Calibration tokens kept per record.</summary>
    public int SeqLen { get; init; } = 512;

    /// <summary>false: remove without compensating (ablation): θ_A where removed, θ_F elsewhere.</summary>
    public bool Recalibrate { get; init; } = true;

    /// <summary>The system prompt of the calibration records: none, llama2 or literal text.</summary>
    public string SystemPrompt { get; init; } = "none";

    /// <summary>
    /// Tokenize the records' text as is, without the chat template (<c>--no-chat-template</c>, for base models and
    /// completion-style data; <see cref="Text.PretrainedTokenizer.RawText"/>).
    /// </summary>
    public bool NoChatTemplate { get; init; }

    /// <summary>Output storage type: keep, bf16, f16 or f32.</summary>
    public string DType { get; init; } = "keep";

    /// <summary>Identify only: count the conflicts and removals, write nothing.</summary>
    public bool DryRun { get; init; }

    /// <summary>The output model directory (required unless <see cref="DryRun"/>).</summary>
    public string? OutputPath { get; init; }

    /// <summary>Replace the output directory if it exists.</summary>
    public bool Overwrite { get; init; }

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

    /// <summary>What the report records at its top: the irr version, the inputs and every option.</summary>
    public JsonObject ReportHeader(IReadOnlyList<string> modules, IRemovalStrategy strategy)
    {
        var options = new JsonObject { ["modules"] = new JsonArray(modules.Select(t => (JsonNode?)t).ToArray()) };
        foreach (var (key, value) in strategy.Describe()) options[key] = value?.DeepClone();
        options["blocksize"] = BlockSize;
        options["percdamp"] = PercDamp;
        options["nsamples"] = NSamples;
        options["seqlen"] = SeqLen;
        options["recalibrate"] = Recalibrate;
        options["system_prompt"] = SystemPrompt;
        if (NoChatTemplate) options["no_chat_template"] = true;
        options["dtype"] = OutputDType()?.ToTorchName() ?? "keep";
        static string? P(string? path) => path is null ? null : Provenance.PathOf(path);
        return new JsonObject
        {
            ["irr_version"] = Provenance.Version,
            ["inputs"] = new JsonObject
            {
                ["base"] = P(Base),
                ["finetuned"] = P(Finetuned),
                ["adapter"] = P(Adapter),
                ["safety_vector"] = P(SafetyVector),
                ["fisher"] = P(Fisher),
                ["calibration"] = P(Calibration),
                ["removal_counts"] = P(RemovalCounts),
                ["fingerprints"] = InputChecks.Fingerprints(Base, Finetuned, Adapter),
            },
            ["options"] = options,
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
        var targets = Modules ?? (theta.Adapter is { } lora ? AdapterTargets(lora) : TargetModules.All);
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

        var tokenizer = PretrainedTokenizer.Load(Finetuned ?? Base, Adapter).AsRawText(NoChatTemplate);
        tokenizer.RequireFits(theta.Config.VocabSize, Base);
        string? system = Text.SystemPrompt.Resolve(SystemPrompt);
        var calibration = TrainingRecord.Load(Calibration!).Take(NSamples)
            .Select(r => ChatPrompt.Encode(tokenizer, r, system, SeqLen).InputIds).ToList();
        var header = ReportHeader(targets, strategy);
        var stage = ProgressStage.Start(progress, $"realigning ({total} matrices)", total);
        // The files that travel with the model are θ_F's; its tokenizer and chat templates are those the calibration used
        // (an adapter folder's when it holds a tokenizer: TokenizerSource).
        using var writer = ModelWriter.Open(new ModelTarget(OutputPath!, inputs, Overwrite, Finetuned ?? Base, outputDType), theta.Config, realigner.OutputSpecs(),
            ownFiles: [RealignReport.FileName, .. tokenizer.FromAdapter ? [.. TokenizerSource.FileNames, TokenizerSource.ChatTemplateDir] : Array.Empty<string>()]);
        var report = realigner.Run(calibration, (name, values) => writer.Write(name, values), _ => stage.Advance());
        if (tokenizer.FromAdapter) TokenizerSource.CopyFiles(tokenizer.Directory!, writer.TemporaryPath);
        JsonFiles.WriteFile(writer.PathOf(RealignReport.FileName), report.ToJson(header, clock.Elapsed.TotalSeconds));
        writer.Commit();
        return report;
    }

    /// <summary>
    /// The adapter's target modules, in forward order (what <c>irr realign --adapter</c> realigns without --modules):
    /// those target_modules names; for PEFT's <c>"all-linear"</c> all seven; for another regular expression (which PEFT
    /// matches against full module names), the linear modules the adapter file has LoRA pairs for.
    /// </summary>
    /// <exception cref="IrrException">target_modules names (or the file adapts) none of the seven linear modules.</exception>
    public static IReadOnlyList<string> AdapterTargets(LoraAdapter adapter)
    {
        if (adapter.Config.TargetModulesRegex is { } regex)
        {
            var present = regex == "all-linear" ? TargetModules.All
                : TargetModules.All.Where(m => adapter.Pairs.Keys.Any(k => k.EndsWith($".{m}.weight", StringComparison.Ordinal))).ToList();
            return present.Count > 0 ? present
                : throw new IrrException($"{adapter.Path}: target_modules is the regular expression '{regex}' and the adapter has no LoRA pair for {string.Join(", ", TargetModules.All)}; give the modules explicitly");
        }
        var targets = TargetModules.All.Where(adapter.Config.TargetModules.Contains).ToList();
        if (targets.Count == 0)
            throw new IrrException($"{adapter.Path}: target_modules ({string.Join(", ", adapter.Config.TargetModules)}) names none of {string.Join(", ", TargetModules.All)}; give the modules explicitly");
        return targets;
    }
}
