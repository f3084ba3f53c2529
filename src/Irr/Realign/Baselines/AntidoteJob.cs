using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Irr.Data;
using Irr.IO;
using Irr.Jobs;
using Irr.Model;
using Irr.Tensors;
using Irr.Text;

namespace Irr.Realign.Baselines;

/// <summary>
/// The Antidote baseline as a job (<c>irr baseline antidote</c>; Huang et al., arXiv 2408.09600, code git-disl/Antidote):
/// one-shot pruning of the fine-tuned model's "harmful weights" with the Wanda score on harmful data
/// (<see cref="Antidote"/>). θ_F is run on the harmful records (prompt and harmful answer, the whole sequence) and each
/// target module's input X collected (the unpruned θ_F's activations, as the released code scores every layer before it
/// prunes any); then, per output row, the top ρ of the entries by |W_ij|·‖X_j‖₂ are set to zero. What is pruned is what the
/// released code prunes:
/// <list type="bullet">
/// <item>a full fine-tune (<see cref="WeightEditJob.Finetuned"/>, the code's <c>--full_finetuning True</c>): the entries of W_F itself;</item>
/// <item>a LoRA fine-tune (<see cref="WeightEditJob.Adapter"/>, the code's default): the entries of the adapter's factors, A [r, in] scored on
/// the module's input X and B [out, r] on its input A·X, then merged in float32: W = W_A + s·B'·A'.</item>
/// </list>
/// Every other tensor is θ_F's. Writes a complete model directory with <see cref="AntidoteReport.FileName"/> inside, atomically.
/// </summary>
[Job("baseline antidote", Help = "Antidote (Huang et al., arXiv 2408.09600): prune the fine-tuned weights of highest Wanda score |W|·‖X‖ on harmful data",
    Produces = ArtifactKind.Model)]
public sealed record AntidoteJob : WeightEditJob, IJob<AntidoteReport>, IWeightEditJob
{
    /// <summary>The released scripts' mask ratio for a LoRA fine-tune (antidote_poison_ratio.sh: dense_ratio=0.1).</summary>
    public const double LoraRatio = 0.1;

    /// <summary>The released scripts' mask ratio for a full fine-tune (antidote_poison_ratio_full.sh: dense_ratio=0.00001).</summary>
    public const double FullRatio = 1e-5;

    /// <summary>The harmful data the scores are computed on: harmful prompts with harmful answers (any record format of <c>docs/formats.md</c>).</summary>
    [Option("harmful prompts with harmful answers, for the Wanda scores: " + OptionHelp.Records, Kind = OptionKind.Input, HubFile = true, Required = true)]
    public required string Data { get; init; }

    /// <summary>ρ, the paper's mask ratio: the share of each row pruned; null: <see cref="LoraRatio"/> for an adapter, <see cref="FullRatio"/> for a full fine-tune.</summary>
    [Option("ρ: the share of each weight row pruned, highest scores first (default: 0.1 for --adapter, 1e-5 for --finetuned, as the released scripts)")]
    public double? MaskRatio { get; init; }

    /// <summary>Target modules, or null: the adapter's for <see cref="WeightEditJob.Adapter"/>, every linear module of the family otherwise.</summary>
    [Option("target modules: a comma-separated list or all (default: the adapter's targets for --adapter, all of the model's linear modules otherwise)", Parser = typeof(TargetModules.OptionParser))]
    public IReadOnlyList<string>? Modules { get; init; }

    /// <summary>Harmful records used (the first N; the released scripts use 2,000).</summary>
    [Option("harmful records used (the first N)", Name = "nsamples")]
    public int NSamples { get; init; } = 2000;

    /// <summary>Tokens kept per record.</summary>
    [Option("tokens kept per record", Name = "seqlen")]
    public int SeqLen { get; init; } = 512;

    /// <summary>The system prompt of the records: none, llama2 or literal text.</summary>
    [Option(OptionHelp.SystemPrompt)]
    public string SystemPrompt { get; init; } = "none";

    /// <summary>Tokenize the records' text as is, without the chat template (<see cref="PretrainedTokenizer.RawText"/>).</summary>
    [Option(OptionHelp.NoChatTemplate)]
    public bool NoChatTemplate { get; init; }

