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
    /// <summary>Target modules M.</summary>
    public IReadOnlyList<string> Modules { get; init; } = TargetModules.All;

    /// <summary>The per-matrix step's options (method, sparsity, block size, damping, recalibration).</summary>
    public ObsOptions Obs { get; init; } = new();

    /// <summary>Storage type of the output; null keeps each tensor's type in the fine-tuned model.</summary>
    public TensorDType? OutputDType { get; init; }

    /// <summary>Calibration sequences run through a layer at once (bounds the activation memory).</summary>
    public int CalibrationBatchSize { get; init; } = 8;
}

/// <summary>What realignment did to one target matrix.</summary>
/// <param name="Layer">Decoder layer.</param>
/// <param name="Module">q_proj …</param>
/// <param name="Parameters">Entries of the matrix.</param>
/// <param name="Conflicts">Deltas whose sign conflicted with the safety vector (per block, on compensated values).</param>
/// <param name="Removed">Deltas removed.</param>
/// <param name="Lambda">Damping λ added to diag H (NaN in a dry run).</param>
/// <param name="PercDamp">percdamp that gave λ, after retries.</param>
/// <param name="DampingRetries">Failed Cholesky factorisations before λ worked.</param>
/// <param name="ObsError">SparseGPT's loss Σ e²/2 (0 in a dry run).</param>
/// <param name="Seconds">Time for this matrix (its share of the factorisation included).</param>
public sealed record ModuleReport(int Layer, string Module, long Parameters, long Conflicts, long Removed,
    double Lambda, double PercDamp, int DampingRetries, double ObsError, double Seconds)
{
    /// <summary>Removed as a percentage of the parameters.</summary>
    public double RemovedPercent => Parameters == 0 ? 0 : 100.0 * Removed / Parameters;
}

/// <summary>The result of a realignment: per module, and the time of each phase.</summary>
public sealed class RealignReport
{
    /// <summary>Per target matrix, in layer order.</summary>
    public List<ModuleReport> Modules { get; } = [];

    /// <summary>Seconds per phase: load, forward, hessian, cholesky, obs, write.</summary>
    public Dictionary<string, double> PhaseSeconds { get; } = new() { ["load"] = 0, ["forward"] = 0, ["hessian"] = 0, ["cholesky"] = 0, ["obs"] = 0, ["write"] = 0 };

    /// <summary>Calibration tokens (N).</summary>
    public long CalibrationTokens { get; set; }

    /// <summary>Whether this was identification only.</summary>
    public bool DryRun { get; set; }

    /// <summary>The report's file name inside a realigned model directory.</summary>
    public const string FileName = "irr-report.json";

