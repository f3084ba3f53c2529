using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Irr.IO;

namespace Irr.Tests.IO;

/// <summary>ModelFingerprint against its documented definition, computed here with naive loops over whole tensors.</summary>
public class ModelFingerprintTests
{
    // vocabulary 5000: embed_tokens and lm_head have 80,000 elements (> 65,536), so only rows 0, 2500 and 4999 count.
    private static readonly string BigVocabulary = TinyModels.LlamaConfig.Replace("\"vocab_size\": 64", "\"vocab_size\": 5000");

    // The definition: per tensor config.json implies, in ordinal name order, UTF-8 name, a zero byte, each dimension as int64 little-endian,
    // then float32 little-endian values: the whole tensor up to 65,536 elements, else rows first, middle (rows / 2), last.
    private static string Naive(string directory)
    {
        using var model = ModelDirectory.Open(directory);
        var bytes = new List<byte>();
        foreach (var t in model.Config.ExpectedTensors().Select(e => model.Info(e.Name)).OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            bytes.AddRange(Encoding.UTF8.GetBytes(t.Name));
            bytes.Add(0);
            foreach (long d in t.Shape)
            {
                var b = new byte[8];
                BinaryPrimitives.WriteInt64LittleEndian(b, d);
                bytes.AddRange(b);
            }
            var all = model.ReadSingle(t.Name);
            var rows = all.Length <= 65_536 ? [.. Enumerable.Range(0, (int)t.Rows)] : new[] { 0, (int)t.Rows / 2, (int)t.Rows - 1 };
            foreach (int r in rows)
                for (long i = 0; i < t.RowLength; i++)
                {
                    var b = new byte[4];
                    BinaryPrimitives.WriteSingleLittleEndian(b, all[r * t.RowLength + i]);
                    bytes.AddRange(b);
                }
        }
        return Convert.ToHexStringLower(SHA256.HashData(bytes.ToArray()));
    }

    [Fact]
    public void TheFingerprintIsItsDefinitionAndIgnoresLayoutAndLosslessWidening()
    {
        using var dir = new TempDir();
        string one = TinyModels.Create(dir["one"], BigVocabulary, seed: 4);
        Assert.Equal(Naive(one), ModelFingerprint.Of(one));
        // The same values in shards of ~20 kB, and widened from bf16 to f32: the same fingerprint.
        string sharded = TinyModels.Create(dir["sharded"], BigVocabulary, seed: 4, maxShardBytes: 20_000);
        Assert.True(Directory.EnumerateFiles(sharded, "*.safetensors").Count() > 1);
        Assert.Equal(ModelFingerprint.Of(one), ModelFingerprint.Of(sharded));
        string widened = Irr.Tests.Realign.InputChecksTests.Derive(one, dir["widened"], seed: 0, TensorDType.F32, scale: 0);
        Assert.Equal(ModelFingerprint.Of(one), ModelFingerprint.Of(widened));
        Assert.Equal(("BF16", "F32"), (ModelFingerprint.StorageTypes(one), ModelFingerprint.StorageTypes(widened)));
        // The same weights with the rotary buffers old pytorch_model.bin files carry (tolerated, not part of the model's function).
        string buffers = dir["buffers"];
        Directory.CreateDirectory(buffers);
        File.Copy(Path.Combine(one, "config.json"), Path.Combine(buffers, "config.json"));
        using (var source = SafetensorsFile.Open(Path.Combine(one, "model.safetensors")))
        {
            var specs = source.Tensors.Select(t => new TensorSpec(t.Name, t.DType, t.Shape.ToArray()))
                .Append(new TensorSpec("model.layers.0.self_attn.rotary_emb.inv_freq", TensorDType.F32, [2])).ToList();
            CheckpointWriter.WriteFile(Path.Combine(buffers, "model.safetensors"), specs, new Dictionary<string, string> { ["format"] = "pt" }, w =>
            {
                foreach (var t in source.Tensors) w.Write(t.Name, source.ReadSingle(t.Name));
                w.Write("model.layers.0.self_attn.rotary_emb.inv_freq", [1f, 0.01f]);
            });
        }
        Assert.Equal(ModelFingerprint.Of(one), ModelFingerprint.Of(buffers));
        // Another seed: another fingerprint; no config.json: none.
        Assert.NotEqual(ModelFingerprint.Of(one), ModelFingerprint.Of(TinyModels.Create(dir["two"], BigVocabulary, seed: 5)));
        Assert.Null(ModelFingerprint.Of(dir["nowhere"]));
    }
}
