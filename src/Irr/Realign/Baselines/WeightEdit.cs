using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Jobs;
using Irr.Tensors;
using Irr.Text;

namespace Irr.Realign.Baselines;

/// <summary>
/// The options every baseline that writes θ_F with some of its tensors edited has (RESTA, interpolation, Antidote, Safe Delta): θ_A,
/// θ_F as a model or a LoRA adapter on θ_A, the output storage type, the output directory, its model card and overwrite.
/// </summary>
public interface IWeightEditJob : IJob
{
    /// <summary>The aligned model θ_A the fine-tune started from (the base of <see cref="Adapter"/>).</summary>
    string Base { get; }

    /// <summary>The fully fine-tuned model θ_F, or null with <see cref="Adapter"/>.</summary>
    string? Finetuned { get; }

    /// <summary>θ_F as a PEFT LoRA adapter on <see cref="Base"/>, or null with <see cref="Finetuned"/>.</summary>
    string? Adapter { get; }

    /// <summary>Output storage type: keep, bf16, f16 or f32.</summary>
    string DType { get; }

    /// <summary>The output model directory.</summary>
    string OutputPath { get; }

    /// <summary>The model card written with the output.</summary>
    ModelCardOptions Card { get; }

    /// <summary>Replace the output directory if it exists.</summary>
    bool Overwrite { get; }
}

/// <summary>
/// The options of <see cref="IWeightEditJob"/> declared once: the weight-editing baseline jobs derive from this record
/// (their own options follow these in <c>--help</c>).
/// </summary>
public abstract record WeightEditJob
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

    /// <summary>The output (<see cref="IJob.Output"/>).</summary>
    public string? Output => OutputPath;
}

/// <summary>
/// What the weight-editing baselines share (<see cref="RestaJob"/>, <see cref="InterpolateJob"/>, <see cref="AntidoteJob"/>, <see cref="SafeDeltaJob"/>):
/// opening θ_A and θ_F (a model, or θ_A with a LoRA adapter merged in float32, <see cref="CheckpointWeights"/>), the
/// output's tensors (θ_F's, each in θ_F's storage type or the one asked for), the one pass that writes θ_F with a
/// per-tensor edit, the report header and the model card.
/// </summary>
public static class WeightEdit
{
    /// <summary>
    /// One tensor's edit: <paramref name="finetuned"/> is θ_F's tensor in float32; the result is the output's values
    /// (before rounding to the storage type): <paramref name="finetuned"/> itself when unchanged, or
    /// <paramref name="scratch"/> (as long as the tensor) filled with the edited values.
    /// </summary>
    public delegate ReadOnlySpan<float> TensorEdit(string name, ReadOnlySpan<float> finetuned, Span<float> scratch);

    /// <summary>
    /// The options every weight-editing job checks: exactly one of finetuned and adapter, the <paramref name="modules"/>
    /// given (null: the job's default) among <see cref="TargetModules.All"/>, a known dtype.
    /// </summary>
    /// <exception cref="IrrException">Both or neither of finetuned and adapter; an unknown module; an unknown dtype.</exception>
    public static void Validate(IWeightEditJob job, IReadOnlyList<string>? modules)
    {
        Validation.Require((job.Finetuned is null) != (job.Adapter is null), job.Command, "give exactly one of finetuned and adapter");
        Validation.Require(modules is null || (modules.Count > 0 && modules.All(TargetModules.All.Contains)), job.Command,
            $"modules must be among {string.Join(", ", TargetModules.All)}");
        TensorDTypes.ParseOutput(job.DType, job.Command);
    }

    /// <summary>Checks a scale the weights are multiplied by in float32 (γ, α): finite, also once rounded to float32.</summary>
    /// <exception cref="IrrException">"<c>COMMAND: name must be a finite number …</c>".</exception>
    public static void RequireFloat32(IWeightEditJob job, string name, double value) =>
        Validation.Require(double.IsFinite(value) && float.IsFinite((float)value), job.Command,
            $"{name} must be a finite number (in float32, as the weights are computed), not {value.ToString(System.Globalization.CultureInfo.InvariantCulture)}");

    /// <summary>The paths the output must not be: θ_A and θ_F (the model or the adapter).</summary>
    public static string[] ModelInputs(IWeightEditJob job) => [job.Base, job.Finetuned ?? job.Adapter!];

    /// <summary>Refuses a bad output (it exists without overwrite, or is an input) before any work.</summary>
    public static void CheckOutput(IWeightEditJob job) => OutputDirectory.Create(job.OutputPath, ModelInputs(job), job.Overwrite).Dispose();

    /// <summary>
    /// Validates the job, refuses a bad output before any work (<see cref="CheckOutput"/>) and opens θ_A and θ_F (the
    /// fine-tuned model, or θ_A with the adapter merged in float32). The caller disposes the result.
    /// </summary>
    /// <exception cref="IrrException">An option is invalid; the output is refused; a model or the adapter is missing or malformed, or the adapter does not fit θ_A.</exception>
    public static Models Open(IWeightEditJob job)
    {
        job.Validate();
        CheckOutput(job);
        var aligned = CheckpointWeights.Open(job.Base);
        try { return new Models(aligned, job.Finetuned is not null ? CheckpointWeights.Open(job.Finetuned) : CheckpointWeights.Open(job.Base, job.Adapter)); }
        catch { aligned.Dispose(); throw; }
    }

    /// <summary>θ_A and θ_F as <see cref="Open"/> opens them.</summary>
    public sealed class Models(CheckpointWeights aligned, CheckpointWeights theta) : IDisposable
    {
        /// <summary>θ_A.</summary>
        public CheckpointWeights Aligned { get; } = aligned;

