using System.Numerics.Tensors;
using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Model;
using Irr.Tensors;

namespace Irr.Realign.Baselines;

/// <summary>Options of <see cref="SafeDelta"/>.</summary>
public sealed record SafeDeltaOptions
{
    /// <summary>s, the paper's scale of the per-block safety budget ε (the released code's <c>--scale</c>; its default 0.1).</summary>
    public double Scale { get; init; } = 0.1;

    /// <summary>Columns per block: the budget and the selection are per block (the released code's 2048).</summary>
    public int BlockSize { get; init; } = 2048;

    /// <summary>Damping as a fraction of mean(diag H) (the released code's 0.01).</summary>
    public double PercDamp { get; init; } = 0.01;

    /// <summary>Target modules, resolved by <see cref="TargetModules.For"/>.</summary>
    public IReadOnlyList<string> Modules { get; init; } = TargetModules.All;

    /// <summary>Storage type of the output; null keeps each tensor's type in the fine-tuned model.</summary>
    public TensorDType? OutputDType { get; init; }

    /// <summary>Safety sequences run through a layer at once (bounds the activation memory).</summary>
    public int CalibrationBatchSize { get; init; } = 8;
}

/// <summary>What Safe Delta did to one target matrix.</summary>
/// <param name="Layer">Decoder layer.</param>
/// <param name="Module">q_proj …</param>
/// <param name="Parameters">rows × cols.</param>
/// <param name="Kept">Fine-tuning deltas kept (the entry is W_F's); the others are W_A's, compensated.</param>
/// <param name="Budget">Σ over the matrix's blocks of the budget ε.</param>
/// <param name="Spent">Σ over the kept entries of their estimated safety loss δ²/[H⁻¹]_mm (on the compensated values).</param>
/// <param name="Lambda">The damping λ added to diag H.</param>
public sealed record SafeDeltaMatrix(int Layer, string Module, long Parameters, long Kept, double Budget, double Spent, double Lambda)
{
    /// <summary>Kept / Parameters.</summary>
    public double KeptShare => Parameters == 0 ? 0 : (double)Kept / Parameters;
}

/// <summary>
/// Safe Delta's choice of the fine-tuning deltas to keep in one block of columns (Lu et al., ICML 2025, arXiv 2505.12038,
/// as its released code computes it). Keeping the delta δ of entry (r, m) costs the safety loss
/// <c>δ²/[H⁻¹]_mm</c> (the OBS loss of moving that weight from the aligned value once the others compensate; with
/// U the upper Cholesky factor of H⁻¹, <c>[H⁻¹]_mm</c> is U_mm²). The entries are ranked by <c>1/[H⁻¹]_mm</c> (cheapest
/// columns first, rows in order inside a column: a stable sort of the row-major block), the last 15% of that order
/// are never kept, and the prefix whose summed loss stays within the budget
/// <c>ε = mean_m(1/[H⁻¹]_mm) · (s/2) · rows/hidden_size</c> is kept.
/// In <see cref="ObsRecalibrator"/>'s terms the block holds X = W − W_F, and a kept entry is a "removed" one (X → 0).
/// </summary>
/// <param name="factor">The factor of the matrix's Hessian (its diagonal gives U_mm).</param>
/// <param name="scale">s.</param>
/// <param name="hiddenSize">The model's hidden_size (the released code's constant 4096, Llama-2-7B's).</param>
public sealed class SafeDeltaSelection(HessianFactor factor, double scale, int hiddenSize) : IRemovalStrategy
{
    /// <summary>The share of the block's entries, those with the largest 1/[H⁻¹]_mm, never kept.</summary>
    public const double Excluded = 0.15;

    /// <summary>Σ of the budgets of the blocks chosen so far.</summary>
    public double Budget { get; private set; }

    /// <summary>Σ of the losses of the entries kept so far.</summary>
    public double Spent { get; private set; }

    /// <inheritdoc/>
    public string Name => "safedelta";

    /// <inheritdoc/>
    public JsonObject Describe() => new() { ["method"] = Name, ["scale"] = scale };

