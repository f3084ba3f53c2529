using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Jobs;
using Irr.Tensors;

namespace Irr.Realign.Baselines;

/// <summary>
/// Plain interpolation of the aligned and the fine-tuned weights as a job (<c>irr baseline interpolate</c>), the linear
/// merge of "Safeguard Fine-Tuned LLMs Through Pre- and Post-Tuning Model Merging" (Farn et al., Findings of EMNLP 2025, arXiv 2412.19512):
/// <code>θ = θ_A + α·(θ_F − θ_A)      (α = 1 gives θ_F, α = 0 gives θ_A)</code>
/// on every tensor of the model, as the paper merges the whole model (embeddings, norms and head included; for a LoRA
/// fine-tune only the adapted tensors differ), or, with <see cref="Modules"/>, on those linear modules' weights only (every
/// other tensor is θ_F's). Element by element in float32: Δ = W_F − W_A, α·Δ and W_A + α·Δ each rounded once, α rounded
/// to float32, then rounded to the output storage type; α = 0 and α = 1 give θ_A's and θ_F's values exactly. No data, no
/// gradients: one pass over the weights. For a LoRA fine-tune θ_F is θ_A with the adapter merged in float32. Writes a
/// complete model directory with <see cref="InterpolateReport.FileName"/> inside, atomically.
/// </summary>
[Job("baseline interpolate", Help = "interpolation (Farn et al., arXiv 2412.19512): θ = θ_A + α·(θ_F − θ_A), no data",
    Produces = ArtifactKind.Model)]
public sealed record InterpolateJob : WeightEditJob, IJob<InterpolateReport>, IWeightEditJob
{
    /// <summary>α, the share of the fine-tune kept: 0 gives θ_A, 1 gives θ_F; finite values only (outside [0, 1] extrapolates).</summary>
    [Option("α: θ = θ_A + α·(θ_F − θ_A); 0 gives θ_A, 1 gives θ_F (choose it on validation data)")]
    public double Alpha { get; init; } = 0.5;

    /// <summary>Target modules, or null: every tensor of the model (the paper's merge).</summary>
    [Option("interpolate only these linear modules' weights, a comma-separated list or all (default: every tensor of the model, as the paper)", Parser = typeof(TargetModules.OptionParser))]
    public IReadOnlyList<string>? Modules { get; init; }

    /// <inheritdoc/>
    public string Command => "baseline interpolate";

    /// <inheritdoc/>
    public IReadOnlyList<string> Inputs => Provenance.Given(Base, Finetuned ?? Adapter);

    /// <inheritdoc/>
    public void Validate()
    {
        WeightEdit.Validate(this, Modules);
        WeightEdit.RequireFloat32(this, "alpha", Alpha);
    }

    /// <summary>
    /// Interpolates θ_A and θ_F and writes the model directory with its report. <paramref name="progress"/> advances once
    /// per tensor written.
    /// </summary>
    /// <returns>Per interpolated tensor, ‖θ_F − θ_A‖ and the size of the step taken.</returns>
    /// <exception cref="IrrException">
    /// An option is invalid; a model or the adapter is missing or malformed; θ_A and θ_F differ in architecture or in a
    /// tensor's shape; a tensor has a non-finite value (the message names it); the output exists (without
    /// <see cref="WeightEditJob.Overwrite"/>) or is an input. Nothing is left at <see cref="WeightEditJob.OutputPath"/> then.
    /// </exception>
    public InterpolateReport Run(Action<JobProgress>? progress = null)
    {
        var clock = Stopwatch.StartNew();
        using var models = WeightEdit.Open(this);   // validated, a bad output refused before any work
        var (aligned, theta) = (models.Aligned, models.Theta);
        var config = theta.Config;
        var modules = Modules is null ? null : TargetModules.For(config, Modules);
        Architecture.RequireSame(aligned, theta, modules ?? []);
        Func<string, bool> interpolated = modules is null ? _ => true : TargetModules.WeightNames(config, modules).ToHashSet(StringComparer.Ordinal).Contains;

        var dtype = TensorDTypes.ParseOutput(DType, Command);
        var report = new InterpolateReport();
        float alpha = (float)Alpha;
        float[] loaded = [];
        WeightEdit.Write(this, theta, dtype, "θ_A + α·(θ_F − θ_A)", null, (name, wf, result) =>
        {
            if (!interpolated(name)) return wf;
            var wa = aligned.Load(AlignedName(aligned, name), ref loaded);        // W_A: the tensor's shape (RequireSame)
            FloatChecks.RequireFinite(wa, name, "aligned model");
            FloatChecks.RequireFinite(wf, name, "fine-tuned model");
            TensorPrimitives.Subtract(wf, wa, result);                           // Δ = W_F − W_A, rounded to float32
            report.Tensors.Add(new InterpolateTensor(name, wf.Length, WeightEdit.Norm(result)));
            if (alpha == 1) return wf;                                           // θ_F exactly
            if (alpha == 0) { wa.CopyTo(result); return result; }                // θ_A exactly
            TensorPrimitives.Multiply(result, alpha, result);                    // α·Δ, rounded to float32
            TensorPrimitives.Add(wa, result, result);                            // W_A + α·Δ, rounded to float32
            return result;
        }, InterpolateReport.FileName, () => report.ToJson(WeightEdit.ReportHeader(this, "interpolate", modules ?? ["all tensors"], dtype), Alpha, clock.Elapsed.TotalSeconds),
        () => ModelCardOf(modules), progress);
        return report;
    }

