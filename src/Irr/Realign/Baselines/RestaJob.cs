using System.Diagnostics;
using System.Numerics.Tensors;
using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Jobs;
using Irr.Tensors;

namespace Irr.Realign.Baselines;

/// <summary>
/// The RESTA baseline as a job (<c>irr baseline resta</c>): "REstoring Safety through Task Arithmetic" (Bhardwaj, Anh,
/// Poria, "Language Models are Homer Simpson! Safety Re-Alignment of Fine-tuned Language Models through Task
/// Arithmetic", ACL 2024, arXiv 2402.11746). The safety vector is added back to the fine-tuned weights:
/// <code>W = W_F + γ · v,   v = W_A − W_U   (the paper's θ_F + β·δ_safe, its RESTA update)</code>
/// for every target weight <c>W[out, in]</c>, element by element in float32 (γ rounded to float32, the product and the
/// sum each rounded once), then rounded to the output storage type. Every other tensor is θ_F's, unchanged; for a LoRA
/// fine-tune θ_F is θ_A with the adapter merged in float32 (IRR-SPEC, <see cref="CheckpointWeights"/>). No data, no
/// gradients, no Hessians: one pass over the weights. (The paper optionally drops part of the fine-tuning delta first
/// with DARE; that is not part of this baseline.) Writes a complete model directory with
/// <see cref="RestaReport.FileName"/> inside, atomically.
/// </summary>
[Job("baseline resta", Help = "RESTA (Bhardwaj et al., ACL 2024): add the safety vector back to the fine-tuned model, W = W_F + γ·v",
    Produces = ArtifactKind.Model)]
public sealed record RestaJob : WeightEditJob, IJob<RestaReport>, IWeightEditJob
{
    /// <summary>
    /// The safety vector <c>v = θ_A − θ_U</c> (from <see cref="SafetyVectorJob"/>): safetensors or a <c>torch.save</c> state
    /// dict, its keys read as Hugging Face names (<see cref="TensorNames"/>); each tensor has its weight's shape <c>[out, in]</c>.
    /// </summary>
    [Option("v = θ_A − θ_U, from irr safety-vector (safetensors, or a torch.save .pt/.pth state dict)",
        Kind = OptionKind.Input, Required = true, From = ArtifactKind.SafetyVector)]
    public required string SafetyVector { get; init; }

    /// <summary>γ, the scale of the safety vector (the paper's β); 0 gives θ_F back, finite values only.</summary>
    [Option("γ: the scale of the safety vector, W = W_F + γ·v (choose it on validation data)")]
    public double Gamma { get; init; } = 0.5;

    /// <summary>
    /// Target modules, or null: every linear module of the model's family the safety vector has (in forward order).
    /// Each given module must be in the safety vector for every layer.
    /// </summary>
    [Option("target modules: a comma-separated list or all (default: those of the model's linear modules the safety vector has)", Parser = typeof(TargetModules.OptionParser))]
    public IReadOnlyList<string>? Modules { get; init; }

    /// <inheritdoc/>
    public string Command => "baseline resta";

    /// <inheritdoc/>
    public IReadOnlyList<string> Inputs => Provenance.Given(Base, Finetuned ?? Adapter, SafetyVector);

    /// <inheritdoc/>
    public void Validate()
    {
        WeightEdit.Validate(this, Modules);
        WeightEdit.RequireFloat32(this, "gamma", Gamma);
    }

    /// <summary>
    /// Adds γ·v to θ_F's target weights and writes the model directory with its report. <paramref name="progress"/>
    /// advances once per tensor written.
    /// </summary>
    /// <returns>Per target matrix, the norms of v, γ·v and W_F.</returns>
    /// <exception cref="IrrException">
    /// An option is invalid; a model, adapter or the safety vector is missing or malformed; θ_A, θ_F and v differ in
    /// architecture or shape; the safety vector lacks a target weight (the message names it) or has a non-finite value;
    /// the output exists (without <see cref="WeightEditJob.Overwrite"/>) or is an input. Nothing is left at <see cref="WeightEditJob.OutputPath"/> then.
    /// </exception>
    public RestaReport Run(Action<JobProgress>? progress = null)
    {
        var clock = Stopwatch.StartNew();
        using var models = WeightEdit.Open(this);   // validated, a bad output refused before any work
        var (aligned, theta) = (models.Aligned, models.Theta);
        using var vector = TensorNames.OpenHfKeyed(SafetyVector);
        var config = theta.Config;
        var modules = TargetModules.For(config, Modules ?? ModulesIn(vector, config));
        Architecture.RequireSame(aligned, theta, modules);
        Realigner.CheckVectorFile(vector, config, modules, "safety vector");
        InputChecks.Baseline(Command, Base, Finetuned, Adapter, SafetyVector);

        var dtype = TensorDTypes.ParseOutput(DType, Command);
        var targets = TargetModules.WeightNames(config, modules).ToHashSet(StringComparer.Ordinal);
        var report = new RestaReport();
        float gamma = (float)Gamma;
        WeightEdit.Write(this, theta, dtype, "θ_F + γ·v", targets.Count, (name, w, sum) =>
        {
            if (!targets.Contains(name)) return w;
            var v = vector.ReadSingle(name);
            FloatChecks.RequireFinite(v, name, vector.Path);
            FloatChecks.RequireFinite(w, name, "fine-tuned model");
            var (layer, module) = TargetModules.Parse(config, name);
            double norm = WeightEdit.Norm(v);
            report.Matrices.Add(new RestaMatrix(layer, module, v.Length, norm, Math.Abs(Gamma) * norm, WeightEdit.Norm(w)));
            if (gamma == 0) return w;                       // γ = 0 keeps θ_F's values exactly (−0 + 0 would be +0)
            TensorPrimitives.Multiply(v, gamma, sum);       // γ·v, rounded to float32
            TensorPrimitives.Add(w, sum, sum);              // W_F + γ·v, rounded to float32
            return sum;
        }, RestaReport.FileName, () => report.ToJson(ReportHeader(modules, dtype), clock.Elapsed.TotalSeconds), () => ModelCardOf(modules), progress);
        return report;
    }