    /// <summary>The report as JSON: the header (inputs, options), per layer and module, totals and phase times.</summary>
    public JsonObject ToJson(JsonObject header, double seconds)
    {
        var o = header.DeepClone().AsObject();
        o["dry_run"] = DryRun;
        o["calibration_tokens"] = CalibrationTokens;
        var layers = new JsonArray();
        foreach (var group in Modules.GroupBy(m => m.Layer))
        {
            layers.Add(new JsonObject
            {
                ["layer"] = group.Key,
                ["seconds"] = group.Sum(m => m.Seconds),
                ["modules"] = new JsonArray(group.Select(m => (JsonNode?)new JsonObject
                {
                    ["module"] = m.Module,
                    ["parameters"] = m.Parameters,
                    ["conflicts"] = m.Conflicts,
                    ["removed"] = m.Removed,
                    ["removed_percent"] = Math.Round(m.RemovedPercent, 4),
                    ["damping"] = double.IsNaN(m.Lambda) ? null : m.Lambda,
                    ["percdamp"] = double.IsNaN(m.PercDamp) ? null : m.PercDamp,
                    ["damping_retries"] = m.DampingRetries,
                    ["obs_error"] = m.ObsError,
                    ["seconds"] = Math.Round(m.Seconds, 4),
                }).ToArray()),
            });
        }
        o["layers"] = layers;
        long parameters = Modules.Sum(m => m.Parameters), removed = Modules.Sum(m => m.Removed);
        o["totals"] = new JsonObject
        {
            ["modules"] = Modules.Count,
            ["parameters"] = parameters,
            ["conflicts"] = Modules.Sum(m => m.Conflicts),
            ["removed"] = removed,
            ["removed_percent"] = parameters == 0 ? 0 : Math.Round(100.0 * removed / parameters, 4),
            ["obs_error"] = Modules.Sum(m => m.ObsError),
            ["damping_retries"] = Modules.Sum(m => m.DampingRetries),
        };
        o["phase_seconds"] = new JsonObject(PhaseSeconds.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)Math.Round(kv.Value, 3))));
        o["seconds"] = Math.Round(seconds, 3);
        return o;
    }

    /// <summary>
    /// Reads a report written by <see cref="ToJson"/> (an <c>irr-report.json</c>): per module the layer, module and
    /// <c>removed</c> are required, the other figures default to 0 (damping and percdamp to NaN) when absent, so a
    /// hand-written list of removal counts reads too.
    /// </summary>
    /// <exception cref="IrrException">The file is missing or is not a realignment report.</exception>
    public static RealignReport Load(string path)
    {
        string name = System.IO.Path.GetFileName(path);
        if (!File.Exists(path)) throw new IrrException($"{name}: file not found ({path})");
        using var doc = JsonCursor.Parse(BoundedText.Read(path), name);
        var root = JsonCursor.Root(doc, name);
        var report = new RealignReport { DryRun = root.Bool("dry_run", false), CalibrationTokens = (long)(root.GetNonNull("calibration_tokens")?.AsDouble() ?? 0) };
        double Number(JsonCursor c, string key, double fallback) => c.GetNonNull(key)?.AsDouble() ?? fallback;
        foreach (var layer in root.Required("layers").Items())
        {
            int l = layer.Required("layer").AsInt();
            foreach (var m in layer.Required("modules").Items())
                report.Modules.Add(new ModuleReport(l, m.Required("module").AsString(), (long)Number(m, "parameters", 0), (long)Number(m, "conflicts", 0),
                    (long)m.Required("removed").AsDouble(), Number(m, "damping", double.NaN), Number(m, "percdamp", double.NaN),
                    m.Int("damping_retries", 0), Number(m, "obs_error", 0), Number(m, "seconds", 0)));
        }
        if (root.GetNonNull("phase_seconds") is { } phases)
            foreach (var (key, value) in phases.Properties()) report.PhaseSeconds[key] = value.AsDouble();
        return report;
    }
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

    // The linear modules that read the same input: q/k/v the normed hidden state, gate/up the post-attention one.
    private static readonly string[][] InputGroups = [["q_proj", "k_proj", "v_proj"], ["o_proj"], ["gate_proj", "up_proj"], ["down_proj"]];

    /// <summary>θ_A, θ_F (a model, or θ_A with a LoRA adapter), the safety vector and the Fisher, checked against each other.</summary>
    public Realigner(IWeightSource aligned, IWeightSource finetuned, ITensorFile safetyVector, ITensorFile fisher, RealignOptions options)
    {
        this.aligned = aligned;
        this.finetuned = finetuned;
        this.safetyVector = safetyVector;
        this.fisher = fisher;
        this.options = options;
        config = finetuned.Config;
        Architecture.RequireSame(aligned, finetuned, options.Modules);
        CheckVectorFile(safetyVector, config, options.Modules, "safety vector");
        CheckVectorFile(fisher, config, options.Modules, "Fisher");
    }

    /// <summary>The tensors of the output model, in order, with their storage types.</summary>
    public IReadOnlyList<TensorSpec> OutputSpecs() =>
        config.ExpectedTensors().Select(t => new TensorSpec(t.Name, options.OutputDType ?? finetuned.StorageType(t.Name), t.Shape)).ToList();

    /// <summary>Identification only: per target matrix, the conflicts and the removals the rule picks on the uncompensated deltas.</summary>
    public RealignReport Identify(Action<ModuleReport>? progress = null)
    {
        var report = new RealignReport { DryRun = true };
        foreach (string name in TargetModules.WeightNames(config, options.Modules))
        {
            var clock = Stopwatch.StartNew();
            var (layer, module) = TargetModules.Parse(config, name);
            var (delta, v, fi, rows, cols) = LoadMatrix(name, null, out _);
            var (conflicts, removed) = ObsRecalibrator.Identify(delta, rows, cols, v, fi, options.Obs, new TargetMatrix(name, layer, module, rows, cols));
            var m = new ModuleReport(layer, module, (long)rows * cols, conflicts, removed, double.NaN, double.NaN, 0, 0, clock.Elapsed.TotalSeconds);
            report.Modules.Add(m);
            progress?.Invoke(m);
        }
        return report;
    }

    /// <summary>
    /// Realigns the model. <paramref name="calibration"/> are the token sequences of the calibration set
    /// (already formatted and truncated); <paramref name="emit"/> receives every output tensor, in
    /// <see cref="OutputSpecs"/> order, as float32 values already rounded to the output storage type;
    /// <paramref name="progress"/> is called after each target matrix.
    /// </summary>
    public RealignReport Run(IReadOnlyList<int[]> calibration, Action<string, float[]> emit, Action<ModuleReport>? progress = null)
    {
        if (calibration.Count == 0) throw new IrrException("no calibration examples");
        var report = new RealignReport();
        var phases = report.PhaseSeconds;
        var clock = new Stopwatch();
        void Phase(string name, Action action)
        {
            clock.Restart();
            action();
            phases[name] += clock.Elapsed.TotalSeconds;
        }

        var specs = OutputSpecs().ToDictionary(s => s.Name, s => s.DType);
        var chunks = calibration.Chunk(Math.Max(1, options.CalibrationBatchSize))
            .Select(c => Batch.Create(c.Select(s => (IReadOnlyList<int>)s).ToList())).ToList();
        report.CalibrationTokens = chunks.Sum(b => (long)b.TokenCount);
        var hidden = new List<float[]>();
        var embedder = new Transformer(finetuned);
        Phase("forward", () => hidden.AddRange(chunks.Select(embedder.Embed)));
        Phase("write", () => EmitCopy("model.embed_tokens.weight", specs, emit));

        var layerWeights = new ParameterSet(config, fallback: finetuned);
        var model = new Transformer(layerWeights);
        var targets = options.Modules.ToHashSet();
        for (int layer = 0; layer < config.NumHiddenLayers; layer++)
        {
            Interruption.ThrowIfRequested(); // a stop ends between layers (and at every kernel)
            // This layer's weights from θ_F, resident in float32 while it is realigned.
            string prefix = $"model.layers.{layer}.";
            var layerNames = config.ExpectedTensors().Select(t => t.Name).Where(n => n.StartsWith(prefix, StringComparison.Ordinal)).ToList();
            Phase("load", () =>
            {
                foreach (string name in layerNames)
                {
                    var values = LoadArray(finetuned, name);
                    FloatChecks.RequireFinite(values, name, "fine-tuned model");
                    layerWeights.Set(name, values);
                }
            });

            // Hessians of the inputs the target modules read, from the layer before any edit: H = (2/N) Σ x xᵀ.
            var groups = InputGroups.Where(g => g.Any(targets.Contains)).ToList();
            string lastInput = groups[^1][^1]; // the first pass only needs the module inputs: it stops there
            var hessians = groups.ToDictionary(g => g[0], g => (float[]?)null);
            long tokens = 0;
            double hessianSeconds = 0;
            var hessianClock = new Stopwatch();
            Phase("forward", () =>
            {
                for (int c = 0; c < chunks.Count; c++)
                {
                    var x = (float[])hidden[c].Clone(); // the inputs stay for the second pass
                    model.LayerForward(layer, x, chunks[c], (l, module, input, rows, cols) =>
                    {
                        if (!hessians.ContainsKey(module)) return;
                        hessianClock.Restart();
                        var h = hessians[module] ??= new float[cols * cols];
                        Syrk.AddXtX(input, rows, cols, 1f, h);
                        hessianSeconds += hessianClock.Elapsed.TotalSeconds;
                    }, stopAfter: lastInput);
                    tokens += chunks[c].TokenCount;
                }
            });
            phases["forward"] -= hessianSeconds;
            phases["hessian"] += hessianSeconds;

            foreach (var group in groups)
            {
                var h = hessians[group[0]]!;
                TensorPrimitives.Multiply(h, 2f / tokens, h);
                if (FloatChecks.FirstNonFinite(h) >= 0)
                    throw new IrrException($"layer {layer}: the calibration inputs of {string.Join("/", group)} are not finite (the model produces NaN or ∞ on the calibration data)");
                HessianFactor? factor = null;
                var failure = CholeskyResult.Ok;
                double choleskySeconds = 0;
                Phase("cholesky", () =>
                {
                    var c = Stopwatch.StartNew();
                    factor = ObsRecalibrator.Factor(h, (int)Math.Sqrt(h.Length), options.Obs, out failure);
                    choleskySeconds = c.Elapsed.TotalSeconds;
                });
                hessians[group[0]] = null;
                var modules = group.Where(targets.Contains).ToList();
                if (factor is null)
                    throw new IrrException($"layer {layer}, {string.Join("/", modules)}: the Hessian is not positive definite even with {options.Obs.MaxDampingRetries} retries of 10× the damping ({failure})");
                foreach (string module in modules)
                {
                    var moduleClock = Stopwatch.StartNew();
                    string name = ModelConfig.LinearWeightName(layer, module);
                    ObsResult result = default!;
                    float[] edited = [];
                    Phase("obs", () => (result, edited) = Realign(name, layer, module, factor, layerWeights[name], specs[name]));
                    layerWeights.Set(name, edited);
                    var m = new ModuleReport(layer, module, result.Parameters, result.Conflicts, result.Removed, factor.Lambda, factor.PercDamp,
                        factor.Retries, result.Error, moduleClock.Elapsed.TotalSeconds + choleskySeconds / modules.Count);
                    report.Modules.Add(m);
                    progress?.Invoke(m);
                }
            }

            // The realigned layer produces the next layer's inputs.
            Phase("forward", () =>
            {
                for (int c = 0; c < chunks.Count; c++) model.LayerForward(layer, hidden[c], chunks[c]);
            });
            Phase("write", () =>
            {
                foreach (string name in layerNames) emit(name, Rounded(layerWeights[name], specs[name]));
            });
            layerWeights.Clear();
            // A layer's worth of large arrays just became garbage; on a machine with free memory the GC
            // would let the heap grow by gigabytes before collecting, so collect (and compact) now.
            System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        }
        Phase("write", () =>
        {
            foreach (var spec in OutputSpecs().Where(s => !s.Name.StartsWith("model.layers.", StringComparison.Ordinal) && s.Name != "model.embed_tokens.weight"))
                EmitCopy(spec.Name, specs, emit);
        });
        return report;
    }

    // One target matrix: Δ = W_F − W_A, the IRR step, and the new weight (rounded to the storage type).
    private (ObsResult, float[]) Realign(string name, int layer, string module, HessianFactor factor, float[] wf, TensorDType dtype)
    {
        var (delta, v, f, rows, cols) = LoadMatrix(name, wf, out var wa);
        var removed = new bool[delta.Length];
        var result = ObsRecalibrator.Apply(delta, rows, cols, factor, v, f, options.Obs, removed, new TargetMatrix(name, layer, module, rows, cols));
        if (result.Untouched) return (result, wf);                         // exactly θ_F
        var edited = new float[delta.Length];
        if (options.Obs.Recalibrate)
            TensorPrimitives.Add(wa, delta, edited);                       // W_A + Δ'
        else
            for (int i = 0; i < edited.Length; i++) edited[i] = removed[i] ? wa[i] : wf[i]; // θ_A where removed, θ_F elsewhere, exactly
        return (result, Rounded(edited, dtype));
    }

    // Δ = W_F − W_A, v and F of a target (W_F given, or loaded), checked finite.
    private (float[] Delta, float[] V, float[] F, int Rows, int Cols) LoadMatrix(string name, float[]? wf, out float[] wa)
    {
        var shape = config.ExpectedTensors().First(t => t.Name == name).Shape;
        int rows = (int)shape[0], cols = (int)shape[1];
        wa = LoadArray(aligned, name);
        wf ??= LoadArray(finetuned, name);
        FloatChecks.RequireFinite(wa, name, "aligned model");
        FloatChecks.RequireFinite(wf, name, "fine-tuned model");
        var delta = new float[wa.Length];
        TensorPrimitives.Subtract(wf, wa, delta);
        var v = safetyVector.ReadSingle(name);
        var f = fisher.ReadSingle(name);
        FloatChecks.RequireFinite(v, name, safetyVector.Path);
        FloatChecks.RequireFinite(f, name, fisher.Path);
        return (delta, v, f, rows, cols);
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
    private static float[] Rounded(float[] values, TensorDType dtype)
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
