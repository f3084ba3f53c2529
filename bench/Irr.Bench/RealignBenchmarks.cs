using System.Diagnostics;
using Irr.IO;
using Irr.Model;
using Irr.Realign;
using Irr.Tensors;

namespace Irr.Bench;

/// <summary>
///   obs --size N [--sparsity s]  one N × N matrix through IRR's per-matrix step (damping, Cholesky chain, block loop),
///                       the problem bench/torch/obs_reference.py times in PyTorch
///   realign [--dir D]   the scale run: a Llama-2-7B-shaped bf16 checkpoint, θ_F = θ_A + a random LoRA on
///                       q_proj and v_proj, random safety vector and Fisher, 8 calibration sequences of 256 tokens
///   realign --preset memory [--dir D] [--size N]  peak memory of realignment: a 92 MB bf16 checkpoint (hidden 1024,
///                       intermediate 2048, 4 layers, vocab 2048), θ_F = θ_A + a random LoRA on all seven modules,
///                       N calibration sequences (64 by default) of 512 tokens; prints the peak RSS (VmHWM)
/// </summary>
internal static class RealignBenchmarks
{
    public static int Obs(Options o)
    {
        int n = o.Size;
        var rng = new Random(1);
        var x = Normal(rng, 2 * n * n);
        var h = new float[n * n];
        Syrk.AddXtX(x, 2 * n, n, 2f / (2 * n), h);
        var w = Normal(rng, n * n, 0.01f);
        var v = Normal(rng, n * n);
        var f = Enumerable.Range(0, n * n).Select(_ => (float)rng.NextDouble()).ToArray();
        var options = new ObsOptions { BlockSize = 128, Strategy = RemovalMethods.Irr.Create(o.Sparsity) };
        int reps = o.Reps > 0 ? o.Reps : 3;
        double factorBest = double.MaxValue, applyBest = double.MaxValue, totalBest = double.MaxValue;
        ObsResult result = null!;
        for (int r = 0; r <= reps; r++)
        {
            var sw = Stopwatch.StartNew();
            var factor = ObsRecalibrator.Factor(h, n, options, out _) ?? throw new InvalidOperationException("factorisation failed");
            double t1 = sw.Elapsed.TotalSeconds;
            var delta = (float[])w.Clone();
            result = ObsRecalibrator.Apply(delta, n, n, factor, v, f, options);
            double t2 = sw.Elapsed.TotalSeconds;
            if (r == 0) continue; // warm-up
            factorBest = Math.Min(factorBest, t1);
            applyBest = Math.Min(applyBest, t2 - t1);
            totalBest = Math.Min(totalBest, t2);
        }
        Console.WriteLine($"damping + Cholesky chain {factorBest:F3} s, block loop {applyBest:F3} s; removed {result.Removed:N0} of {result.Parameters:N0}");
        Console.WriteLine($"obs n={n} blocksize=128 sparsity={o.Sparsity} threads={ThreadTeam.DefaultThreads} seconds={totalBest:F3}");
        return 0;
    }

    private static float[] Normal(Random rng, int count, float scale = 1f)
    {
        var x = new float[count];
        for (int i = 0; i < count; i += 2)
        {
            double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble(), r = Math.Sqrt(-2 * Math.Log(u1));
            x[i] = (float)(r * Math.Cos(2 * Math.PI * u2)) * scale;
            if (i + 1 < count) x[i + 1] = (float)(r * Math.Sin(2 * Math.PI * u2)) * scale;
        }
        return x;
    }

