using System.Numerics.Tensors;
using Irr.IO;

namespace Irr.Model;

/// <summary>One training example: its tokens and labels (−100 where no loss is taken).</summary>
/// <param name="Tokens">Token ids.</param>
/// <param name="Labels">Labels aligned with the tokens, as in Hugging Face.</param>
public sealed record TrainingExample(int[] Tokens, int[] Labels);

/// <summary>Learning-rate schedule after the warm-up.</summary>
public enum LearningRateSchedule
{
    /// <summary>Half a cosine from the peak down to 0 (transformers' "cosine").</summary>
    Cosine,
    /// <summary>Straight line from the peak down to 0 (transformers' "linear").</summary>
    Linear,
    /// <summary>The peak throughout.</summary>
    Constant,
}

/// <summary>Hyper-parameters of <see cref="Trainer"/>, with Hugging Face Trainer's defaults where it has them.</summary>
public sealed record TrainingOptions
{
    /// <summary>Passes over the data.</summary>
    public int Epochs { get; init; } = 1;

    /// <summary>Peak learning rate.</summary>
    public double LearningRate { get; init; } = 5e-5;

    /// <summary>Examples per micro-batch (packed, no padding).</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>Micro-batches per optimizer step.</summary>
    public int GradientAccumulationSteps { get; init; } = 1;

    /// <summary>Decoupled weight decay (AdamW), applied to matrices only, not to norms or biases.</summary>
    public double WeightDecay { get; init; }

    /// <summary>Adam β₁.</summary>
    public double Beta1 { get; init; } = 0.9;

    /// <summary>Adam β₂.</summary>
    public double Beta2 { get; init; } = 0.999;

    /// <summary>Adam ε.</summary>
    public double Epsilon { get; init; } = 1e-8;

    /// <summary>Clip the global gradient norm to this (0 = no clipping).</summary>
    public double MaxGradNorm { get; init; } = 1.0;

    /// <summary>Fraction of the optimizer steps spent warming up linearly from 0.</summary>
    public double WarmupRatio { get; init; }

    /// <summary>The decay after warm-up.</summary>
    public LearningRateSchedule Schedule { get; init; } = LearningRateSchedule.Linear;

    /// <summary>Seed of the data order (and of new LoRA matrices).</summary>
    public int Seed { get; init; } = 42;

    /// <summary>Shuffle the examples each epoch.</summary>
    public bool Shuffle { get; init; } = true;
}

/// <summary>Progress after an optimizer step.</summary>
/// <param name="Step">Optimizer steps done.</param>
/// <param name="TotalSteps">Optimizer steps in the run.</param>
/// <param name="Epoch">Current epoch (0-based).</param>
/// <param name="Loss">Mean loss over the step's labelled tokens.</param>
/// <param name="LearningRate">The learning rate used.</param>
/// <param name="GradNorm">Global gradient norm before clipping.</param>
/// <param name="Tokens">Tokens processed in the step.</param>
public sealed record TrainingProgress(int Step, int TotalSteps, int Epoch, double Loss, double LearningRate, double GradNorm, int Tokens);

/// <summary>
/// Fine-tuning with AdamW (PyTorch's formula, decoupled weight decay), linear warm-up then cosine or
/// linear decay, global-norm gradient clipping and gradient accumulation, on either every weight of
/// a resident <see cref="ParameterSet"/> (full fine-tuning) or the LoRA matrices of the model.
/// Micro-batches in an accumulation window are weighted by their labelled tokens, so a step's
/// gradient is that of the mean loss over all its labelled tokens. Results depend only on the seed:
/// the matrix kernels give the same bits for any thread count.
/// </summary>
public sealed class Trainer
{
    private readonly Transformer model;
    private readonly List<(string Name, float[] Values, bool Decay)> parameters = [];
    private readonly Dictionary<string, (float[] M, float[] V)> moments = new(StringComparer.Ordinal);
    private readonly Gradients gradients;
    private int step;

    /// <summary>
    /// Trains <paramref name="model"/>: its LoRA matrices if it has them, else every tensor of its
    /// weights (or those <paramref name="trainable"/> accepts; the others stay frozen and get no gradient),
    /// which must then be a resident <see cref="ParameterSet"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The weights are streamed, or <paramref name="trainable"/> accepts no tensor.</exception>
    public Trainer(Transformer model, Func<string, bool>? trainable = null)
    {
        this.model = model;
        if (model.Lora is { } lora)
        {
            foreach (var (name, values) in lora.Parameters()) parameters.Add((name, values, true));
            gradients = lora.CreateGradients();
        }
        else if (model.Weights is ParameterSet set)
        {
            foreach (var (name, shape) in model.Config.ExpectedTensors())
                if (trainable?.Invoke(name) ?? true) parameters.Add((name, set[name], shape.Length == 2));
            if (parameters.Count == 0) throw new ArgumentException("No tensor of the model is trainable.", nameof(trainable));
            gradients = Gradients.For(model.Config, parameters.Select(p => p.Name));
        }
        else
        {
            throw new ArgumentException("Full fine-tuning needs resident weights (a ParameterSet); use LoRA to train on streamed weights.", nameof(model));
        }
        foreach (var p in parameters) moments[p.Name] = (new float[p.Values.Length], new float[p.Values.Length]);
    }

