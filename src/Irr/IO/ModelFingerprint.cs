using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Irr.Jobs;

namespace Irr.IO;

/// <summary>
/// A cheap content fingerprint of a model directory (or of a model with a LoRA adapter), for checking that the
/// inputs of a job belong together (<see cref="Realign.InputChecks"/>) without reading a 7B model's 13 GB: the SHA-256
/// of every tensor config.json implies (<see cref="ModelConfig.ExpectedTensors"/>; buffers such as <c>rotary_emb.inv_freq</c>
/// that old <c>pytorch_model.bin</c> files carry, and a tied head stored anyway, do not count), in ordinal name order: its
/// name and shape and a sample of its values, decoded to float32 (a tensor of at most 65,536 elements whole; a larger
/// one its first, middle and last row along the first dimension). About 10 MB are read for a 7B model.
/// </summary>
/// <remarks>
/// The same model copied, moved, linked, resharded, converted from <c>pytorch_model.bin</c> to safetensors or widened
/// losslessly (bf16 or f16 to f32) has the same fingerprint; any other file has another one, with a chance of a false
/// match of 2⁻²⁵⁶ (fine-tuning changes the sampled rows of every trained matrix: full fine-tunes and LoRA merges change
/// every row). A model narrowed to another type (f32 to bf16, bf16 to f16) has another fingerprint: callers compare
/// <see cref="StorageTypes"/> before they call two fingerprints a mismatch. The fingerprint is not
/// <see cref="ContentHash"/> (the hash of every byte), which <c>irr run</c> uses for its rerun check.
/// </remarks>
public static class ModelFingerprint
{
    /// <summary>A tensor of at most this many elements is hashed whole.</summary>
    public const long WholeTensorElements = 65_536;

    private static readonly ConcurrentDictionary<(string Path, (long, DateTime)? Stamp), string> Cache = new();

    /// <summary>
    /// The fingerprint (lowercase hex) of the model directory <paramref name="model"/>, or null when it is not a
    /// directory with config.json. Remembered for the process while the directory's size and modification time stay.
    /// </summary>
    /// <exception cref="IrrException">The directory's weights cannot be read (as <see cref="ModelDirectory.Open"/>).</exception>
    public static string? Of(string? model)
    {
        if (model is null || !File.Exists(Path.Combine(model, "config.json"))) return null;
        var key = (Path.GetFullPath(model), ContentHash.Stamp(model));
        if (Cache.TryGetValue(key, out string? known)) return known;
        using var directory = ModelDirectory.Open(model, validate: false);
        string hash = Compute(directory);
        Cache[key] = hash;
        return hash;
    }

    /// <summary>
    /// The fingerprint of <paramref name="model"/> with the LoRA adapter <paramref name="adapter"/> (a directory):
    /// the SHA-256 of the model's fingerprint and the adapter's <see cref="ContentHash.OfModel"/> (adapters are small).
    /// Null when the model is not a model directory or the adapter does not exist.
    /// </summary>
    public static string? Of(string model, string? adapter)
    {
        if (adapter is null) return Of(model);
        if (Of(model) is not { } m || ContentHash.OfModel(adapter) is not { } a) return null;
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{m}\n{a}")));
    }

    /// <summary>The distinct storage types of a model directory's tensors, e.g. "BF16" or "BF16+F32" (ordinal order).</summary>
    public static string StorageTypes(string model)
    {
        using var directory = ModelDirectory.Open(model, validate: false);
        return string.Join("+", directory.Config.ExpectedTensors().Where(t => directory.Contains(t.Name)).Select(t => directory.Info(t.Name).DType.ToString())
            .Distinct().Order(StringComparer.Ordinal));
    }

    private static string Compute(ModelDirectory model)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> number = stackalloc byte[8];
        float[] values = [];
        var expected = model.Config.ExpectedTensors().Select(t => t.Name).Where(model.Contains).Order(StringComparer.Ordinal);
        foreach (var tensor in expected.Select(model.Info))
        {
            Interruption.ThrowIfRequested();
            hash.AppendData(Encoding.UTF8.GetBytes(tensor.Name));
            hash.AppendData([0]);
            foreach (long d in tensor.Shape)
            {
                BinaryPrimitives.WriteInt64LittleEndian(number, d);
                hash.AppendData(number);
            }
            if (!tensor.DType.IsFloatingSupported() && tensor.DType != TensorDType.F64) continue; // integer buffers: name and shape only
            var rows = tensor.ElementCount <= WholeTensorElements
                ? [(0L, tensor.Rows)]
                : new[] { 0L, tensor.Rows / 2, tensor.Rows - 1 }.Distinct().Select(r => (r, 1L)).ToArray();
            foreach (var (first, count) in rows)
            {
                int n = checked((int)(count * tensor.RowLength));
                if (n == 0) continue;
                if (values.Length < n) values = new float[n];
                model.ReadRowsSingle(tensor.Name, first, count, values.AsSpan(0, n));
                hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan(0, n)));
            }
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