        /// <summary>θ_F (with the adapter merged for a LoRA fine-tune).</summary>
        public CheckpointWeights Theta { get; } = theta;

        /// <summary>Releases both.</summary>
        public void Dispose()
        {
            Theta.Dispose();
            Aligned.Dispose();
        }
    }

    /// <summary>
    /// Writes the output model directory: every tensor of θ_F in order, passed through <paramref name="edit"/> and rounded to
    /// its storage type (<paramref name="dtype"/>, or θ_F's), then the report (<paramref name="reportFile"/>, from
    /// <paramref name="report"/> once every tensor is written) and the model card; atomically. <paramref name="progress"/>
    /// advances once per tensor, in a stage named <paramref name="what"/> with the counts of edited <paramref name="matrices"/> and of tensors.
    /// </summary>
    public static void Write(IWeightEditJob job, CheckpointWeights theta, TensorDType? dtype, string what, int? matrices, TensorEdit edit,
        string reportFile, Func<JsonObject> report, Func<ModelCard> card, Action<JobProgress>? progress)
    {
        var config = theta.Config;
        var specs = config.ExpectedTensors().Select(t => new TensorSpec(t.Name, dtype ?? theta.StorageType(t.Name), t.Shape)).ToList();
        var stage = ProgressStage.Start(progress, $"{what} ({(matrices is { } m ? $"{m} matrices, " : "")}{specs.Count} tensors)", specs.Count, "tensors");
        using var writer = OpenOutput(job, config, specs, dtype, reportFile);
        float[] loaded = [], scratch = [];
        foreach (var spec in specs)
        {
            var w = theta.Load(spec.Name, ref loaded);
            if (scratch.Length < w.Length) scratch = new float[w.Length];
            writer.Write(spec.Name, edit(spec.Name, w, scratch.AsSpan(0, w.Length)));   // rounded to the storage type here
            stage.Advance();
        }
        JsonFiles.WriteFile(writer.PathOf(reportFile), report());
        writer.Commit(job.Card.Of(card));
    }

    /// <summary>
    /// Opens the output model directory of a weight-edit baseline with θ_F's other files; for a LoRA fine-tune whose
    /// adapter folder holds a tokenizer (<c>tokenizer.json</c> or <c>tokenizer.model</c>), that tokenizer and its chat
    /// templates go with the output instead of θ_A's, as <c>irr realign</c> writes them (the files the fine-tune was
    /// trained and is served with: <see cref="TokenizerSource.Directory"/>).
    /// </summary>
    public static ModelWriter OpenOutput(IWeightEditJob job, ModelConfig config, IReadOnlyList<TensorSpec> specs, TensorDType? dtype, string reportFile)
    {
        string? adapterTokenizer = job.Finetuned is null && job.Adapter is { } a
            && (File.Exists(Path.Combine(a, "tokenizer.json")) || File.Exists(Path.Combine(a, "tokenizer.model"))) ? a : null;
        var writer = ModelWriter.Open(new ModelTarget(job.OutputPath, ModelInputs(job), job.Overwrite, job.Finetuned ?? job.Base, dtype), config, specs,
            ownFiles: [reportFile, .. adapterTokenizer is null ? Array.Empty<string>() : [.. TokenizerSource.FileNames, TokenizerSource.ChatTemplateDir]]);
        if (adapterTokenizer is not null) TokenizerSource.CopyFiles(adapterTokenizer, writer.TemporaryPath);
        return writer;
    }

    /// <summary>
    /// What a baseline's report records at its top: the irr version, the method, every input option
    /// (<see cref="Provenance.InputsOf"/>, with θ_A's and θ_F's fingerprints) and every option that shapes the result, from
    /// the schema, with the modules and the dtype as resolved.
    /// </summary>
    public static JsonObject ReportHeader(IWeightEditJob job, string method, IReadOnlyList<string> modules, TensorDType? dtype)
    {
        var inputs = Provenance.InputsOf(job);
        inputs["fingerprints"] = InputChecks.Fingerprints(job.Base, job.Finetuned, job.Adapter);
        var options = Provenance.OptionsOf(job);
        options["modules"] = new JsonArray(modules.Select(m => (JsonNode?)m).ToArray());
        options["dtype"] = dtype?.ToTorchName() ?? "keep";
        return new JsonObject
        {
            ["irr_version"] = Provenance.Version,
            ["method"] = method,
            ["inputs"] = inputs,
            ["options"] = options,
        };
    }

    /// <summary>
    /// A baseline's model card: θ_A as the base (its licence), the method, its settings and the dtype.
    /// <c>base_model_relation: finetune</c>: the output is an edit of θ_F (a fine-tune of θ_A), a whole model with one base
    /// (the Hub's <c>merge</c> is for a list of two or more base models).
    /// </summary>
    public static ModelCard CardOf(IWeightEditJob job, string method, string title, string paper, IEnumerable<(string, string)> settings) =>
        new(ModelCard.BaseModelOf(job.Base), "transformers", method, title, paper,
            [("method", method), .. settings, ("dtype", job.DType)], CardLicense.Of(job.Base)) { BaseModelRelation = ModelCard.Finetune };

    /// <summary>The Frobenius norm, accumulated in double.</summary>
    public static double Norm(ReadOnlySpan<float> values)
    {
        double sum = 0;
        foreach (float x in values) sum += (double)x * x;
        return Math.Sqrt(sum);
    }
}
