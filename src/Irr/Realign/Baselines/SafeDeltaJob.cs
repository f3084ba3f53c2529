using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Irr.Data;
using Irr.IO;
using Irr.Jobs;
using Irr.Text;

namespace Irr.Realign.Baselines;

/// <summary>
/// The Safe Delta baseline as a job (<c>irr baseline safedelta</c>; Lu et al., "Safe Delta: Consistently Preserving Safety
/// when Fine-Tuning LLMs on Diverse Datasets", ICML 2025, arXiv 2505.12038, code ColinLu50/SafeDelta). From θ_A, keep the
/// fine-tuning deltas whose estimated safety loss fits a per-block budget scaled by s, and compensate them with the OBS
/// update, on the Hessians of θ_A's linear inputs over safety data (<see cref="SafeDelta"/>). Writes a complete model
/// directory with <see cref="SafeDeltaReport.FileName"/> inside, atomically.
/// </summary>
[Job("baseline safedelta", Help = "Safe Delta (Lu et al., ICML 2025): keep the fine-tuning deltas that fit a safety budget on θ_A's Hessians, compensate them (OBS)",
    Produces = ArtifactKind.Model)]
public sealed record SafeDeltaJob : IJob<SafeDeltaReport>
{
    /// <summary>The aligned model θ_A the fine-tune started from (the base of <see cref="Adapter"/>).</summary>
    [Option("the aligned model θ_A the fine-tune started from", Kind = OptionKind.Input, Hub = true, Required = true)]
    public required string Base { get; init; }

    /// <summary>The fully fine-tuned model θ_F (a model directory); or give <see cref="Adapter"/>.</summary>
    [Option("the fully fine-tuned model θ_F (a model directory); give it or --adapter", Kind = OptionKind.Input, Hub = true)]
    public string? Finetuned { get; init; }

    /// <summary>θ_F as a PEFT LoRA adapter on <see cref="Base"/>; or give <see cref="Finetuned"/>.</summary>
    [Option("or θ_F as a PEFT LoRA adapter on --base (merged in float32)", Kind = OptionKind.Input, Hub = true)]
    public string? Adapter { get; init; }

    /// <summary>The safety data: harmful prompts with safe answers (the released code uses 128 self-generated refusals), read as irr fisher reads its records.</summary>
    [Option("the safety data, harmful prompts with safe answers, for θ_A's Hessians: " + OptionHelp.Records, Kind = OptionKind.Input, HubFile = true, Required = true)]
    public required string SafetyData { get; init; }

    /// <summary>s: the scale of the per-block safety budget ε = mean(1/[H⁻¹]_mm)·s/2·rows/hidden_size (the released code's default 0.1).</summary>
    [Option("s: the scale of the safety budget ε (larger keeps more of the fine-tune; the paper's code uses 0.1)")]
    public double Scale { get; init; } = 0.1;

    /// <summary>Target modules, or null: the adapter's targets for <see cref="Adapter"/>, all of the model's linear modules otherwise.</summary>
    [Option("target modules: a comma-separated list or all (default: the adapter's targets for --adapter, all of the model's linear modules otherwise)", Parser = typeof(TargetModules.OptionParser))]
    public IReadOnlyList<string>? Modules { get; init; }

    /// <summary>Safety records used (the first N; the released code uses 128).</summary>
    [Option("safety records used (the first N)", Name = "nsamples")]
    public int NSamples { get; init; } = 128;

    /// <summary>Tokens kept per safety record.</summary>
    [Option("tokens kept per safety record", Name = "seqlen")]
    public int SeqLen { get; init; } = 512;

    /// <summary>Columns per block: the budget and the selection are per block (the released code's 2048).</summary>
    [Option("columns per block (the budget is per block)", Name = "blocksize")]
    public int BlockSize { get; init; } = 2048;

    /// <summary>Damping as a fraction of mean(diag H).</summary>
    [Option("damping as a fraction of mean(diag H)", Name = "percdamp")]
    public double PercDamp { get; init; } = 0.01;

    /// <summary>The system prompt of the safety records: none, llama2 or literal text.</summary>
    [Option(OptionHelp.SystemPrompt)]
    public string SystemPrompt { get; init; } = "none";

    /// <summary>Tokenize the records' text as is, without the chat template (<see cref="PretrainedTokenizer.RawText"/>).</summary>
    [Option(OptionHelp.NoChatTemplate)]
    public bool NoChatTemplate { get; init; }

    /// <summary>The chat template's extra variables (<c>--template-arg KEY=VALUE</c>, <see cref="ChatTemplateOptions"/>).</summary>
    [Options]
    public ChatTemplateOptions Chat { get; init; } = new();

