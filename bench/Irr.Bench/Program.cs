using System.Diagnostics;
using Irr.Tensors;

namespace Irr.Bench;

/// <summary>
/// Benchmarks for the numeric core. Each prints progress lines and, last, one summary line:
///   gemm --size N [--threads T] [--op nt|nn|tn]  ->  gemm n=N threads=T gflops=X
///   cholesky --size N                            ->  cholesky n=N seconds=X
/// Figures are the best of several timed repetitions after a warm-up run.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help")
        {
            Console.WriteLine("usage: Irr.Bench gemm --size N [--threads T] [--op nt|nn|tn] [--reps R]");
            Console.WriteLine("       Irr.Bench cholesky --size N [--reps R]     (threads: IRR_NUM_THREADS)");
            Console.WriteLine("       Irr.Bench convert [--size N]      (N K elements)");
            Console.WriteLine("       Irr.Bench kernel [--threads T]");
            Console.WriteLine("       Irr.Bench read [--dir DIR]                 (a 1.1 B-parameter bf16 checkpoint, made once in DIR)");
            Console.WriteLine("       Irr.Bench model --preset 125m|7b [--size TOKENS] [--dir DIR]");
            Console.WriteLine("       Irr.Bench obs --size N [--reps R]");
            Console.WriteLine("       Irr.Bench realign [--dir DIR]               (the 7B scale run; inputs made once in DIR)");
            Console.WriteLine("       Irr.Bench tokenize [--tokenizer PATH] [--size MB] [--reps R]");
            return args.Length == 0 ? 2 : 0;
        }
        try
        {
            if (args[0] == "tokenize") return TokenizeBenchmark.Run(args.AsSpan(1));
            var opts = Options.Parse(args.AsSpan(1));
            return args[0] switch
            {
                "gemm" => Benchmarks.Gemm(opts),
                "cholesky" => Benchmarks.Cholesky(opts),
                "convert" => Benchmarks.Convert(opts),
                "kernel" => Benchmarks.Kernel(opts),
                "read" => CheckpointBenchmarks.Read(opts),
                "model" => ModelBenchmarks.Run(opts, opts.Preset),
                "obs" => RealignBenchmarks.Obs(opts),
                "realign" => RealignBenchmarks.Realign(opts),
                _ => Fail($"unknown benchmark '{args[0]}' (expected gemm, cholesky, convert, kernel, read, model, obs, realign or tokenize)"),
            };
        }
        catch (ArgumentException e)
        {
            return Fail(e.Message);
        }
    }

    private static int Fail(string message)
    {
        Console.Error.WriteLine($"error: {message}");
        return 2;
    }
}

internal sealed record Options(int Size, int Threads, string Op, int Reps, string? Dir, string Preset, double Sparsity = 0)
{
    public static Options Parse(ReadOnlySpan<string> args)
    {
        int size = 1024, threads = ThreadTeam.DefaultThreads, reps = 0;
        string op = "nt";
        string? dir = null;
        string preset = "125m";
        double sparsity = 0;
        for (int i = 0; i < args.Length; i++)
        {
            string name = args[i];
            string value = i + 1 < args.Length ? args[++i] : throw new ArgumentException($"option {name} needs a value");
            switch (name)
            {
                case "--size": size = PositiveInt(name, value); break;
                case "--threads": threads = PositiveInt(name, value); break;
                case "--reps": reps = PositiveInt(name, value); break;
                case "--dir": dir = value; break;
                case "--preset": preset = value; break;
                case "--sparsity": sparsity = double.TryParse(value, System.Globalization.CultureInfo.InvariantCulture, out double s) && s is >= 0 and <= 1 ? s : throw new ArgumentException($"--sparsity must be in [0, 1], not '{value}'"); break;
                case "--op": op = value is "nt" or "nn" or "tn" ? value : throw new ArgumentException($"--op must be nt, nn or tn, not '{value}'"); break;
                default: throw new ArgumentException($"unknown option '{name}'");
            }
        }
        return new Options(size, threads, op, reps, dir, preset, sparsity);
    }

    private static int PositiveInt(string name, string value) =>
        int.TryParse(value, out int v) && v > 0 ? v : throw new ArgumentException($"{name} must be a positive integer, not '{value}'");
}

internal static unsafe class Benchmarks
{
    public static int Gemm(Options o)
    {
        int n = o.Size;
        var rng = new Random(1234);
        float[] a = RandomMatrix(rng, n * n), b = RandomMatrix(rng, n * n), c = new float[n * n];
        var (ta, tb) = o.Op switch { "nn" => (Transpose.No, Transpose.No), "tn" => (Transpose.Yes, Transpose.No), _ => (Transpose.No, Transpose.Yes) };
        int reps = o.Reps > 0 ? o.Reps : n <= 1024 ? 10 : n <= 2048 ? 5 : 3;
        double best = BestOf(reps, () =>
        {
            fixed (float* pa = a, pb = b, pc = c)
                Irr.Tensors.Gemm.Run(GemmKernels.Best, ta, tb, n, n, n, 1f, pa, n, pb, n, 0f, pc, n, false, o.Threads);
        });
        Console.WriteLine($"kernel={GemmKernels.Best} op={o.Op} best={best * 1e3:F1} ms");
        Console.WriteLine($"gemm n={n} threads={Math.Min(o.Threads, ThreadTeam.Shared.Size)} gflops={2.0 * n * n * (double)n / best / 1e9:F1}");
        return 0;
    }

