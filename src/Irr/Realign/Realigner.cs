using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Numerics.Tensors;
using Irr.IO;
using Irr.Model;
using Irr.Tensors;

namespace Irr.Realign;

/// <summary>Options of <see cref="Realigner"/>.</summary>
public sealed record RealignOptions
{
    /// <summary>Target modules M (<see cref="TargetModules.All"/>: every linear module of the model's family; resolved by <see cref="TargetModules.For"/>).</summary>
    public IReadOnlyList<string> Modules { get; init; } = TargetModules.All;

    /// <summary>The per-matrix step's options (method, sparsity, block size, damping, recalibration).</summary>
    public ObsOptions Obs { get; init; } = new();

    /// <summary>Storage type of the output; null keeps each tensor's type in the fine-tuned model.</summary>
    public TensorDType? OutputDType { get; init; }

    /// <summary>Calibration sequences run through a layer at once (bounds the activation memory).</summary>
    public int CalibrationBatchSize { get; init; } = 8;
}

/// <summary>
/// IRR step 3 (IRR-SPEC): layer by layer, collect each target module's calibration inputs from the
/// model as it is being repaired, form <c>H = (2/N) Σ x xᵀ</c>, and realign every target matrix with
/// <see cref="ObsRecalibrator"/>; then run the layer again with the new weights to produce the next
/// layer's inputs. Weights stream from the checkpoints: at any time one decoder layer is resident in
/// float32, with the Hessians of its target modules and the calibration activations.
/// </summary>
public sealed class Realigner
{
    private readonly IWeightSource aligned, finetuned;
    private readonly ITensorFile safetyVector, fisher;
    private readonly RealignOptions options;
    private readonly ModelConfig config;
    private readonly IReadOnlyList<string> modules;   // the target modules of this model's family, in forward order
    private readonly string[][] inputGroups;         // this family's modules by the input they read (one H each)

    /// <summary>θ_A, θ_F (a model, or θ_A with a LoRA adapter), the safety vector and the Fisher, checked against each other.</summary>
    public Realigner(IWeightSource aligned, IWeightSource finetuned, ITensorFile safetyVector, ITensorFile fisher, RealignOptions options)
    {
        this.aligned = aligned;
        this.finetuned = finetuned;
        this.safetyVector = safetyVector;
        this.fisher = fisher;
        this.options = options;
        config = finetuned.Config;
        modules = TargetModules.For(config, options.Modules);
        inputGroups = InputGroups(config);
        Architecture.RequireSame(aligned, finetuned, modules);
        CheckVectorFile(safetyVector, config, modules, "safety vector");
        CheckVectorFile(fisher, config, modules, "Fisher");
    }

    /// <summary>
    /// The linear modules of <paramref name="config"/>'s family grouped by the input they read, in forward order (one
    /// Hessian each): [q_proj, k_proj, v_proj] the normed hidden state, [o_proj] the attention output, [gate_proj, up_proj]
    /// the MLP's normed input, [down_proj] the GLU product; Phi-3's fused qkv_proj and gate_up_proj are one-module groups.
    /// </summary>
    public static string[][] InputGroups(ModelConfig config) =>
        config.LinearModules.GroupBy(m => m switch
        {
            "q_proj" or "k_proj" or "v_proj" or "qkv_proj" => 0,
            "o_proj" => 1,
            "gate_proj" or "up_proj" or "gate_up_proj" => 2,
            _ => 3,
        }).Select(g => g.ToArray()).ToArray();

    /// <summary>The tensors of the output model, in order, with their storage types.</summary>
    public IReadOnlyList<TensorSpec> OutputSpecs() =>
        config.ExpectedTensors().Select(t => new TensorSpec(t.Name, options.OutputDType ?? finetuned.StorageType(t.Name), t.Shape)).ToList();

    /// <summary>Identification only: per target matrix, the conflicts and the removals the rule picks on the uncompensated deltas.</summary>
    public RealignReport Identify(Action<ModuleReport>? progress = null)
    {
        var report = new RealignReport { DryRun = true };
        float[] delta = [], scratch = [];
        foreach (string name in TargetModules.WeightNames(config, modules))
        {
            var clock = Stopwatch.StartNew();
            var (layer, module) = TargetModules.Parse(config, name);
            var (v, fi, rows, cols) = LoadMatrix(name, null, ref delta, ref scratch, out _);
            var (conflicts, removed) = ObsRecalibrator.Identify(delta.AsSpan(0, rows * cols), rows, cols, v, fi, options.Obs, new TargetMatrix(name, layer, module, rows, cols));
            var m = new ModuleReport(layer, module, (long)rows * cols, conflicts, removed, double.NaN, double.NaN, 0, 0, clock.Elapsed.TotalSeconds);
            report.Modules.Add(m);
            progress?.Invoke(m);
        }
        return report;
    }

