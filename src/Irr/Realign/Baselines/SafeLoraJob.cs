using System.Diagnostics;
using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Jobs;

namespace Irr.Realign.Baselines;

/// <summary>One LoRA target matrix in a Safe LoRA run.</summary>
/// <param name="Name">The base weight it adapts (model.layers.3.self_attn.q_proj.weight).</param>
/// <param name="Similarity">The cosine between vec(C·ΔW) and vec(ΔW) (<see cref="SafeLora.Similarity"/>).</param>
/// <param name="Projected">Whether its lora_B was replaced by C·B.</param>
public sealed record SafeLoraMatrix(string Name, double Similarity, bool Projected);

/// <summary>What a Safe LoRA run did, matrix by matrix, in matrix order.</summary>
/// <param name="Matrices">Every LoRA target matrix of the adapter.</param>
public sealed record SafeLoraReport(IReadOnlyList<SafeLoraMatrix> Matrices)
{
    /// <summary>The report's file name inside the output adapter directory.</summary>
    public const string FileName = "baseline-report.json";

    /// <summary>How many matrices were projected.</summary>
    public int ProjectedCount => Matrices.Count(m => m.Projected);

    /// <summary>The report: <paramref name="header"/> (version, method, inputs, selection), then the counts and every matrix.</summary>
    public JsonObject ToJson(JsonObject header, double seconds)
    {
        var json = (JsonObject)header.DeepClone();
        json["matrices_total"] = Matrices.Count;
        json["matrices_projected"] = ProjectedCount;
        json["matrices"] = new JsonArray(Matrices.Select(m => (JsonNode)new JsonObject
        {
            ["name"] = m.Name,
            ["similarity"] = m.Similarity,
            ["projected"] = m.Projected,
        }).ToArray());
        json["seconds"] = Math.Round(seconds, 3);
        return json;
    }
}

/// <summary>
/// Safe LoRA (Hsu et al., NeurIPS 2024) as a job (<c>irr baseline safelora</c>): for every LoRA target matrix of the
/// adapter, the alignment matrix <c>C = V·Vᵀ / ‖V‖_F</c> of its safety-vector matrix V and the cosine between
/// <c>C·ΔW</c> and <c>ΔW = s·B·A</c>; the matrices whose similarity is below <see cref="Threshold"/> (or the
/// <see cref="Layers"/> lowest) get <c>B' = C·B</c> (<see cref="SafeLora"/>). Writes a PEFT adapter directory (the same
/// adapter_config.json, the same tensors with the projected lora_B, in their stored dtypes) with
/// <see cref="SafeLoraReport.FileName"/> inside. Defined for LoRA adapters only: a full fine-tune is refused.
/// </summary>
[Job("baseline safelora", Help = "Safe LoRA (Hsu et al., NeurIPS 2024): project the LoRA updates least similar to the alignment subspace onto it " +
    "(B' = C·B, C = V·Vᵀ/‖V‖_F); writes a PEFT adapter")] // an adapter: not wired by kind
public sealed record SafeLoraJob : IJob<SafeLoraReport>
{
    /// <summary>The aligned model θ_A the adapter was trained on (checks the adapter's and the safety vector's shapes).</summary>
    [Option("the aligned model θ_A the adapter was trained on", Kind = OptionKind.Input, Hub = true, Required = true)]
    public required string Base { get; init; }

    /// <summary>The fine-tune as a PEFT LoRA adapter on <see cref="Base"/>.</summary>
    [Option("the fine-tune as a PEFT LoRA adapter on --base (required: Safe LoRA is defined for LoRA only)", Kind = OptionKind.Input, Hub = true)]
    public string? Adapter { get; init; }

    /// <summary>A full fine-tune: always refused (Safe LoRA projects LoRA updates); here so that the refusal names it (never read: not an input).</summary>
    [Option("refused: a full fine-tune has no LoRA matrices to project (use irr realign)")]
    public string? Finetuned { get; init; }