    /// <summary>The scale run of <c>irr realign</c> on a 7B-shaped checkpoint (see the class summary).</summary>
    public static int Realign(Options o)
    {
        if (o.Preset == "memory") return RealignMemory(o);
        string root = o.Dir ?? Path.GetTempPath();
        string aligned = Path.Combine(root, "irr-bench-llama2-7b-bf16");
        if (!File.Exists(Path.Combine(aligned, "config.json"))) CheckpointBenchmarks.Create(aligned, ModelBenchmarks.Config7BJson);
        string adapter = Path.Combine(root, "irr-bench-7b-finetune-lora"), harmful = Path.Combine(root, "irr-bench-7b-unaligned-lora");
        string vPath = Path.Combine(root, "irr-bench-7b-v.safetensors"), fPath = Path.Combine(root, "irr-bench-7b-fisher.safetensors");
        string output = Path.Combine(root, "irr-bench-7b-realigned");
        string[] qv = ["q_proj", "v_proj"];
        var prep = Stopwatch.StartNew();
        using (var a = CheckpointWeights.Open(aligned))
        {
            // θ_F and θ_U: θ_A plus small random rank-16 LoRA perturbations of q_proj and v_proj.
            if (!Directory.Exists(adapter)) RandomAdapter(a.Config, adapter, aligned, seed: 1);
            if (!Directory.Exists(harmful)) RandomAdapter(a.Config, harmful, aligned, seed: 2);
            if (!File.Exists(vPath))
                using (var u = CheckpointWeights.Open(aligned, harmful))
                    SafetyVector.Compute(a, u, qv, vPath, new Dictionary<string, string> { ["format"] = "pt" });
            if (!File.Exists(fPath)) RandomFisher(a.Config, qv, fPath);
        }
        Console.WriteLine($"inputs ready in {prep.Elapsed.TotalSeconds:F0} s");

        var calibration = Enumerable.Range(0, 8).Select(s => { var r = new Random(10 + s); return Enumerable.Range(0, 256).Select(_ => r.Next(32000)).ToArray(); }).ToList();
        CheckpointBenchmarks.ResetPeakMemory();
        var clock = Stopwatch.StartNew();
        var report = WriteRealigned(aligned, adapter, vPath, fPath, qv, calibration, output);
        double seconds = clock.Elapsed.TotalSeconds;
        long peak = CheckpointBenchmarks.PeakMemory();
        Console.WriteLine("phases: " + string.Join(", ", report.PhaseSeconds.Select(kv => $"{kv.Key} {kv.Value:F1} s")));
        Console.WriteLine($"removed {report.Modules.Sum(m => m.Removed):N0} of {report.Modules.Sum(m => m.Parameters):N0} deltas; damping retries {report.Modules.Sum(m => m.DampingRetries)}");
        Console.WriteLine($"realign preset=7b seconds={seconds:F0} peak_gb={peak / 1e9:F2}");
        return 0;
    }

    internal const string ConfigMemoryJson = """
        {"architectures": ["LlamaForCausalLM"], "hidden_size": 1024, "intermediate_size": 2048, "num_hidden_layers": 4,
         "num_attention_heads": 16, "num_key_value_heads": 16, "vocab_size": 2048, "rms_norm_eps": 1e-5,
         "max_position_embeddings": 512, "torch_dtype": "bfloat16"}
        """;