    /// <summary>
    /// The output's model card: θ_A as the base (its licence), γ and the modules. <c>base_model_relation: finetune</c>:
    /// the output is θ_F (a fine-tune of θ_A) plus γ·v, a whole model with one base (the Hub's <c>merge</c> is for a list of
    /// two or more base models).
    /// </summary>
    public ModelCard ModelCardOf(IReadOnlyList<string> modules) =>
        WeightEdit.CardOf(this, "resta", "RESTA, safety re-alignment by adding the safety vector back, W = W_F + γ·v", "https://arxiv.org/abs/2402.11746",
            [("γ (gamma)", Gamma.ToString("R", System.Globalization.CultureInfo.InvariantCulture)), ("modules", string.Join(", ", modules)),
             ("safety vector", Path.GetFileName(SafetyVector))]);

    /// <summary>
    /// What the report records at its top: the irr version, the method, every input option (<see cref="Provenance.InputsOf"/>)
    /// and every option that shapes the result, from the schema (gamma, modules, dtype), with the modules and the dtype as resolved.
    /// </summary>
    public JsonObject ReportHeader(IReadOnlyList<string> modules, TensorDType? dtype) => WeightEdit.ReportHeader(this, "resta", modules, dtype);

    // The linear modules of the model's family the safety vector has a weight of (in any layer), in forward order.
    private static IReadOnlyList<string> ModulesIn(ITensorFile vector, ModelConfig config)
    {
        var found = config.LinearModules.Where(m => Enumerable.Range(0, config.NumHiddenLayers)
            .Any(l => vector.TryGetEntry(ModelConfig.LinearWeightName(l, m), out _))).ToList();
        if (found.Count == 0)
        {
            string example = vector.Tensors.Count > 0 ? $" (its keys are like '{vector.Tensors[0].Name}')" : " (it is empty)";
            throw new IrrException($"{vector.Path}: the safety vector has no weight of {string.Join(", ", config.LinearModules)}{example}");
        }
        return found;
    }
}

/// <summary>What RESTA added to one target matrix.</summary>
/// <param name="Layer">Decoder layer.</param>
/// <param name="Module">q_proj …</param>
/// <param name="Parameters">Entries of the matrix (out × in).</param>
/// <param name="VectorNorm">‖v‖_F, the safety vector's Frobenius norm for this matrix.</param>
/// <param name="AddedNorm">‖γ·v‖_F = |γ|·‖v‖_F, the size of the edit (before rounding to the storage type).</param>
/// <param name="FinetunedNorm">‖W_F‖_F, the fine-tuned weight's norm.</param>
public sealed record RestaMatrix(int Layer, string Module, long Parameters, double VectorNorm, double AddedNorm, double FinetunedNorm)
{
    /// <summary>‖γ·v‖_F / ‖W_F‖_F (0 for a zero weight).</summary>
    public double RelativeChange => FinetunedNorm == 0 ? 0 : AddedNorm / FinetunedNorm;
}

/// <summary>The result of RESTA: per target matrix, in layer order.</summary>
public sealed class RestaReport
{
    /// <summary>The report's file name inside the output model directory.</summary>
    public const string FileName = "baseline-report.json";

    /// <summary>Per target matrix, in the order of the checkpoint (layer by layer, forward order inside a layer).</summary>
    public List<RestaMatrix> Matrices { get; } = [];

    /// <summary>‖γ·v‖ over every target matrix (the root of the sum of their squared norms).</summary>
    public double AddedNorm => Math.Sqrt(Matrices.Sum(m => m.AddedNorm * m.AddedNorm));

    /// <summary>The report as JSON: the header (version, method, inputs, options), per matrix, totals and the time.</summary>
    public JsonObject ToJson(JsonObject header, double seconds)
    {
        var o = header.DeepClone().AsObject();
        o["matrices"] = new JsonArray(Matrices.Select(m => (JsonNode?)new JsonObject
        {
            ["layer"] = m.Layer,
            ["module"] = m.Module,
            ["parameters"] = m.Parameters,
            ["vector_norm"] = m.VectorNorm,
            ["added_norm"] = m.AddedNorm,
            ["finetuned_norm"] = m.FinetunedNorm,
            ["relative_change"] = m.RelativeChange,
        }).ToArray());
        o["totals"] = new JsonObject
        {
            ["matrices"] = Matrices.Count,
            ["parameters"] = Matrices.Sum(m => m.Parameters),
            ["vector_norm"] = Math.Sqrt(Matrices.Sum(m => m.VectorNorm * m.VectorNorm)),
            ["added_norm"] = AddedNorm,
        };
        o["seconds"] = Math.Round(seconds, 3);
        return o;
    }
}