    /// <summary>Output storage type: keep (θ_F's type per tensor; the base's for <see cref="Adapter"/>), bf16, f16 or f32.</summary>
    [Option("output storage type: keep, bf16, f16 or f32", Name = "dtype")]
    public string DType { get; init; } = "keep";

    /// <summary>The output model directory.</summary>
    [Option("output model directory (baseline-report.json goes inside it)", Name = "output", Alias = "-o", Kind = OptionKind.Output, Required = true, Fingerprinted = false)]
    public required string OutputPath { get; init; }

    /// <summary>The model card written with the output (<c>--no-model-card</c>, <see cref="ModelCard"/>).</summary>
    [Options]
    public ModelCardOptions Card { get; init; } = new();

    /// <summary>Replace the output directory if it exists.</summary>
    [Option(OptionHelp.Overwrite, Fingerprinted = false)]
    public bool Overwrite { get; init; }

    /// <inheritdoc/>
    public string Command => "baseline safedelta";

    /// <inheritdoc/>
    public IReadOnlyList<string> Inputs => Provenance.Given(Base, Finetuned ?? Adapter, SafetyData);

    /// <inheritdoc/>
    public string? Output => OutputPath;

    /// <inheritdoc/>
    public void Validate()
    {
        Chat.Validate(Command, NoChatTemplate);
        Validation.Require((Finetuned is null) != (Adapter is null), Command, "give exactly one of finetuned and adapter");
        Validation.Require(double.IsFinite(Scale) && Scale >= 0, Command,
            $"scale must be a finite number ≥ 0, not {Scale.ToString(CultureInfo.InvariantCulture)}");
        Validation.Require(Modules is null || (Modules.Count > 0 && Modules.All(TargetModules.All.Contains)), Command,
            $"modules must be among {string.Join(", ", TargetModules.All)}");
        Validation.RequireAtLeast(Command, "nsamples", NSamples, 1);
        Validation.RequireAtLeast(Command, "seqlen", SeqLen, 1);
        Validation.RequireAtLeast(Command, "blocksize", BlockSize, 1);
        Validation.Require(double.IsFinite(PercDamp) && PercDamp >= 0, Command, $"percdamp must be a finite number ≥ 0, not {PercDamp.ToString(CultureInfo.InvariantCulture)}");
        TensorDTypes.ParseOutput(DType, Command);
    }

    /// <summary>
    /// Runs Safe Delta and writes the model directory with its report. <paramref name="progress"/> advances once per target matrix.
    /// </summary>
    /// <returns>Per target matrix: the deltas kept, the budget and the loss spent.</returns>
    /// <exception cref="IrrException">
    /// An option is invalid; a model, adapter or the safety data is missing or malformed; θ_A and θ_F differ in architecture
    /// or shape; a weight or a Hessian is not finite, or a Hessian cannot be factored; the output exists (without
    /// <see cref="Overwrite"/>) or is an input. Nothing is left at <see cref="OutputPath"/> then.
    /// </exception>
    public SafeDeltaReport Run(Action<JobProgress>? progress = null)
    {
        Validate();
        var clock = Stopwatch.StartNew();
        var inputs = new[] { Base, Finetuned ?? Adapter! };
        OutputDirectory.Create(OutputPath, inputs, Overwrite).Dispose(); // a bad output is refused before any work

        using var aligned = CheckpointWeights.Open(Base);
        using var theta = Finetuned is not null ? CheckpointWeights.Open(Finetuned) : CheckpointWeights.Open(Base, Adapter);
        var config = theta.Config;
        var modules = TargetModules.For(config, Modules ?? (theta.Adapter is { } lora ? RealignJob.AdapterTargets(lora) : TargetModules.All));
        Architecture.RequireSame(aligned, theta, modules);
        InputChecks.BaseAndFinetuned(Command, Base, Finetuned, Adapter);
        RealignJob.RequireAdapted(Command, theta.Adapter, config, modules);

        var tokenizer = PretrainedTokenizer.Load(Finetuned ?? Base, Adapter).AsRawText(NoChatTemplate).WithTemplateArgs(Chat.Args);
        tokenizer.RequireFits(config.VocabSize, Base);
        string? system = Text.SystemPrompt.Resolve(SystemPrompt);
        var safety = TrainingRecord.Load(SafetyData).Take(NSamples).Select(r => ChatPrompt.Encode(tokenizer, r, system, SeqLen).InputIds).ToList();
        if (safety.Count == 0) throw new IrrException($"{SafetyData}: no safety records");

        var dtype = TensorDTypes.ParseOutput(DType, Command);
        var specs = config.ExpectedTensors().Select(t => new TensorSpec(t.Name, dtype ?? theta.StorageType(t.Name), t.Shape)).ToList();
        var options = new SafeDeltaOptions { Scale = Scale, BlockSize = BlockSize, PercDamp = PercDamp, Modules = modules, OutputDType = dtype };
        var stage = ProgressStage.Start(progress, $"Safe Delta ({config.NumHiddenLayers * modules.Count} matrices)", config.NumHiddenLayers * modules.Count);
        using var writer = ModelWriter.Open(new ModelTarget(OutputPath, inputs, Overwrite, Finetuned ?? Base, dtype), config, specs, ownFiles: [SafeDeltaReport.FileName]);
        var report = new SafeDeltaReport(SafeDelta.Run(aligned, theta, safety, options, (name, values) => writer.Write(name, values), _ => stage.Advance()))
        {
            SafetyTokens = safety.Sum(s => (long)s.Length),
        };
        JsonFiles.WriteFile(writer.PathOf(SafeDeltaReport.FileName), report.ToJson(ReportHeader(modules, dtype, safety.Count), clock.Elapsed.TotalSeconds));
        writer.Commit(Card.Of(() => ModelCardOf(modules)));
        return report;
    }

