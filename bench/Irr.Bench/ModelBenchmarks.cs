using System.Diagnostics;
using Irr.IO;
using Irr.Model;
using Irr.Tensors;

namespace Irr.Bench;

/// <summary>
/// Transformer throughput and memory:
///   model --preset 125m   forward and forward+backward of random ~134M-parameter Llama-shaped weights
///                         (resident), batches of --batch sequences of --tokens tokens; compared with
///                         the rate a square GEMM measured in the same run implies (2·params FLOPs/token)
///   model --preset 7b     a forward pass of --tokens tokens over a Llama-2-7B-shaped bf16 checkpoint
///                         streamed from disk (made once in --dir), with the peak resident memory
/// </summary>
internal static class ModelBenchmarks
{
    private const string Config125M = """
        {"architectures": ["LlamaForCausalLM"], "hidden_size": 768, "intermediate_size": 2048, "num_hidden_layers": 12,
         "num_attention_heads": 12, "num_key_value_heads": 12, "vocab_size": 32000, "rms_norm_eps": 1e-5, "max_position_embeddings": 2048}
        """;

    internal const string Config7BJson = """
        {"architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
         "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32000, "rms_norm_eps": 1e-5,
         "max_position_embeddings": 4096, "torch_dtype": "bfloat16"}
        """;

    public static int Run(Options o, string preset) => preset switch
    {
        "125m" => Small(o),
        "7b" => Streamed(o),
        _ => throw new ArgumentException($"unknown preset '{preset}' (expected 125m or 7b)"),
    };

    private static int Small(Options o)
    {
        var config = ModelConfig.Parse(Config125M, "config.json");
        var weights = new ParameterSet(config);
        var rng = new Random(1);
        long parameters = 0;
        foreach (var (name, shape) in config.ExpectedTensors())
        {
            var values = Benchmarks.RandomMatrix(rng, (int)shape.Aggregate(1L, (a, d) => a * d));
            for (int i = 0; i < values.Length; i++) values[i] *= 0.02f;
            if (name.EndsWith("norm.weight", StringComparison.Ordinal)) Array.Fill(values, 1f);
            weights.Set(name, values);
            parameters += values.Length;
        }
        int tokens = o.Size == 1024 ? 512 : o.Size, batchSize = 4; // --size sets the sequence length
        var sequences = Enumerable.Range(0, batchSize).Select(_ => Enumerable.Range(0, tokens).Select(_ => rng.Next(config.VocabSize)).ToArray()).ToList();
        var batch = Batch.Create(sequences.Select(s => (IReadOnlyList<int>)s).ToList(), sequences.Select(s => (IReadOnlyList<int>)s).ToList());
        var model = new Transformer(weights);
        int reps = o.Reps > 0 ? o.Reps : 5;

        // Forward and forward+backward alternate, so drifts of the shared machine's speed hit both alike.
        var grads = Gradients.For(config, config.ExpectedTensors().Select(t => t.Name));
        model.Loss(batch);
        var times = new List<(double Forward, double Both)>();
        for (int r = 0; r < reps; r++)
        {
            var sw = Stopwatch.StartNew();
            model.Loss(batch);
            double f = sw.Elapsed.TotalSeconds;
            grads.Clear();
            sw.Restart();
            model.ForwardBackward(batch, grads);
            times.Add((f, sw.Elapsed.TotalSeconds));
            Console.WriteLine($"  pass {r + 1}: forward {f:F3} s, forward+backward {times[^1].Both:F3} s (GC pauses so far {GC.GetTotalPauseDuration().TotalSeconds:F2} s, gen2 {GC.CollectionCount(2)})");
        }
        double forward = times.Min(x => x.Forward), both = times.Min(x => x.Both);
        double gemm = GemmRate(2048);

        long t = batch.TokenCount;
        double tokensPerSecond = t / forward, bound = gemm * 1e9 / (2.0 * parameters);
        Console.WriteLine($"model: {parameters:N0} parameters, batch {batchSize} × {tokens} tokens; square GEMM n=2048 in this run: {gemm:F1} GFLOP/s");
        Console.WriteLine($"forward {forward:F3} s = {tokensPerSecond:F0} tokens/s = {100 * tokensPerSecond / bound:F0}% of the GEMM-bound {bound:F0} tokens/s");
        Console.WriteLine($"forward+backward {both:F3} s; backward alone {both - forward:F3} s = {(both - forward) / forward:F2}× the forward");
        Console.WriteLine($"model preset=125m tokens_per_s={tokensPerSecond:F0} gemm_bound_pct={100 * tokensPerSecond / bound:F0} backward_ratio={(both - forward) / forward:F2}");
        return 0;
    }

    private static double GemmRate(int n)
    {
        var rng = new Random(2);
        float[] a = Benchmarks.RandomMatrix(rng, n * n), b = Benchmarks.RandomMatrix(rng, n * n), c = new float[n * n];
        double s = Benchmarks.BestOf(3, () => Gemm.MatMulTransposeB(a, b, c, n, n, n));
        return 2.0 * n * n * (double)n / s / 1e9;
    }

    private static int Streamed(Options o)
    {
        string dir = o.Dir ?? Path.Combine(Path.GetTempPath(), "irr-bench-llama2-7b-bf16");
        if (!File.Exists(Path.Combine(dir, "config.json"))) CheckpointBenchmarks.Create(dir, Config7BJson);
        int tokens = o.Size == 1024 ? 512 : o.Size;
        var rng = new Random(3);
        var seq = Enumerable.Range(0, tokens).Select(_ => rng.Next(32000)).ToArray();
        var batch = Batch.Create([seq], [seq]);
        CheckpointBenchmarks.ResetPeakMemory();
        var sw = Stopwatch.StartNew();
        double loss;
        using (var weights = CheckpointWeights.Open(dir))
            loss = new Transformer(weights).Loss(batch).Loss;
        double seconds = sw.Elapsed.TotalSeconds;
        long peak = CheckpointBenchmarks.PeakMemory();
        Console.WriteLine($"7B-shaped checkpoint {dir}: forward of {tokens} tokens in {seconds:F1} s (loss {loss:F3}); peak resident {peak / 1e9:F2} GB");
        Console.WriteLine($"model preset=7b tokens={tokens} seconds={seconds:F1} peak_gb={peak / 1e9:F2}");
        return 0;
    }
}