    /// <summary>The safety vector (from <see cref="SafetyVectorJob"/>, θ_A − θ_U), its keys read as Hugging Face names (<see cref="TensorNames"/>).</summary>
    [Option("from irr safety-vector, θ_A − θ_U (safetensors, or a torch.save .pt/.pth state dict)",
        Kind = OptionKind.Input, Required = true, From = ArtifactKind.SafetyVector)]
    public required string SafetyVector { get; init; }

    /// <summary>τ in [−1, 1]: project the matrices whose similarity is below it; or give <see cref="Layers"/>.</summary>
    [Option("τ in [-1, 1]: project the matrices whose similarity cos(C·ΔW, ΔW) is below τ; or give --layers")]
    public double? Threshold { get; init; }

    /// <summary>K ≥ 0: project the K matrices with the lowest similarity (ties: earlier matrix first); or give <see cref="Threshold"/>.</summary>
    [Option("K ≥ 0: project the K matrices with the lowest similarity (ties: the earlier matrix); or give --threshold")]
    public int? Layers { get; init; }

    /// <summary>The output adapter directory.</summary>
    [Option("output adapter directory (adapter_config.json, adapter_model.safetensors, baseline-report.json)",
        Name = "output", Alias = "-o", Kind = OptionKind.Output, Required = true, Fingerprinted = false)]
    public required string OutputPath { get; init; }

    /// <summary>The model card written with the output adapter (<c>--no-model-card</c>, <see cref="ModelCard"/>).</summary>
    [Options]
    public ModelCardOptions Card { get; init; } = new();

    /// <summary>Replace the output directory if it exists.</summary>
    [Option(OptionHelp.Overwrite, Fingerprinted = false)]
    public bool Overwrite { get; init; }

    /// <inheritdoc/>
    public string Command => "baseline safelora";

    /// <inheritdoc/>
    public IReadOnlyList<string> Inputs => Provenance.Given(Base, Adapter, Finetuned, SafetyVector);

    /// <inheritdoc/>
    public string? Output => OutputPath;

    /// <inheritdoc/>
    public void Validate()
    {
        Validation.Require(Finetuned is null, Command,
            "Safe LoRA is defined for LoRA adapters and cannot project a full fine-tune (finetuned); give adapter, or use irr realign");
        Validation.Require(Adapter is not null, Command, "adapter is required (Safe LoRA projects a LoRA adapter's updates)");
        Validation.Require(Threshold.HasValue != Layers.HasValue, Command, "give exactly one of threshold and layers");
        Validation.Require(Threshold is null || Threshold is >= -1 and <= 1, Command, $"threshold must be between -1 and 1, not {Threshold}");
        if (Layers is { } k) Validation.RequireAtLeast(Command, "layers", k, 0);
    }

    /// <summary>
    /// What the report records at its top: the irr version, the method, every input option (<see cref="Provenance.InputsOf"/>)
    /// and the selection rule: the one of threshold and layers that was given, under <c>rule</c> and under its key.
    /// </summary>
    public JsonObject ReportHeader(double scale, int rank)
    {
        var inputs = Provenance.InputsOf(this);
        inputs["fingerprints"] = InputChecks.Fingerprints(Base, null, Adapter);
        var (rule, value) = Provenance.OptionsOf(this).Single(o => o.Value is not null); // finetuned is null (refused): threshold or layers
        return new JsonObject
        {
            ["irr_version"] = Provenance.Version,
            ["method"] = "safelora",
            ["inputs"] = inputs,
            ["selection"] = new JsonObject { ["rule"] = rule, [rule] = value!.DeepClone() },
            ["lora_scale"] = scale,
            ["lora_rank"] = rank,
        };
    }