    /// <summary>
    /// Realigns the model. <paramref name="calibration"/> are the token sequences of the calibration set
    /// (already formatted and truncated); <paramref name="emit"/> receives every output tensor, in
    /// <see cref="OutputSpecs"/> order, as float32 values already rounded to the output storage type (an array
    /// the receiver may keep); <paramref name="progress"/> is called after each target matrix.
    /// </summary>
    public RealignReport Run(IReadOnlyList<int[]> calibration, Action<string, float[]> emit, Action<ModuleReport>? progress = null)
    {
        if (calibration.Count == 0) throw new IrrException("no calibration examples");
        var report = new RealignReport();
        var clock = new PhaseClock(report.PhaseSeconds);
        var specs = OutputSpecs().ToDictionary(s => s.Name, s => s.DType);
        var chunks = calibration.Chunk(Math.Max(1, options.CalibrationBatchSize))
            .Select(c => Batch.Create(c.Select(s => (IReadOnlyList<int>)s).ToList())).ToList();
        report.CalibrationTokens = chunks.Sum(b => (long)b.TokenCount);
        float[][] hidden;                                   // hidden: [n_chunks][T_chunk, d], the next layer's inputs
        using (clock.Phase("forward")) hidden = chunks.Select(new Transformer(finetuned).Embed).ToArray();
        using (clock.Phase("write")) EmitCopy("model.embed_tokens.weight", specs, emit);

        var layerWeights = new ParameterSet(config, fallback: finetuned);
        var model = new Transformer(layerWeights);
        var work = new Workspace(hidden.Max(h => h.Length), inputGroups.Length);
        for (int layer = 0; layer < config.NumHiddenLayers; layer++)
        {
            Interruption.ThrowIfRequested(); // a stop ends between layers (and at every kernel)
            string prefix = $"model.layers.{layer}.";
            var layerNames = config.ExpectedTensors().Select(t => t.Name).Where(n => n.StartsWith(prefix, StringComparison.Ordinal)).ToList();
            using (clock.Phase("load")) LoadLayer(layerNames, layerWeights);
            var groups = inputGroups.Where(g => g.Any(modules.Contains)).ToList();
            var hessians = CollectHessians(model, layer, hidden, chunks, groups, work, clock);   // hessians: [n_groups][d_in, d_in]
            for (int g = 0; g < groups.Count; g++)
                RealignGroup(layer, groups[g], hessians[g], layerWeights, specs, work, clock, report, progress);
            using (clock.Phase("forward"))                  // the realigned layer produces the next layer's inputs
                for (int c = 0; c < chunks.Count; c++) model.LayerForward(layer, hidden[c], chunks[c]);
            using (clock.Phase("write"))
                foreach (string name in layerNames) emit(name, Rounded(layerWeights[name], specs[name]));
            layerWeights.Clear();
            CollectLayerGarbage();
        }
        using (clock.Phase("write"))
            foreach (var spec in OutputSpecs().Where(s => !s.Name.StartsWith("model.layers.", StringComparison.Ordinal) && s.Name != "model.embed_tokens.weight"))
                EmitCopy(spec.Name, specs, emit);
        return report;
    }

    // The buffers the layer loop reuses: the copy of a chunk's hidden states the first pass runs on, a Hessian
    // accumulator per input group, and the per-matrix buffers of Δ, W_A and the removal mask.
    private sealed class Workspace(int hiddenLength, int inputGroups)
    {
        public readonly float[] FirstPass = new float[hiddenLength];                 // [T_chunk, d]
        public readonly float[]?[] Hessians = new float[inputGroups][];              // by input group: [d_in, d_in]
        public float[] Delta = [], Aligned = [];                                     // [rows, cols]
        public bool[] Removed = [];                                                  // [rows, cols]

        // The zeroed accumulator of input group g (one per group: two groups of the same width are summed apart).
        public float[] Hessian(int g, int columns)
        {
            var h = Hessians[g];
            if (h is null || h.Length != columns * columns) Hessians[g] = h = new float[columns * columns];
            else Array.Clear(h);
            return h;
        }
    }

    // This layer's weights from θ_F, resident in float32 while it is realigned.
    private void LoadLayer(IEnumerable<string> names, ParameterSet layerWeights)
    {
        foreach (string name in names)
        {
            var values = LoadArray(finetuned, name);
            FloatChecks.RequireFinite(values, name, "fine-tuned model");
            layerWeights.Set(name, values);
        }
    }

