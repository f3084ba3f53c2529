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
public sealed record SafeDeltaJob : WeightEditJob, IJob<SafeDeltaReport>, IWeightEditJob
{
    /// <summary>The safety data: harmful prompts with safe answers (the released code uses 128 self-generated refusals), read as irr fisher reads its records.</summary>
    [Option("the safety data, harmful prompts with safe answers, for θ_A's Hessians: " + OptionHelp.Records, Kind = OptionKind.Input, HubFile = true, Required = true)]
    public required string SafetyData { get; init; }

    /// <summary>s: the scale of the per-block safety budget ε = mean(1/[H⁻¹]_mm)·s/2·rows/hidden_size (the released code's default 0.1).</summary>
    [Option("s: the scale of the safety budget ε (larger keeps more of the fine-tune; the paper's code uses 0.1)")]
    public double Scale { get; init; } = 0.1;

    /// <summary>Target modules, or null: the adapter's targets for <see cref="WeightEditJob.Adapter"/>, all of the model's linear modules otherwise.</summary>
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

    /// <inheritdoc/>
    public string Command => "baseline safedelta";

    /// <inheritdoc/>
    public IReadOnlyList<string> Inputs => Provenance.Given(Base, Finetuned ?? Adapter, SafetyData);

    /// <inheritdoc/>
    public void Validate()
    {
        WeightEdit.Validate(this, Modules);
        Chat.Validate(Command, NoChatTemplate);
        Validation.Require(double.IsFinite(Scale) && Scale >= 0, Command,
            $"scale must be a finite number ≥ 0, not {Scale.ToString(CultureInfo.InvariantCulture)}");
        Validation.RequireAtLeast(Command, "nsamples", NSamples, 1);
        Validation.RequireAtLeast(Command, "seqlen", SeqLen, 1);
        Validation.RequireAtLeast(Command, "blocksize", BlockSize, 1);
        Validation.Require(double.IsFinite(PercDamp) && PercDamp >= 0, Command, $"percdamp must be a finite number ≥ 0, not {PercDamp.ToString(CultureInfo.InvariantCulture)}");
    }

    /// <summary>
    /// Runs Safe Delta and writes the model directory with its report. <paramref name="progress"/> advances once per target matrix.
    /// </summary>
    /// <returns>Per target matrix: the deltas kept, the budget and the loss spent.</returns>
    /// <exception cref="IrrException">
    /// An option is invalid; a model, adapter or the safety data is missing or malformed; θ_A and θ_F differ in architecture
    /// or shape; a weight or a Hessian is not finite, or a Hessian cannot be factored; the output exists (without
    /// <see cref="WeightEditJob.Overwrite"/>) or is an input. Nothing is left at <see cref="WeightEditJob.OutputPath"/> then.
    /// </exception>
    public SafeDeltaReport Run(Action<JobProgress>? progress = null)
    {
        var clock = Stopwatch.StartNew();
        using var models = WeightEdit.Open(this);   // validated, a bad output refused before any work
        var (aligned, theta) = (models.Aligned, models.Theta);
        var config = theta.Config;
        var modules = TargetModules.For(config, Modules ?? (theta.Adapter is { } lora ? RealignJob.AdapterTargets(lora) : TargetModules.All));
        Architecture.RequireSame(aligned, theta, modules);
        InputChecks.BaseAndFinetuned(Command, Base, Finetuned, Adapter);
        RealignJob.RequireAdapted(Command, theta.Adapter, config, modules);

        var (_, safety) = RealignJob.EncodeRecords(Base, Finetuned, Adapter, config.VocabSize, NoChatTemplate, Chat, SystemPrompt, SafetyData, NSamples, SeqLen);

        var dtype = TensorDTypes.ParseOutput(DType, Command);
        var specs = config.ExpectedTensors().Select(t => new TensorSpec(t.Name, dtype ?? theta.StorageType(t.Name), t.Shape)).ToList();
        var options = new SafeDeltaOptions { Scale = Scale, BlockSize = BlockSize, PercDamp = PercDamp, Modules = modules, OutputDType = dtype };
        var stage = ProgressStage.Start(progress, $"Safe Delta ({config.NumHiddenLayers * modules.Count} matrices)", config.NumHiddenLayers * modules.Count);
        using var writer = WeightEdit.OpenOutput(this, config, specs, dtype, SafeDeltaReport.FileName);
        var report = new SafeDeltaReport(SafeDelta.Run(aligned, theta, safety, options, (name, values) => writer.Write(name, values), _ => stage.Advance()))
        {
            SafetyTokens = safety.Sum(s => (long)s.Length),
        };
        JsonFiles.WriteFile(writer.PathOf(SafeDeltaReport.FileName), report.ToJson(ReportHeader(modules, dtype, safety.Count), clock.Elapsed.TotalSeconds));
        writer.Commit(Card.Of(() => ModelCardOf(modules)));
        return report;
    }

    /// <summary>The output's model card: θ_A as the base (its licence), s, the modules and the safety data (<see cref="WeightEdit.CardOf"/>).</summary>
    public ModelCard ModelCardOf(IReadOnlyList<string> modules) =>
        WeightEdit.CardOf(this, "safedelta", "Safe Delta, the fine-tuning deltas that fit a safety budget, compensated", "https://arxiv.org/abs/2505.12038",
            [("s (scale)", Scale.ToString("R", CultureInfo.InvariantCulture)), ("modules", string.Join(", ", modules)),
             ("safety data", Path.GetFileName(SafetyData)), ("safety data SHA-256", ContentHash.Compute(SafetyData))]);

    /// <summary>The report's header (<see cref="WeightEdit.ReportHeader"/>) and the number of safety records used.</summary>
    public JsonObject ReportHeader(IReadOnlyList<string> modules, TensorDType? dtype, int records)
    {
        var header = WeightEdit.ReportHeader(this, "safedelta", modules, dtype);
        header["safety_records"] = records;
        return header;
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