    /// <inheritdoc/>
    public void ChooseMask(in MaskBlock block, Span<bool> mask)
    {
        int rows = block.Matrix.Rows, n = block.Matrix.Columns, width = block.Width, start = block.Start;
        var importance = new double[width];                                  // 1/[H⁻¹]_mm = 1/U_mm², per column of the block
        for (int c = 0; c < width; c++)
        {
            double d = factor.U[(long)(start + c) * n + start + c];
            importance[c] = 1 / (d * d);
        }
        double epsilon = importance.Average() * (scale / 2) * rows / hiddenSize; // ε = mean(1/[H⁻¹]_mm) · s/2 · rows/hidden
        long candidates = (long)rows * width - (long)(Excluded * rows * width);  // numel − ⌊0.15·numel⌋
        var columns = Enumerable.Range(0, width).OrderBy(c => importance[c]).ToArray(); // stable: ties by column
        mask.Clear();
        Budget += epsilon;
        double spent = 0;
        long rank = 0;
        for (int g0 = 0; g0 < width;)
        {
            int g1 = g0 + 1;                                                 // columns of equal importance interleave by row
            while (g1 < width && importance[columns[g1]] == importance[columns[g0]]) g1++;
            for (int r = 0; r < rows; r++)
                for (int k = g0; k < g1; k++, rank++)
                {
                    int c = columns[k];
                    if (rank >= candidates) { Spent += spent; return; }
                    double x = block.Delta[r * n + start + c];
                    double loss = x * x * importance[c];                     // δ²/[H⁻¹]_mm
                    if (spent + loss > epsilon) { Spent += spent; return; }   // the cumulative sum passed ε
                    spent += loss;
                    mask[r * width + c] = true;
                }
            g0 = g1;
        }
        Spent += spent;
    }
}

/// <summary>
/// Safe Delta (Lu et al., "Safe Delta: Consistently Preserving Safety when Fine-Tuning LLMs on Diverse Datasets",
/// ICML 2025, arXiv 2505.12038): starting from the aligned weights W_A, keep the fine-tuning deltas Δ = W_F − W_A whose
/// estimated safety loss fits a per-block budget (<see cref="SafeDeltaSelection"/>), and compensate each kept delta with
/// the OBS update on the other aligned weights of its row, using the Hessians H = (2/N) Σ x xᵀ of each linear module's
/// inputs on safety data (harmful prompt → safe answer) run through θ_A. The compensation is SparseGPT's column-by-column
/// update (<see cref="ObsRecalibrator"/>) on X = W − W_F: a kept entry's X goes to 0 (W = W_F), its error X/U_mm spreads
/// over the columns to its right. Layer by layer, one decoder layer resident in float32.
/// </summary>
public static class SafeDelta
{
    /// <summary>
    /// One matrix: <paramref name="output"/> (rows × cols) receives W_F where a delta is kept and W_A plus its compensation
    /// elsewhere (exactly W_A where nothing was compensated). <paramref name="aligned"/> and <paramref name="finetuned"/> are W_A and W_F.
    /// </summary>
    public static SafeDeltaMatrix Apply(ReadOnlySpan<float> aligned, ReadOnlySpan<float> finetuned, Span<float> output, TargetMatrix matrix,
        HessianFactor factor, SafeDeltaOptions options, int hiddenSize)
    {
        int count = aligned.Length;
        var x = new float[count];                                           // X = W − W_F: [rows, cols]
        TensorPrimitives.Subtract(aligned, finetuned, x);
        var x0 = (float[])x.Clone();
        var kept = new bool[count];                                          // [rows, cols]
        var selection = new SafeDeltaSelection(factor, options.Scale, hiddenSize);
        var obs = new ObsOptions { Strategy = selection, BlockSize = options.BlockSize, PercDamp = options.PercDamp };
        // No safety vector or Fisher here: X stands in for both (no sign conflicts; the selection reads X only).
        ObsRecalibrator.Apply(x, matrix.Rows, matrix.Columns, factor, x, x, obs, kept, matrix);
        for (int i = 0; i < count; i++)
            output[i] = kept[i] ? finetuned[i] : x[i] == x0[i] ? aligned[i] : aligned[i] + (x[i] - x0[i]);
        return new SafeDeltaMatrix(matrix.Layer, matrix.Module, count, kept.Count(k => k), selection.Budget, selection.Spent, factor.Lambda);
    }