    // The Hessians of the inputs each group reads, from the layer before any edit: H = (2/N) Σ x xᵀ, checked finite.
    // The pass runs on a copy of each chunk (the inputs stay for the second pass) and stops at the last input needed.
    private float[][] CollectHessians(Transformer model, int layer, float[][] hidden, List<Batch> chunks, List<string[]> groups, Workspace work, PhaseClock clock)
    {
        var byModule = new Dictionary<string, int>();
        for (int g = 0; g < groups.Count; g++) byModule[groups[g][0]] = g;
        int[] slot = groups.Select(g => Array.IndexOf(inputGroups, g)).ToArray();   // a group's workspace accumulator
        var hessians = new float[groups.Count][];                                   // [n_groups][d_in, d_in]
        long tokens = 0;
        using (clock.Phase("forward"))
            for (int c = 0; c < chunks.Count; c++)
            {
                var x = work.FirstPass.AsSpan(0, hidden[c].Length);                  // x: [T_chunk, d]
                hidden[c].CopyTo(x);
                model.LayerForward(layer, x, chunks[c], (_, module, input, rows, cols) =>
                {
                    if (!byModule.TryGetValue(module, out int g)) return;
                    using (clock.Phase("hessian")) Syrk.AddXtX(input, rows, cols, 1f, hessians[g] ??= work.Hessian(slot[g], cols));
                }, stopAfter: groups[^1][^1]);
                tokens += chunks[c].TokenCount;
            }
        for (int g = 0; g < groups.Count; g++)
        {
            TensorPrimitives.Multiply(hessians[g], 2f / tokens, hessians[g]);
            if (FloatChecks.FirstNonFinite(hessians[g]) >= 0)
                throw new IrrException($"layer {layer}: the calibration inputs of {string.Join("/", groups[g])} are not finite (the model produces NaN or ∞ on the calibration data)");
        }
        return hessians;
    }

    // One group of matrices that read the same input: factor its Hessian once, then realign each target matrix.
    private void RealignGroup(int layer, string[] group, float[] hessian, ParameterSet layerWeights, Dictionary<string, TensorDType> specs,
        Workspace work, PhaseClock clock, RealignReport report, Action<ModuleReport>? progress)
    {
        var targets = group.Where(modules.Contains).ToList();
        var choleskyClock = Stopwatch.StartNew();
        HessianFactor? factor;
        CholeskyResult failure;
        using (clock.Phase("cholesky")) factor = ObsRecalibrator.Factor(hessian, (int)Math.Sqrt(hessian.Length), options.Obs, out failure);
        double choleskyShare = choleskyClock.Elapsed.TotalSeconds / targets.Count;
        if (factor is null)
            throw new IrrException($"layer {layer}, {string.Join("/", targets)}: the Hessian is not positive definite even with {options.Obs.MaxDampingRetries} retries of 10× the damping ({failure})");
        foreach (string module in targets)
        {
            var moduleClock = Stopwatch.StartNew();
            string name = ModelConfig.LinearWeightName(layer, module);
            ObsResult result;
            using (clock.Phase("obs")) result = Realign(name, layer, module, factor, layerWeights, specs[name], work);
            var m = new ModuleReport(layer, module, result.Parameters, result.Conflicts, result.Removed, factor.Lambda, factor.PercDamp,
                factor.Retries, result.Error, moduleClock.Elapsed.TotalSeconds + choleskyShare);
            report.Modules.Add(m);
            progress?.Invoke(m);
        }
    }

    // A layer's worth of large arrays just became garbage; on a machine with free memory the GC would let the heap
    // grow by gigabytes before collecting, so collect (and compact) now.
    private static void CollectLayerGarbage()
    {
        System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
    }

    // One target matrix: Δ = W_F − W_A, the IRR step, and the new weight (rounded to the storage type) set in the layer.
    private ObsResult Realign(string name, int layer, string module, HessianFactor factor, ParameterSet layerWeights, TensorDType dtype, Workspace work)
    {
        var wf = layerWeights[name];
        var (v, f, rows, cols) = LoadMatrix(name, wf, ref work.Delta, ref work.Aligned, out var wa);
        var delta = work.Delta.AsSpan(0, wf.Length);                        // Δ: [rows, cols]
        if (work.Removed.Length < wf.Length) work.Removed = new bool[wf.Length];
        var removed = work.Removed.AsSpan(0, wf.Length);                    // R: [rows, cols]
        removed.Clear();
        var result = ObsRecalibrator.Apply(delta, rows, cols, factor, v, f, options.Obs, removed, new TargetMatrix(name, layer, module, rows, cols));
        if (result.Untouched) return result;                                // exactly θ_F
        var edited = new float[wf.Length];
        if (options.Obs.Recalibrate)
            TensorPrimitives.Add(wa, delta, edited);                        // W_A + Δ'
        else
            for (int i = 0; i < edited.Length; i++) edited[i] = removed[i] ? wa[i] : wf[i]; // θ_A where removed, θ_F elsewhere, exactly
        layerWeights.Set(name, Rounded(edited, dtype));
        return result;
    }