    /// <summary>
    /// Computes every matrix's similarity, selects, projects and writes the adapter with its report.
    /// <paramref name="progress"/> advances once per LoRA matrix.
    /// </summary>
    /// <exception cref="IrrException">
    /// An option is invalid; the adapter is missing, is a model directory, or does not fit the base; the safety vector
    /// lacks a matrix or has another shape; the output exists.
    /// </exception>
    public SafeLoraReport Run(Action<JobProgress>? progress = null)
    {
        Validate();
        var clock = Stopwatch.StartNew();
        string adapterPath = Adapter!;
        var (model, adapter, vFile, pairs) = OpenChecked();
        using var _m = model;
        using var _a = adapter;
        using var _v = vFile;
        // Refuse a bad output before the work.
        string[] inputs = [Base, adapterPath];
        OutputDirectory.Create(OutputPath, inputs, Overwrite).Dispose();

        double scale = adapter.Config.Scale;
        var stage = ProgressStage.Start(progress, $"Safe LoRA ({pairs.Count} matrices)", pairs.Count, "matrices");
        var similarities = new double[pairs.Count];
        var projected = new float[pairs.Count][];
        for (int i = 0; i < pairs.Count; i++)
        {
            var pair = pairs[i];
            int rows = (int)pair.B.Shape[0], cols = (int)pair.A.Shape[1], rank = pair.Rank;
            var v = vFile.ReadSingle(pair.BaseWeight);
            var a = adapter.File.ReadSingle(pair.A.Name);
            var b = adapter.File.ReadSingle(pair.B.Name);
            var cb = SafeLora.ProjectB(v, rows, cols, b, rank);
            similarities[i] = SafeLora.Similarity(cb, b, a, rows, rank, cols, pair.Scale);
            projected[i] = Array.ConvertAll(cb, x => (float)x);
            stage.Advance(1, 1);
        }
        var selected = Threshold is { } tau ? SafeLora.SelectBelow(similarities, tau) : SafeLora.SelectLowest(similarities, Layers!.Value);
        var report = new SafeLoraReport(pairs.Select((p, i) => new SafeLoraMatrix(p.BaseWeight, similarities[i], selected[i])).ToList());

        var replaced = new Dictionary<string, float[]>(StringComparer.Ordinal);
        for (int i = 0; i < pairs.Count; i++)
            if (selected[i]) replaced[pairs[i].B.Name] = projected[i];
        using var output = OutputDirectory.Create(OutputPath, inputs, Overwrite);
        var specs = adapter.File.Tensors.Select(t => new TensorSpec(t.Name, t.DType, t.Shape.ToArray())).ToList();
        using (var writer = CheckpointWriter.Create(output, specs, new CheckpointWriterOptions { FilePrefix = "adapter_model", MaxShardBytes = long.MaxValue }))
        {
            // Every tensor in its stored dtype (float32 holds f32, f16 and bf16 values exactly): A and the other tensors unchanged.
            foreach (var t in adapter.File.Tensors)
                writer.Write(t.Name, replaced.TryGetValue(t.Name, out var b) ? b : adapter.File.ReadSingle(t.Name));
            writer.Complete();
        }
        InputFile.RequireRegular(Path.Combine(adapterPath, LoraAdapter.ConfigFile));
        File.Copy(Path.Combine(adapterPath, LoraAdapter.ConfigFile), output.PathOf(LoraAdapter.ConfigFile));
        // A tokenizer saved with θ_F's adapter goes with the new adapter too, so both are evaluated with it.
        Text.TokenizerSource.CopyFiles(adapterPath, output.TemporaryPath);
        JsonFiles.WriteFile(output.PathOf(SafeLoraReport.FileName), report.ToJson(ReportHeader(scale, adapter.Config.R), clock.Elapsed.TotalSeconds));
        Card.Of(ModelCardOf)?.Write(output.PathOf(ModelCard.FileName));
        output.Commit();
        return report;
    }

    /// <summary>
    /// The output adapter's model card (<c>library_name: peft</c>, <c>base_model_relation: adapter</c>: a LoRA adapter
    /// loaded on θ_A): θ_A as the base (its licence), τ or K.
    /// </summary>
    public ModelCard ModelCardOf() =>
        new(ModelCard.BaseModelOf(Base), "peft", "safelora", "Safe LoRA, projecting the LoRA updates least similar to the alignment subspace onto it",
            "https://arxiv.org/abs/2405.16833",
            [("method", "safelora"), Threshold is { } tau ? ("τ (threshold)", tau.ToString("R", System.Globalization.CultureInfo.InvariantCulture)) : ("K (layers)", $"{Layers}"),
             ("adapter", ModelCard.BaseModelOf(Adapter!)), ("safety vector", Path.GetFileName(SafetyVector))],
            CardLicense.Of(Base)) { BaseModelRelation = ModelCard.Adapter };