    /// <summary>The chat template's extra variables (<c>--template-arg KEY=VALUE</c>, <see cref="ChatTemplateOptions"/>).</summary>
    [Options]
    public ChatTemplateOptions Chat { get; init; } = new();

    /// <inheritdoc/>
    public string Command => "baseline antidote";

    /// <inheritdoc/>
    public IReadOnlyList<string> Inputs => Provenance.Given(Base, Finetuned ?? Adapter, Data);

    /// <summary>ρ as used: <see cref="MaskRatio"/>, or the released scripts' default for the kind of fine-tune.</summary>
    public double Ratio => MaskRatio ?? (Adapter is not null ? LoraRatio : FullRatio);

    /// <inheritdoc/>
    public void Validate()
    {
        WeightEdit.Validate(this, Modules);
        Chat.Validate(Command, NoChatTemplate);
        Validation.Require(MaskRatio is null or (>= 0 and <= 1), Command,
            $"mask-ratio must be between 0 and 1, not {MaskRatio?.ToString(CultureInfo.InvariantCulture)}");
        Validation.RequireAtLeast(Command, "nsamples", NSamples, 1);
        Validation.RequireAtLeast(Command, "seqlen", SeqLen, 1);
    }

    /// <summary>
    /// Scores θ_F's target weights on the harmful data, prunes the top ρ of each row and writes the model directory with
    /// its report. <paramref name="progress"/> advances per layer run, then per tensor written.
    /// </summary>
    /// <returns>Per pruned matrix, the entries pruned and the norm of the values removed.</returns>
    /// <exception cref="IrrException">
    /// An option is invalid; a model, the adapter or the data is missing or malformed; θ_A and θ_F differ in architecture;
    /// the data has no record; a weight or an input is not finite (the message names it); the output exists (without
    /// <see cref="WeightEditJob.Overwrite"/>) or is an input. Nothing is left at <see cref="WeightEditJob.OutputPath"/> then.
    /// </exception>
    public AntidoteReport Run(Action<JobProgress>? progress = null)
    {
        var clock = Stopwatch.StartNew();
        using var models = WeightEdit.Open(this);   // validated, a bad output refused before any work
        var (aligned, theta) = (models.Aligned, models.Theta);
        var config = theta.Config;
        var modules = TargetModules.For(config, Modules ?? (theta.Adapter is { } lora ? RealignJob.AdapterTargets(lora) : TargetModules.All));
        Architecture.RequireSame(aligned, theta, modules);
        var targets = TargetModules.WeightNames(config, modules)
            .Where(n => theta.Adapter is null || theta.Adapter.Pairs.ContainsKey(n)).ToHashSet(StringComparer.Ordinal);
        RealignJob.RequireAdapted(Command, theta.Adapter, config, modules);

        var (_, records) = RealignJob.EncodeRecords(Base, Finetuned, Adapter, config.VocabSize, NoChatTemplate, Chat, SystemPrompt, Data, NSamples, SeqLen);

        var scoring = ProgressStage.Start(progress, $"Wanda scores on {records.Count} harmful records", config.NumHiddenLayers, "layers");
        var inputs = new InputStatistics(theta, targets);
        long tokens = inputs.Collect(records, scoring.Advance);

        var dtype = TensorDTypes.ParseOutput(DType, Command);
        var report = new AntidoteReport { Tokens = tokens, Records = records.Count };
        double ratio = Ratio;
        float[] aScratch = [];
        WeightEdit.Write(this, theta, dtype, "pruning the top ρ by |W|·‖X‖", targets.Count, (name, wf, edited) =>
        {
            if (!targets.Contains(name)) return wf;
            var (layer, module) = TargetModules.Parse(config, name);
            FloatChecks.RequireFinite(wf, name, "fine-tuned model");
            var m = theta.Adapter?.Pairs[name] is { } pair
                ? PruneAdapter(pair, theta.Adapter, aligned.Load(name, ref aScratch), inputs, ratio, edited, layer, module)
                : PruneWeight(wf, inputs.Norms(name), ratio, edited, layer, module);
            report.Matrices.Add(m);
            return edited;
        }, AntidoteReport.FileName, () => report.ToJson(WeightEdit.ReportHeader(this, "antidote", modules, dtype), ratio, clock.Elapsed.TotalSeconds),
        () => ModelCardOf(modules), progress);
        return report;
    }