    /// <summary>
    /// Safe Delta on a whole model. <paramref name="safetyData"/> are the token sequences of the safety data (formatted and
    /// truncated); <paramref name="emit"/> receives every output tensor in <paramref name="finetuned"/>'s config order, as
    /// float32 rounded to its storage type; <paramref name="progress"/> is called after each target matrix.
    /// Non-target tensors are θ_F's.
    /// </summary>
    /// <exception cref="IrrException">No safety data; a weight or a Hessian is not finite; a Hessian cannot be factored.</exception>
    public static List<SafeDeltaMatrix> Run(IWeightSource aligned, IWeightSource finetuned, IReadOnlyList<int[]> safetyData, SafeDeltaOptions options,
        Action<string, float[]> emit, Action<SafeDeltaMatrix>? progress = null)
    {
        if (safetyData.Count == 0) throw new IrrException("no safety examples");
        var config = finetuned.Config;
        var modules = TargetModules.For(config, options.Modules);
        Architecture.RequireSame(aligned, finetuned, modules);
        var dtypes = config.ExpectedTensors().ToDictionary(t => t.Name, t => options.OutputDType ?? finetuned.StorageType(t.Name));
        var chunks = safetyData.Chunk(Math.Max(1, options.CalibrationBatchSize))
            .Select(c => Batch.Create(c.Select(s => (IReadOnlyList<int>)s).ToList())).ToList();
        long tokens = chunks.Sum(b => (long)b.TokenCount);
        var layerWeights = new ParameterSet(config, fallback: aligned);
        var model = new Transformer(layerWeights);                           // θ_A: the Hessians are the aligned model's
        float[][] hidden = chunks.Select(model.Embed).ToArray();             // [n_chunks][T_chunk, d]
        var groups = Realigner.InputGroups(config).Where(g => g.Any(modules.Contains)).ToList();
        var report = new List<SafeDeltaMatrix>();
        var order = config.ExpectedTensors().Select(t => t.Name).ToList();
        bool InLayers(string name) => name.StartsWith("model.layers.", StringComparison.Ordinal);
        int firstLayer = order.FindIndex(InLayers);
        foreach (string name in order.Take(firstLayer).Where(n => !InLayers(n))) emit(name, Stored(finetuned, name, dtypes[name]));
        for (int layer = 0; layer < config.NumHiddenLayers; layer++)
        {
            Interruption.ThrowIfRequested();
            string prefix = $"model.layers.{layer}.";
            var names = config.ExpectedTensors().Select(t => t.Name).Where(n => n.StartsWith(prefix, StringComparison.Ordinal)).ToList();
            foreach (string name in names) layerWeights.Set(name, Finite(aligned, name, "aligned model"));
            var hessians = LayerHessians(model, layer, hidden, chunks, groups, tokens);   // [n_groups][d_in, d_in], θ_A's next inputs in hidden
            for (int g = 0; g < groups.Count; g++)
            {
                int cols = (int)Math.Sqrt(hessians[g].Length);
                var damping = new ObsOptions { PercDamp = options.PercDamp };
                var factor = ObsRecalibrator.Factor(hessians[g], cols, damping, out var failure)
                    ?? throw new IrrException($"layer {layer}, {string.Join("/", groups[g])}: the Hessian of the safety data is not positive definite even with {damping.MaxDampingRetries} retries of 10× the damping ({failure})");
                foreach (string module in groups[g].Where(modules.Contains))
                {
                    string name = ModelConfig.LinearWeightName(layer, module);
                    var wa = layerWeights[name];
                    var wf = Finite(finetuned, name, "fine-tuned model");
                    var matrix = new TargetMatrix(name, layer, module, wf.Length / cols, cols);
                    var w = new float[wf.Length];                                  // the output: [rows, cols]
                    var m = Apply(wa, wf, w, matrix, factor, options, config.HiddenSize);
                    layerWeights.Set(name, w);                                 // until written below
                    report.Add(m);
                    progress?.Invoke(m);
                }
            }
            foreach (string name in names)
                emit(name, modules.Any(m => name == ModelConfig.LinearWeightName(layer, m))
                    ? Realigner.Rounded(layerWeights[name], dtypes[name]) : Stored(finetuned, name, dtypes[name]));
            layerWeights.Clear();
        }
        foreach (string name in order.Skip(firstLayer).Where(n => !InLayers(n))) emit(name, Stored(finetuned, name, dtypes[name]));
        return report;
    }

    // θ_A's layer on every chunk (in place: the next layer's inputs), with H = (2/N) Σ x xᵀ of each group's input, checked finite.
    private static float[][] LayerHessians(Transformer model, int layer, float[][] hidden, List<Batch> chunks, List<string[]> groups, long tokens)
    {
        var byModule = new Dictionary<string, int>();
        for (int g = 0; g < groups.Count; g++) byModule[groups[g][0]] = g;
        var hessians = new float[groups.Count][];
        for (int c = 0; c < chunks.Count; c++)
            model.LayerForward(layer, hidden[c], chunks[c], (_, module, input, rows, cols) =>
            {
                if (byModule.TryGetValue(module, out int g)) Syrk.AddXtX(input, rows, cols, 1f, hessians[g] ??= new float[cols * cols]);
            });
        for (int g = 0; g < groups.Count; g++)
        {
            TensorPrimitives.Multiply(hessians[g], 2f / tokens, hessians[g]);
            if (FloatChecks.FirstNonFinite(hessians[g]) >= 0)
                throw new IrrException($"layer {layer}: the safety data's inputs of {string.Join("/", groups[g])} are not finite (the aligned model produces NaN or ∞ on them)");
        }
        return hessians;
    }

    private static float[] Finite(IWeightSource source, string name, string what)
    {
        float[] own = [];
        var values = source.Load(name, ref own).ToArray();
        FloatChecks.RequireFinite(values, name, what);
        return values;
    }

    private static float[] Stored(IWeightSource source, string name, TensorDType dtype) => Realigner.Rounded(Finite(source, name, "fine-tuned model"), dtype);
}