    // Δ = W_F − W_A (into `delta`, grown when too small), W_A (a view, or in `scratch`), v and F of a target (W_F given, or loaded), checked finite.
    private (float[] V, float[] F, int Rows, int Cols) LoadMatrix(string name, float[]? wf, ref float[] delta, ref float[] scratch, out ReadOnlySpan<float> wa)
    {
        var shape = config.ExpectedTensors().First(t => t.Name == name).Shape;
        int rows = (int)shape[0], cols = (int)shape[1];
        wa = aligned.Load(name, ref scratch);
        wf ??= LoadArray(finetuned, name);
        FloatChecks.RequireFinite(wa, name, "aligned model");
        FloatChecks.RequireFinite(wf, name, "fine-tuned model");
        if (delta.Length < wa.Length) delta = new float[wa.Length];
        TensorPrimitives.Subtract(wf, wa, delta.AsSpan(0, wa.Length));
        var v = safetyVector.ReadSingle(name);
        var f = fisher.ReadSingle(name);
        FloatChecks.RequireFinite(v, name, safetyVector.Path);
        FloatChecks.RequireFinite(f, name, fisher.Path);
        return (v, f, rows, cols);
    }

    // A tensor as a float32 array of its own (the source's buffer when it filled a fresh one; never mutated here).
    private static float[] LoadArray(IWeightSource source, string name)
    {
        float[] own = [];
        var span = source.Load(name, ref own);
        return own.Length == span.Length && span.Length > 0 && System.Runtime.CompilerServices.Unsafe.AreSame(
            ref System.Runtime.InteropServices.MemoryMarshal.GetReference(span), ref own[0]) ? own : span.ToArray();
    }

    private void EmitCopy(string name, Dictionary<string, TensorDType> specs, Action<string, float[]> emit)
    {
        var values = LoadArray(finetuned, name);
        FloatChecks.RequireFinite(values, name, "fine-tuned model");
        emit(name, Rounded(values, specs[name]));
    }

    // The values a float32 array has once stored as `dtype` (between layers the edited weights are cast
    // to the storage type before the layer is run again, as the reference stores them).
    internal static float[] Rounded(float[] values, TensorDType dtype)
    {
        if (dtype == TensorDType.F32) return values;
        var type = dtype.ToDType();
        var bytes = new byte[values.Length * dtype.SizeOf()];
        var result = new float[values.Length];
        DTypes.FromSingle(type, values, bytes);
        DTypes.ToSingle(type, bytes, result);
        return result;
    }

    /// <summary>
    /// Checks that a per-weight file keyed by Hugging Face names (a safety vector, a Fisher) has every target weight of
    /// <paramref name="modules"/> in every layer of <paramref name="config"/>, with the weight's shape and a float type.
    /// </summary>
    /// <param name="file">The file (read through <see cref="TensorNames"/>).</param>
    /// <param name="config">The model whose weights it must match.</param>
    /// <param name="modules">The target modules.</param>
    /// <param name="what">What the file is, for the message ("safety vector").</param>
    /// <exception cref="IrrException">A tensor is missing (the message names up to five), has another shape or a non-float type.</exception>
    internal static void CheckVectorFile(ITensorFile file, ModelConfig config, IReadOnlyList<string> modules, string what)
    {
        var shapes = config.ExpectedTensors().ToDictionary(t => t.Name, t => t.Shape);
        var missing = new List<string>();
        foreach (string name in TargetModules.WeightNames(config, modules))
        {
            if (!file.TryGetTensor(name, out var dtype, out var shape)) { missing.Add(name); continue; }
            if (!shape.SequenceEqual(shapes[name]))
                throw new IrrException($"{file.Path}: tensor '{name}' is [{string.Join(", ", shape)}] but the model's weight is [{string.Join(", ", shapes[name])}]");
            if (!dtype.IsFloatingSupported() && dtype != TensorDType.F64)
                throw new IrrException($"{file.Path}: tensor '{name}' has unsupported dtype {dtype}");
        }
        if (missing.Count > 0)
        {
            // Keys that are not Hugging Face names even once wrapper prefixes are removed (TensorNames): say what they look like.
            string? foreign = file.Tensors.Count > 0 && !file.Tensors.Any(t => shapes.ContainsKey(t.Name)) ? file.Tensors[0].Name : null;
            throw new IrrException($"{file.Path}: the {what} lacks {missing.Count} target weight{(missing.Count == 1 ? "" : "s")}: " +
                                   $"{string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? $" and {missing.Count - 5} more" : "")} " +
                                   (foreign is null ? "(was it computed for other --modules?)" : $"(none of its {file.Tensors.Count} keys, such as '{foreign}', is a tensor name of this model)"));
        }
    }
}