    /// <summary>
    /// Opens and checks the inputs without writing anything: the adapter is a LoRA adapter that fits the base, and the
    /// safety vector has every adapted matrix with its shape (what <c>irr sweep</c> checks before any point is realigned).
    /// </summary>
    /// <exception cref="IrrException">As <see cref="Run"/>, for the inputs.</exception>
    public void CheckInputs()
    {
        var (model, adapter, vFile, _) = OpenChecked();
        vFile.Dispose();
        adapter.Dispose();
        model.Dispose();
    }

    // The base, the adapter, the safety vector and the adapter's matrices in matrix order, each checked; the caller disposes them.
    private (ModelDirectory Model, LoraAdapter Adapter, ITensorFile Vector, List<LoraPair> Pairs) OpenChecked()
    {
        string adapterPath = Adapter!;
        if (Directory.Exists(adapterPath) && !File.Exists(Path.Combine(adapterPath, LoraAdapter.ConfigFile))
            && File.Exists(Path.Combine(adapterPath, "config.json")))
            throw new IrrException($"{Command}: {adapterPath} is a model directory (a full fine-tune), not a LoRA adapter; Safe LoRA is defined for LoRA adapters");
        ModelDirectory? model = null;
        LoraAdapter? adapter = null;
        ITensorFile? vFile = null;
        try
        {
            model = ModelDirectory.Open(Base);
            adapter = LoraAdapter.Open(adapterPath);
            vFile = TensorNames.OpenHfKeyed(SafetyVector);
            var pairs = OrderedPairs(model, adapter);
            adapter.RequireBase(model);
            foreach (var pair in pairs) Check(model, adapter, vFile, pair);
            InputChecks.Baseline(Command, Base, null, adapterPath, SafetyVector);
            return (model, adapter, vFile, pairs);
        }
        catch
        {
            vFile?.Dispose();
            adapter?.Dispose();
            model?.Dispose();
            throw;
        }
    }

    // The adapter's LoRA matrices in matrix order: decoder layer by layer, modules in forward order (q k v o gate up down; Phi-3: qkv o gate_up down),
    // then any other adapted weight by name.
    private List<LoraPair> OrderedPairs(ModelDirectory model, LoraAdapter adapter)
    {
        if (adapter.Pairs.Count == 0)
            throw new IrrException($"{Command}: {adapter.Path} has no LoRA matrices (lora_A/lora_B) to project");
        var order = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (string name in TargetModules.WeightNames(model.Config, TargetModules.All)) order[name] = order.Count;
        return adapter.Pairs.Values
            .OrderBy(p => order.TryGetValue(p.BaseWeight, out int i) ? i : int.MaxValue)
            .ThenBy(p => p.BaseWeight, StringComparer.Ordinal)
            .ToList();
    }

    // The adapted weight exists in the base with B·A's shape, and the safety vector has it with the same shape.
    private static void Check(ModelDirectory model, LoraAdapter adapter, ITensorFile vFile, LoraPair pair)
    {
        var info = model.Info(pair.BaseWeight);
        adapter.RequireFits(pair, info);
        if (!vFile.TryGetTensor(pair.BaseWeight, out var dtype, out var shape))
            throw new IrrException($"{vFile.Path}: the safety vector has no tensor '{pair.BaseWeight}', which the adapter adapts (was it computed for other --modules?)");
        if (!shape.SequenceEqual(info.Shape))
            throw new IrrException($"{vFile.Path}: tensor '{pair.BaseWeight}' is [{string.Join(", ", shape)}] but the model's weight is {info.ShapeText}");
        if (!dtype.IsFloatingSupported() && dtype != TensorDType.F64)
            throw new IrrException($"{vFile.Path}: tensor '{pair.BaseWeight}' has unsupported dtype {dtype}");
    }
}
