using System.Buffers.Binary;
using System.Text;
using Irr.IO;

namespace Irr.Tests.IO;

/// <summary>A fresh temporary directory, deleted on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "irr-tests-" + Guid.NewGuid().ToString("N")[..12]);

    public string this[string relative] => System.IO.Path.Combine(Path, relative);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

/// <summary>
/// Builds safetensors bytes by hand (8-byte little-endian length, JSON, data), independently of
/// the project's writer, so the reader is tested against the format itself.
/// </summary>
internal static class RawSafetensors
{
    public static byte[] Build(string headerJson, byte[] data)
    {
        var header = Encoding.UTF8.GetBytes(headerJson);
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        return bytes;
    }

    public static string Write(string path, string headerJson, byte[] data)
    {
        File.WriteAllBytes(path, Build(headerJson, data));
        return path;
    }

    public static byte[] Floats(params float[] values)
    {
        var b = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(i * 4), values[i]);
        return b;
    }

    public static byte[] Halves(params ushort[] bits)
    {
        var b = new byte[bits.Length * 2];
        for (int i = 0; i < bits.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(i * 2), bits[i]);
        return b;
    }
}

/// <summary>Tiny Llama-family checkpoints for tests, written with the project's writer.</summary>
internal static class TinyModels
{
    // vocab 64, hidden 16, intermediate 40, 2 layers, 4 heads of 4, 2 KV heads.
    public const string LlamaConfig = """
        {
          "architectures": ["LlamaForCausalLM"],
          "model_type": "llama",
          "hidden_size": 16,
          "intermediate_size": 40,
          "num_hidden_layers": 2,
          "num_attention_heads": 4,
          "num_key_value_heads": 2,
          "vocab_size": 64,
          "max_position_embeddings": 128,
          "rms_norm_eps": 1e-05,
          "rope_theta": 10000.0,
          "tie_word_embeddings": false,
          "bos_token_id": 1,
          "eos_token_id": 2,
          "hidden_act": "silu",
          "torch_dtype": "bfloat16"
        }
        """;

    // Parameters of LlamaConfig worked by hand: embed 64·16 = 1024; per layer q 16·16 = 256,
    // k 8·16 = 128, v 128, o 256, gate/up/down 40·16 = 640 each, two norms 16 each: 2720;
    // two layers 5440; final norm 16; lm_head 1024. Total 7504.
    public const long LlamaParameters = 7504;

    /// <summary>Writes config.json and weights (random, seeded) for <paramref name="configJson"/> into a new directory.</summary>
    public static string Create(string directory, string configJson = LlamaConfig, TensorDType dtype = TensorDType.BF16,
        long maxShardBytes = 5_000_000_000, int seed = 1, Func<string, long[], bool>? include = null)
    {
        var config = ModelConfig.Parse(configJson, "config.json");
        var specs = config.ExpectedTensors().Where(t => include?.Invoke(t.Name, t.Shape) ?? true)
            .Select(t => new TensorSpec(t.Name, dtype, t.Shape)).ToList();
        var rng = new Random(seed);
        using var output = OutputDirectory.Create(directory, []);
        using (var writer = CheckpointWriter.Create(output, specs, new CheckpointWriterOptions { MaxShardBytes = maxShardBytes }))
        {
            foreach (var spec in specs)
            {
                var values = new float[spec.ElementCount];
                // Norm weights near 1 as in trained models; everything else small.
                float offset = spec.Name.EndsWith("norm.weight", StringComparison.Ordinal) ? 1f : 0f;
                for (int i = 0; i < values.Length; i++) values[i] = offset + (float)(rng.NextDouble() * 2 - 1) * 0.1f;
                writer.Write(spec.Name, values);
            }
            writer.Complete();
        }
        File.WriteAllText(output.PathOf("config.json"), configJson);
        File.WriteAllText(output.PathOf("tokenizer_config.json"), "{\"bos_token\": \"<s>\"}");
        File.WriteAllText(output.PathOf("generation_config.json"), "{\"do_sample\": false}");
        output.Commit();
        return directory;
    }
}