    /// <summary>
    /// The micro-kernel alone on L1-resident panels (KC = 256), on one thread and then on every
    /// thread at once: the ceiling the GEMM driver can reach on this machine.
    /// </summary>
    public static int Kernel(Options o)
    {
        const int kc = 256, iters = 200_000;
        var kernel = GemmKernels.Best;
        int nr = GemmKernels.NR(kernel), threads = Math.Min(o.Threads, ThreadTeam.Shared.Size);
        var panels = new Panels[threads];
        for (int t = 0; t < threads; t++) panels[t] = new Panels(kc, nr);
        double flops = 2.0 * GemmKernels.MR * nr * kc * iters;
        double one = BestOf(5, () => panels[0].Run(kernel, kc, nr, iters));
        double all = BestOf(5, () => ThreadTeam.Shared.Run(threads, (tid, _) => panels[tid].Run(kernel, kc, nr, iters)));
        Console.WriteLine($"kernel={kernel} 1 thread: {flops / one / 1e9:F1} GFLOP/s");
        Console.WriteLine($"kernel threads={threads} gflops={threads * flops / all / 1e9:F1}");
        return 0;
    }

    private sealed class Panels
    {
        private readonly float* a, b, c;

        public Panels(int kc, int nr)
        {
            a = Alloc(GemmKernels.MR * kc);
            b = Alloc(nr * kc);
            c = Alloc(GemmKernels.MR * nr);
            for (int i = 0; i < GemmKernels.MR * kc; i++) a[i] = 1e-3f;
            for (int i = 0; i < nr * kc; i++) b[i] = 1e-3f;
        }

        public void Run(GemmKernel kernel, int kc, int nr, int iters)
        {
            for (int i = 0; i < iters; i++) GemmKernels.Full(kernel, kc, a, b, c, nr, 1f, 1f);
        }

        private static float* Alloc(int count) => (float*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)count * sizeof(float), 64);
    }

    public static int Cholesky(Options o)
    {
        int n = o.Size;
        float[] h = Spd(n, new Random(1234));
        var work = new float[n * n];
        int reps = o.Reps > 0 ? o.Reps : n <= 2048 ? 5 : 3;
        CholeskyResult result = default;
        double factor = BestOf(reps, () => { h.CopyTo(work, 0); result = Irr.Tensors.Cholesky.Factor(work, n); });
        Check(result);
        double inverse = BestOf(reps, () => { h.CopyTo(work, 0); Irr.Tensors.Cholesky.Factor(work, n); result = Irr.Tensors.Cholesky.InverseFromFactor(work, n); }) - factor;
        Check(result);
        double chain = BestOf(reps, () => { h.CopyTo(work, 0); result = Irr.Tensors.Cholesky.InverseUpperFactor(work, n); });
        Check(result);
        double copy = BestOf(reps, () => h.CopyTo(work, 0));
        chain -= copy;
        factor -= copy;
        Console.WriteLine($"factor={factor:F3}s inverse-from-factor={inverse:F3}s (chain of 4 n³/3 steps: {4.0 * n * n * (double)n / 3 / chain / 1e9:F1} GFLOP/s)");
        Console.WriteLine($"cholesky n={n} seconds={chain:F3}");
        return 0;

        static void Check(CholeskyResult r)
        {
            if (!r.Success) throw new InvalidOperationException($"benchmark matrix failed: {r}");
        }
    }

    // H = XᵀX/m + 0.01·I for X (2n×n) uniform in [−1, 1]: the same construction as bench/numpy/reference.py.
    internal static float[] Spd(int n, Random rng)
    {
        int m = 2 * n;
        float[] x = RandomMatrix(rng, m * n);
        var h = new float[n * n];
        Syrk.AddXtX(x, m, n, 1f / m, h);
        for (int i = 0; i < n; i++) h[i * n + i] += 0.01f;
        return h;
    }

    public static int Convert(Options o)
    {
        int n = o.Size * 1024;
        var rng = new Random(1234);
        float[] f = RandomMatrix(rng, n), back = new float[n];
        var bits = new ushort[n];
        int reps = o.Reps > 0 ? o.Reps : 10;
        double GBps(double s) => n * 6.0 / s / 1e9; // 4 bytes read + 2 written, or 2 + 4
        double toBf16 = BestOf(reps, () => BFloat16.FromSingle(f, bits));
        double fromBf16 = BestOf(reps, () => BFloat16.ToSingle(bits, back));
        double toF16 = BestOf(reps, () => Float16.FromSingle(f, bits));
        double fromF16 = BestOf(reps, () => Float16.ToSingle(bits, back));
        Console.WriteLine($"f32->bf16 {GBps(toBf16):F1} GB/s, bf16->f32 {GBps(fromBf16):F1} GB/s, f32->f16 {GBps(toF16):F1} GB/s, f16->f32 {GBps(fromF16):F1} GB/s");
        Console.WriteLine($"convert n={n} bf16-gelems={n / toBf16 / 1e9:F2}/{n / fromBf16 / 1e9:F2} f16-gelems={n / toF16 / 1e9:F2}/{n / fromF16 / 1e9:F2}");
        return 0;
    }

    internal static float[] RandomMatrix(Random rng, int count)
    {
        var x = new float[count];
        for (int i = 0; i < count; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        return x;
    }

    /// <summary>Seconds of the fastest of <paramref name="reps"/> runs, after one warm-up run.</summary>
    internal static double BestOf(int reps, Action run)
    {
        run();
        double best = double.MaxValue;
        for (int r = 0; r < reps; r++)
        {
            var sw = Stopwatch.StartNew();
            run();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return best;
    }
}