    /// <summary>
    /// The output's model card: θ_A as the base (its licence), s, the modules and the safety data. <c>base_model_relation:
    /// finetune</c>, as for RESTA: one base model, the output made from it and a fine-tune of it.
    /// </summary>
    public ModelCard ModelCardOf(IReadOnlyList<string> modules) =>
        new(ModelCard.BaseModelOf(Base), "transformers", "safedelta", "Safe Delta, the fine-tuning deltas that fit a safety budget, compensated",
            "https://arxiv.org/abs/2505.12038",
            [("method", "safedelta"), ("s (scale)", Scale.ToString("R", CultureInfo.InvariantCulture)), ("modules", string.Join(", ", modules)),
             ("safety data", Path.GetFileName(SafetyData)), ("safety data SHA-256", ContentHash.Compute(SafetyData)), ("dtype", DType)],
            CardLicense.Of(Base)) { BaseModelRelation = ModelCard.Finetune };

    /// <summary>The report's header: the irr version, the method, the inputs and the options (modules and dtype as resolved).</summary>
    public JsonObject ReportHeader(IReadOnlyList<string> modules, TensorDType? dtype, int records)
    {
        var inputs = Provenance.InputsOf(this);
        inputs["fingerprints"] = InputChecks.Fingerprints(Base, Finetuned, Adapter);
        var options = Provenance.OptionsOf(this);
        options["modules"] = new JsonArray(modules.Select(m => (JsonNode?)m).ToArray());
        options["dtype"] = dtype?.ToTorchName() ?? "keep";
        return new JsonObject
        {
            ["irr_version"] = Provenance.Version,
            ["method"] = "safedelta",
            ["inputs"] = inputs,
            ["options"] = options,
            ["safety_records"] = records,
        };
    }
}

/// <summary>The result of Safe Delta: per target matrix, in layer order.</summary>
public sealed class SafeDeltaReport(List<SafeDeltaMatrix> matrices)
{
    /// <summary>The report's file name inside the output model directory.</summary>
    public const string FileName = "baseline-report.json";

    /// <summary>Per target matrix, layer by layer, forward order inside a layer.</summary>
    public List<SafeDeltaMatrix> Matrices { get; } = matrices;

    /// <summary>Tokens of the safety data the Hessians saw.</summary>
    public long SafetyTokens { get; init; }

    /// <summary>Deltas kept over every target matrix.</summary>
    public long Kept => Matrices.Sum(m => m.Kept);

    /// <summary>Entries of every target matrix.</summary>
    public long Parameters => Matrices.Sum(m => m.Parameters);

    /// <summary>The report as JSON: the header, per matrix, totals and the time.</summary>
    public JsonObject ToJson(JsonObject header, double seconds)
    {
        var o = header.DeepClone().AsObject();
        o["safety_tokens"] = SafetyTokens;
        o["matrices"] = new JsonArray(Matrices.Select(m => (JsonNode?)new JsonObject
        {
            ["layer"] = m.Layer,
            ["module"] = m.Module,
            ["parameters"] = m.Parameters,
            ["kept"] = m.Kept,
            ["kept_share"] = m.KeptShare,
            ["budget"] = m.Budget,
            ["spent"] = m.Spent,
            ["lambda"] = m.Lambda,
        }).ToArray());
        o["totals"] = new JsonObject
        {
            ["matrices"] = Matrices.Count,
            ["parameters"] = Parameters,
            ["kept"] = Kept,
            ["kept_share"] = Parameters == 0 ? 0 : (double)Kept / Parameters,
        };
        o["seconds"] = Math.Round(seconds, 3);
        return o;
    }
}
