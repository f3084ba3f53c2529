using System.Diagnostics;
using Irr.IO;

namespace Irr.Bench;

/// <summary>
/// Reading a checkpoint: every tensor of a 2.2 GB bf16 model (TinyLlama-1.1B's shapes: 22 layers,
/// hidden 2048, intermediate 5632, 32 heads, 4 KV heads, vocab 32000) converted to float32 one
/// tensor at a time, with the page cache warm. Prints the checkpoint bytes per second and the
/// peak resident memory of the reading phase (VmHWM, reset just before it).
/// </summary>
internal static class CheckpointBenchmarks
{
    private const string Config = """
        {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048, "intermediate_size": 5632,
         "num_hidden_layers": 22, "num_attention_heads": 32, "num_key_value_heads": 4, "vocab_size": 32000,
         "max_position_embeddings": 2048, "rms_norm_eps": 1e-05, "tie_word_embeddings": false, "torch_dtype": "bfloat16"}
        """;

    public static int Read(Options o)
    {
        string dir = o.Dir ?? Path.Combine(Path.GetTempPath(), "irr-bench-tinyllama-bf16");
        if (!File.Exists(Path.Combine(dir, "config.json"))) Create(dir, Config);
        long bytes;
        using (var opened = ModelDirectory.Open(dir, validate: false)) bytes = opened.TotalBytes; // safetensors or pytorch_model*.bin
        Warm(dir);

        int reps = o.Reps > 0 ? o.Reps : 3;
        ResetPeakMemory();
        long baseline = CurrentMemory();
        double best = double.MaxValue;
        float[] buffer = [];
        for (int r = 0; r < reps; r++)
        {
            var sw = Stopwatch.StartNew();
            using (var model = ModelDirectory.Open(dir))
            {
                long largest = model.Tensors.Max(t => t.ElementCount);
                if (buffer.Length < largest) buffer = new float[largest];
                foreach (var shard in model.Shards)
                    foreach (var t in shard.Tensors)
                        shard.ReadSingle(t, buffer.AsSpan(0, (int)t.ElementCount));
            }
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
            Console.WriteLine($"  pass {r + 1}: {sw.Elapsed.TotalSeconds:F3} s");
        }
        long peak = PeakMemory();
        Console.WriteLine($"checkpoint {dir}: {bytes:N0} bytes; resident before reading {baseline / 1e6:F0} MB");
        Console.WriteLine($"read bytes={bytes} seconds={best:F3} gbps={bytes / best / 1e9:F2} peak_mb={peak / 1e6:F0}");
        return 0;
    }

    // Writes a checkpoint of a config with pseudo-random bf16 values (finite, |x| < 2⁻⁶), in 5 GB shards.
    internal static void Create(string dir, string configJson)
    {
        Console.WriteLine($"creating the benchmark checkpoint in {dir} …");
        var config = ModelConfig.Parse(configJson, "config.json");
        var specs = config.ExpectedTensors().Select(t => new TensorSpec(t.Name, TensorDType.BF16, t.Shape)).ToList();
        using var output = OutputDirectory.Create(dir, [], overwrite: true);
        using (var writer = CheckpointWriter.Create(output, specs))
        {
            var pattern = new byte[1 << 20];
            uint x = 2463534242;
            for (int i = 0; i < pattern.Length; i += 2)
            {
                x ^= x << 13; x ^= x >> 17; x ^= x << 5;
                ushort bits = (ushort)(0x3C00 | (x & 0x01FF) | ((x >> 16) & 0x8000)); // ±[2^-7, 2^-6)
                pattern[i] = (byte)bits;
                pattern[i + 1] = (byte)(bits >> 8);
            }
            foreach (var spec in specs)
            {
                var bytes = new byte[spec.ByteLength];
                for (long off = 0; off < bytes.Length; off += pattern.Length)
                    pattern.AsSpan(0, (int)Math.Min(pattern.Length, bytes.Length - off)).CopyTo(bytes.AsSpan((int)off));
                writer.WriteRaw(spec.Name, bytes);
            }
            writer.Complete();
        }
        File.WriteAllText(output.PathOf("config.json"), configJson);
        output.Commit();
    }

    // Reads every file once so the timed passes measure a warm page cache.
    private static void Warm(string dir)
    {
        var buffer = new byte[1 << 22];
        foreach (string f in Directory.GetFiles(dir))
        {
            using var s = File.OpenRead(f);
            while (s.Read(buffer, 0, buffer.Length) > 0) { }
        }
    }

    internal static void ResetPeakMemory()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    internal static long PeakMemory() => StatusKb("VmHWM:") * 1024;

    private static long CurrentMemory() => StatusKb("VmRSS:") * 1024;

    private static long StatusKb(string key)
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(key, StringComparison.Ordinal))
                return long.Parse(line[key.Length..].Trim().Split(' ')[0]);
        return 0;
    }
}