    /// <summary>The output's model card: θ_A as the base, α and what was interpolated.</summary>
    public ModelCard ModelCardOf(IReadOnlyList<string>? modules) =>
        WeightEdit.CardOf(this, "interpolate", "Interpolation of the aligned and fine-tuned weights, θ = θ_A + α·(θ_F − θ_A)", "https://arxiv.org/abs/2412.19512",
            [("α (alpha)", Alpha.ToString("R", CultureInfo.InvariantCulture)), ("modules", modules is null ? "every tensor" : string.Join(", ", modules))]);

    // θ_A's tensor for an output name: a head the adapter unties from a tied base is the base's embedding there.
    private static string AlignedName(CheckpointWeights aligned, string name) =>
        name == LoraAdapter.HeadWeight && !aligned.Contains(name) ? LoraAdapter.EmbedWeight : name;
}

/// <summary>One interpolated tensor.</summary>
/// <param name="Name">The tensor's Hugging Face name.</param>
/// <param name="Parameters">Its entries.</param>
/// <param name="DeltaNorm">‖θ_F − θ_A‖_F for this tensor (Δ rounded to float32, the norm in double).</param>
public sealed record InterpolateTensor(string Name, long Parameters, double DeltaNorm);

/// <summary>The result of interpolation: per interpolated tensor, in checkpoint order.</summary>
public sealed class InterpolateReport
{
    /// <summary>The report's file name inside the output model directory.</summary>
    public const string FileName = "baseline-report.json";

    /// <summary>Per interpolated tensor, in the order of the checkpoint.</summary>
    public List<InterpolateTensor> Tensors { get; } = [];

    /// <summary>‖θ_F − θ_A‖ over the interpolated tensors.</summary>
    public double DeltaNorm => Math.Sqrt(Tensors.Sum(t => t.DeltaNorm * t.DeltaNorm));

    /// <summary>The report as JSON: the header, per tensor ‖Δ‖ and ‖(1 − α)·Δ‖ (the distance from θ_F), totals and the time.</summary>
    public JsonObject ToJson(JsonObject header, double alpha, double seconds)
    {
        var o = header.DeepClone().AsObject();
        o["tensors"] = new JsonArray(Tensors.Select(t => (JsonNode?)new JsonObject
        {
            ["name"] = t.Name,
            ["parameters"] = t.Parameters,
            ["delta_norm"] = t.DeltaNorm,
            ["removed_norm"] = Math.Abs(1 - alpha) * t.DeltaNorm,
        }).ToArray());
        o["totals"] = new JsonObject
        {
            ["tensors"] = Tensors.Count,
            ["parameters"] = Tensors.Sum(t => t.Parameters),
            ["delta_norm"] = DeltaNorm,
            ["removed_norm"] = Math.Abs(1 - alpha) * DeltaNorm,
        };
        o["seconds"] = Math.Round(seconds, 3);
        return o;
    }
}