    /// <summary>Peak memory of a realignment of every module of a small model (see the class summary).</summary>
    private static int RealignMemory(Options o)
    {
        string root = o.Dir ?? Path.GetTempPath();
        string aligned = Path.Combine(root, "irr-bench-mem-bf16"), adapter = Path.Combine(root, "irr-bench-mem-finetune-lora");
        string harmful = Path.Combine(root, "irr-bench-mem-unaligned-lora"), vPath = Path.Combine(root, "irr-bench-mem-v.safetensors");
        string fPath = Path.Combine(root, "irr-bench-mem-fisher.safetensors"), output = Path.Combine(root, "irr-bench-mem-realigned");
        var modules = TargetModules.All;
        if (!File.Exists(Path.Combine(aligned, "config.json"))) CheckpointBenchmarks.Create(aligned, ConfigMemoryJson);
        using (var a = CheckpointWeights.Open(aligned))
        {
            if (!Directory.Exists(adapter)) RandomAdapter(a.Config, adapter, aligned, seed: 1, modules);
            if (!Directory.Exists(harmful)) RandomAdapter(a.Config, harmful, aligned, seed: 2, modules);
            if (!File.Exists(vPath))
                using (var u = CheckpointWeights.Open(aligned, harmful))
                    SafetyVector.Compute(a, u, modules, vPath, new Dictionary<string, string> { ["format"] = "pt" });
            if (!File.Exists(fPath)) RandomFisher(a.Config, modules, fPath);
        }
        int sequences = o.Size == 1024 ? 64 : o.Size;
        var calibration = Enumerable.Range(0, sequences).Select(s => { var r = new Random(10 + s); return Enumerable.Range(0, 512).Select(_ => r.Next(2048)).ToArray(); }).ToList();
        var clock = Stopwatch.StartNew();
        var report = WriteRealigned(aligned, adapter, vPath, fPath, modules, calibration, output);
        Console.WriteLine("phases: " + string.Join(", ", report.PhaseSeconds.Select(kv => $"{kv.Key} {kv.Value:F1} s")));
        Console.WriteLine($"realign preset=memory sequences={sequences} seqlen=512 seconds={clock.Elapsed.TotalSeconds:F0} peak_gb={CheckpointBenchmarks.PeakMemory() / 1e9:F2}");
        return 0;
    }

    // θ_A + the adapter realigned on the calibration sequences, written to `output` as irr realign writes it.
    private static RealignReport WriteRealigned(string aligned, string adapter, string vPath, string fPath, IReadOnlyList<string> modules,
        IReadOnlyList<int[]> calibration, string output)
    {
        using var a = CheckpointWeights.Open(aligned);
        using var f = CheckpointWeights.Open(aligned, adapter);
        using var v = SafetensorsFile.Open(vPath);
        using var fi = SafetensorsFile.Open(fPath);
        var realigner = new Realigner(a, f, v, fi, new RealignOptions { Modules = modules });
        using var writer = ModelWriter.Open(new ModelTarget(output, [aligned, adapter], Overwrite: true, FilesFrom: aligned), f.Config, realigner.OutputSpecs());
        var report = realigner.Run(calibration, (name, values) => writer.Write(name, values));
        writer.Commit();
        return report;
    }

    // A random positive Fisher: the Fisher step itself is not what the realign benches measure.
    private static void RandomFisher(ModelConfig config, IReadOnlyList<string> modules, string path)
    {
        var rng = new Random(3);
        var names = TargetModules.WeightNames(config, modules).ToList();
        var shapes = config.ExpectedTensors().ToDictionary(t => t.Name, t => t.Shape);
        CheckpointWriter.WriteFile(path, names.Select(n => new TensorSpec(n, TensorDType.F32, shapes[n])).ToList(), new Dictionary<string, string> { ["format"] = "pt" }, w =>
        {
            foreach (string n in names)
            {
                var values = new float[shapes[n][0] * shapes[n][1]];
                for (int i = 0; i < values.Length; i++) values[i] = (float)rng.NextDouble() * 1e-6f;
                w.Write(n, values);
            }
        });
    }

    private static void RandomAdapter(ModelConfig config, string directory, string baseModel, int seed, IReadOnlyList<string>? modules = null)
    {
        var rng = new Random(seed);
        const int rank = 16;
        modules ??= ["q_proj", "v_proj"];
        var layers = TargetModules.WeightNames(config, modules).Select(n =>
        {
            var shape = config.ExpectedTensors().First(t => t.Name == n).Shape;
            int outDim = (int)shape[0], inDim = (int)shape[1];
            var a = Normal(rng, rank * inDim, 0.01f);
            var b = Normal(rng, outDim * rank, 0.01f);
            return (n, a, b, outDim, inDim);
        }).ToList();
        LoraAdapter.Write(directory, LoraConfig.Create(rank, 32, modules, baseModel), layers, TensorDType.F32, [baseModel], overwrite: true);
    }
}