    /// <summary>The learning rate at optimizer step <paramref name="step"/> (0-based) of <paramref name="total"/>.</summary>
    public static double LearningRateAt(int step, int total, TrainingOptions o)
    {
        int warmup = (int)Math.Ceiling(o.WarmupRatio * total);
        if (step < warmup) return o.LearningRate * step / Math.Max(1, warmup);
        double progress = (double)(step - warmup) / Math.Max(1, total - warmup);
        return o.Schedule switch
        {
            LearningRateSchedule.Cosine => o.LearningRate * 0.5 * (1 + Math.Cos(Math.PI * progress)),
            LearningRateSchedule.Linear => o.LearningRate * Math.Max(0, 1 - progress),
            _ => o.LearningRate,
        };
    }

    /// <summary>Optimizer steps a run over <paramref name="examples"/> examples takes.</summary>
    public static int TotalSteps(int examples, TrainingOptions o) =>
        o.Epochs * (int)Math.Ceiling(Math.Ceiling((double)examples / o.BatchSize) / o.GradientAccumulationSteps);

    /// <summary>Runs the training; <paramref name="progress"/> is called after every optimizer step.</summary>
    public void Train(IReadOnlyList<TrainingExample> examples, TrainingOptions options, Action<TrainingProgress>? progress = null)
    {
        if (examples.Count == 0) throw new IrrException("no training examples");
        if (options.BatchSize < 1 || options.GradientAccumulationSteps < 1 || options.Epochs < 1)
            throw new ArgumentOutOfRangeException(nameof(options), "Epochs, batch size and accumulation steps must be at least 1.");
        int total = TotalSteps(examples.Count, options);
        var rng = new Random(options.Seed);
        for (int epoch = 0; epoch < options.Epochs; epoch++)
        {
            var order = Enumerable.Range(0, examples.Count).ToArray();
            if (options.Shuffle) rng.Shuffle(order);
            var microBatches = order.Chunk(options.BatchSize).ToList();
            foreach (var window in microBatches.Chunk(options.GradientAccumulationSteps))
            {
                Interruption.ThrowIfRequested(); // a stop ends between optimizer steps
                int labelled = window.Sum(mb => mb.Sum(i => CountTargets(examples[i])));
                gradients.Clear();
                double lossSum = 0;
                int tokens = 0;
                foreach (var mb in window)
                {
                    var batch = Batch.Create(mb.Select(i => (IReadOnlyList<int>)examples[i].Tokens).ToList(), mb.Select(i => (IReadOnlyList<int>)examples[i].Labels).ToList());
                    tokens += batch.TokenCount;
                    int n = mb.Sum(i => CountTargets(examples[i]));
                    if (n == 0) continue;
                    var result = model.ForwardBackward(batch, gradients, (float)n / labelled);
                    lossSum += result.Loss * n;
                }
                double lr = LearningRateAt(step, total, options);
                double norm = Step(lr, options);
                progress?.Invoke(new TrainingProgress(step, total, epoch, labelled > 0 ? lossSum / labelled : double.NaN, lr, norm, tokens));
            }
        }
    }

    // One AdamW update (torch.optim.AdamW):  p ← p·(1 − lr·wd);  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;
    //   p ← p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε).  Returns the gradient norm before clipping.
    private double Step(double lr, TrainingOptions o)
    {
        double norm = gradients.GlobalNorm();
        float clip = o.MaxGradNorm > 0 && norm > o.MaxGradNorm ? (float)(o.MaxGradNorm / (norm + 1e-6)) : 1f;
        step++;
        foreach (var (name, p, decay) in parameters)
        {
            var g = gradients[name];
            if (clip != 1f) TensorPrimitives.Multiply(g, clip, g);
            var (m, v) = moments[name];
            AdamW(p, g, m, v, step, lr, o, decay);
        }
        return norm;
    }

    /// <summary>One AdamW update of <paramref name="p"/> at optimizer step <paramref name="t"/> (1-based).</summary>
    internal static void AdamW(Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v, int t, double lr, TrainingOptions o, bool decay)
    {
        double bc1 = 1 - Math.Pow(o.Beta1, t), bc2 = 1 - Math.Pow(o.Beta2, t);
        // As PyTorch: the scalars (1 − β) and lr/(1 − β₁ᵗ) are formed in double, then used in float32.
        float b1 = (float)o.Beta1, b2 = (float)o.Beta2, c1 = (float)(1 - o.Beta1), c2 = (float)(1 - o.Beta2);
        float stepSize = (float)(lr / bc1), sqrtBc2 = (float)Math.Sqrt(bc2), eps = (float)o.Epsilon;
        if (decay && o.WeightDecay > 0) TensorPrimitives.Multiply(p, (float)(1 - lr * o.WeightDecay), p);
        for (int i = 0; i < p.Length; i++)
        {
            float gi = g[i];
            m[i] = b1 * m[i] + c1 * gi;
            v[i] = b2 * v[i] + c2 * gi * gi;
            p[i] -= stepSize * m[i] / (MathF.Sqrt(v[i]) / sqrtBc2 + eps);
        }
    }

    private static int CountTargets(TrainingExample e)
    {
        int n = 0;
        for (int t = 1; t < e.Labels.Length; t++) if (e.Labels[t] != -100) n++;
        return n;
    }
}