    /// <summary>The output's model card: θ_A as the base, ρ, the modules and the harmful data.</summary>
    public ModelCard ModelCardOf(IReadOnlyList<string> modules) =>
        WeightEdit.CardOf(this, "antidote", "Antidote, one-shot pruning of the fine-tuned weights of highest Wanda score on harmful data", "https://arxiv.org/abs/2408.09600",
            [("ρ (mask ratio)", Ratio.ToString("R", CultureInfo.InvariantCulture)), ("modules", string.Join(", ", modules)),
             ("harmful data", Path.GetFileName(Data)), ("harmful data SHA-256", ContentHash.Compute(Data))]);

    // A full fine-tune: W = W_F with the top ρ of each row by |W_F|·‖X‖ set to zero.
    private static AntidoteMatrix PruneWeight(ReadOnlySpan<float> wf, double[] norms, double ratio, Span<float> w, int layer, string module)
    {
        int cols = norms.Length, rows = wf.Length / cols;
        var pruned = new bool[wf.Length];                                                   // [rows, cols]
        wf.CopyTo(w);
        long count = Antidote.Mask(wf, rows, cols, norms, ratio, pruned);
        return new AntidoteMatrix(layer, module, wf.Length, count, Antidote.Prune(w, pruned));
    }

    // A LoRA fine-tune: A [r, in] pruned by |A|·‖X‖, B [out, r] by |B|·‖A·X‖, then W = W_A + s·B'·A' (float32, as the merge).
    private static AntidoteMatrix PruneAdapter(LoraPair pair, LoraAdapter adapter, ReadOnlySpan<float> wa, InputStatistics inputs, double ratio,
        Span<float> w, int layer, string module)
    {
        var a = adapter.File.ReadSingle(pair.A.Name);                                        // A: [r, in]
        var b = adapter.File.ReadSingle(pair.B.Name);                                        // B: [out, r]
        FloatChecks.RequireFinite(a, pair.A.Name, adapter.Path);
        FloatChecks.RequireFinite(b, pair.B.Name, adapter.Path);
        int r = pair.Rank, cols = a.Length / r, rows = b.Length / r;
        var prunedA = new bool[a.Length];
        var prunedB = new bool[b.Length];
        long count = Antidote.Mask(a, r, cols, inputs.Norms(pair.BaseWeight), ratio, prunedA)
                   + Antidote.Mask(b, rows, r, inputs.ProjectedNorms(pair.BaseWeight), ratio, prunedB);
        double normA = Antidote.Prune(a, prunedA), normB = Antidote.Prune(b, prunedB);
        wa.CopyTo(w);
        Gemm.Compute(Transpose.No, Transpose.No, rows, cols, r, (float)pair.Scale, b, r, a, cols, 1f, w, cols);   // W_A + s·B'·A'
        return new AntidoteMatrix(layer, module, a.Length + b.Length, count, Math.Sqrt(normA * normA + normB * normB));
    }

    // Σ_t x_tj² of every target module's input over the harmful data (and, for a LoRA module, Σ_t (A·x_t)_k², B's input),
    // from θ_F run layer by layer: one decoder layer's weights resident at a time, the hidden states of every record kept.
    private sealed class InputStatistics(CheckpointWeights theta, IReadOnlySet<string> targets)
    {
        private readonly Dictionary<string, double[]> squares = new(StringComparer.Ordinal);            // by weight: [in]
        private readonly Dictionary<string, double[]> projectedSquares = new(StringComparer.Ordinal);   // by weight: [r]
        private readonly Dictionary<string, float[]> loraA = new(StringComparer.Ordinal);               // by weight: A [r, in]

        public double[] Norms(string weight) => Antidote.Norms(squares[weight]);

        public double[] ProjectedNorms(string weight) => Antidote.Norms(projectedSquares[weight]);

        // Runs the records through θ_F (8 per batch); returns the tokens seen. `layerDone` after each layer.
        public long Collect(IReadOnlyList<int[]> records, Action<double, long> layerDone)
        {
            var config = theta.Config;
            foreach (var pair in theta.Adapter?.Pairs.Values.Where(p => targets.Contains(p.BaseWeight)) ?? [])
                loraA[pair.BaseWeight] = theta.Adapter!.File.ReadSingle(pair.A.Name);
            var chunks = records.Chunk(8).Select(c => Batch.Create(c.Select(s => (IReadOnlyList<int>)s).ToList())).ToList();
            var layerWeights = new ParameterSet(config, fallback: theta);
            var model = new Transformer(layerWeights);
            var hidden = chunks.Select(model.Embed).ToArray();                                  // [n_chunks][T_chunk, d]
            for (int layer = 0; layer < config.NumHiddenLayers; layer++)
            {
                Interruption.ThrowIfRequested();
                string prefix = $"model.layers.{layer}.";
                foreach (var t in config.ExpectedTensors().Where(t => t.Name.StartsWith(prefix, StringComparison.Ordinal)))
                {
                    float[] own = [];
                    layerWeights.Set(t.Name, theta.Load(t.Name, ref own).ToArray());
                }
                for (int c = 0; c < chunks.Count; c++) model.LayerForward(layer, hidden[c], chunks[c], Add);
                layerWeights.Clear();
                layerDone(1, 0);
            }
            foreach (var (name, sums) in squares.Concat(projectedSquares))
                if (sums.Any(s => !double.IsFinite(s)))
                    throw new IrrException($"{name}: its inputs on the harmful data are not finite (the model produces NaN or ∞ on them)");
            return chunks.Sum(b => (long)b.TokenCount);
        }

        // The hook: one module's input x [rows, cols] added to its sums.
        private void Add(int layer, string module, ReadOnlySpan<float> input, int rows, int cols)
        {
            string name = ModelConfig.LinearWeightName(layer, module);
            if (!targets.Contains(name)) return;
            if (!squares.TryGetValue(name, out var sums)) squares[name] = sums = new double[cols];
            Antidote.AddSquares(input, rows, cols, sums);
            if (!loraA.TryGetValue(name, out var a)) return;
            int r = a.Length / cols;
            if (!projectedSquares.TryGetValue(name, out var projected)) projectedSquares[name] = projected = new double[r];
            Antidote.AddProjectedSquares(input, rows, cols, a, r, projected);
        }
    }
}

/// <summary>What Antidote pruned in one target matrix.</summary>
/// <param name="Layer">Decoder layer.</param>
/// <param name="Module">q_proj …</param>
/// <param name="Parameters">Entries scored: out × in for a full fine-tune; r × in + out × r (A and B) for a LoRA one.</param>
/// <param name="Pruned">Entries set to zero.</param>
/// <param name="PrunedNorm">The Frobenius norm of the values set to zero.</param>
public sealed record AntidoteMatrix(int Layer, string Module, long Parameters, long Pruned, double PrunedNorm);

/// <summary>The result of Antidote: per pruned matrix, in checkpoint order.</summary>
public sealed class AntidoteReport
{
    /// <summary>The report's file name inside the output model directory.</summary>
    public const string FileName = "baseline-report.json";

    /// <summary>Per pruned matrix, in the order of the checkpoint.</summary>
    public List<AntidoteMatrix> Matrices { get; } = [];

    /// <summary>Harmful records the scores were computed on.</summary>
    public int Records { get; init; }

    /// <summary>Their tokens.</summary>
    public long Tokens { get; init; }

    /// <summary>Entries pruned over every matrix.</summary>
    public long Pruned => Matrices.Sum(m => m.Pruned);

    /// <summary>The report as JSON: the header, ρ, the data's size, per matrix, totals and the time.</summary>
    public JsonObject ToJson(JsonObject header, double ratio, double seconds)
    {
        var o = header.DeepClone().AsObject();
        o["mask_ratio"] = ratio;
        o["records"] = Records;
        o["tokens"] = Tokens;
        o["matrices"] = new JsonArray(Matrices.Select(m => (JsonNode?)new JsonObject
        {
            ["layer"] = m.Layer,
            ["module"] = m.Module,
            ["parameters"] = m.Parameters,
            ["pruned"] = m.Pruned,
            ["pruned_norm"] = m.PrunedNorm,
        }).ToArray());
        o["totals"] = new JsonObject
        {
            ["matrices"] = Matrices.Count,
            ["parameters"] = Matrices.Sum(m => m.Parameters),
            ["pruned"] = Pruned,
            ["pruned_norm"] = Math.Sqrt(Matrices.Sum(m => m.PrunedNorm * m.PrunedNorm)),
        };
        o["seconds"] = Math.Round(seconds, 3);
        return o;
    }
}
