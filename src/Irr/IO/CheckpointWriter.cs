using System.Buffers.Binary;
using System.Text.Json;
using Irr.Tensors;

namespace Irr.IO;

/// <summary>A tensor to be written: name, storage type and shape.</summary>
/// <param name="Name">Full Hugging Face name.</param>
/// <param name="DType">Storage type in the file.</param>
/// <param name="Shape">Dimensions, outermost first.</param>
public sealed record TensorSpec(string Name, TensorDType DType, long[] Shape)
{
    /// <summary>Number of elements.</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, d) => checked(a * d));

    /// <summary>Bytes in storage.</summary>
    public long ByteLength => checked(ElementCount * DType.SizeOf());

    /// <summary>The spec of a tensor as it is stored in a file.</summary>
    public static TensorSpec Of(TensorInfo info) => new(info.Name, info.DType, info.Shape.ToArray());
}

/// <summary>How <see cref="CheckpointWriter"/> lays out its files.</summary>
public sealed class CheckpointWriterOptions
{
    /// <summary>Largest shard in bytes of tensor data; Hugging Face's default "5GB" (5·10⁹).</summary>
    public long MaxShardBytes { get; init; } = 5_000_000_000;

    /// <summary>File name stem: <c>model</c> gives model.safetensors or model-00001-of-00002.safetensors.</summary>
    public string FilePrefix { get; init; } = "model";

    /// <summary>The header's <c>__metadata__</c>; transformers expects <c>{"format": "pt"}</c>.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string> { ["format"] = "pt" };
}

/// <summary>
/// Streams tensors into safetensors files inside an <see cref="OutputDirectory"/>: the list of
/// tensors is known up front (so each shard's header is written first), then the data is written
/// one tensor at a time in that order, so a model is never held in memory. Shards are cut like
/// <c>save_pretrained</c> does (in order, at most <see cref="CheckpointWriterOptions.MaxShardBytes"/>
/// each, a larger tensor alone), with <c>model.safetensors.index.json</c> when there is more than one.
/// </summary>
public sealed class CheckpointWriter : IDisposable
{
    private readonly Func<string, string> pathOf;
    private readonly CheckpointWriterOptions options;
    private readonly List<List<TensorSpec>> shards;
    private readonly string[] fileNames;
    private int shard = -1, indexInShard;
    private FileStream? stream;
    private byte[] buffer = [];
    private bool completed;

    private CheckpointWriter(Func<string, string> pathOf, CheckpointWriterOptions options, List<List<TensorSpec>> shards)
    {
        this.pathOf = pathOf;
        this.options = options;
        this.shards = shards;
        int n = shards.Count;
        fileNames = n == 1
            ? [$"{options.FilePrefix}.safetensors"]
            : Enumerable.Range(1, n).Select(i => $"{options.FilePrefix}-{i:D5}-of-{n:D5}.safetensors").ToArray();
    }

    /// <summary>The shard file names, in order.</summary>
    public IReadOnlyList<string> FileNames => fileNames;

    /// <summary>Plans the files for <paramref name="tensors"/> (written later in this order).</summary>
    public static CheckpointWriter Create(OutputDirectory output, IReadOnlyList<TensorSpec> tensors, CheckpointWriterOptions? options = null)
        => Create(output.PathOf, tensors, options);

    /// <summary>Plans files whose paths <paramref name="pathOf"/> gives from their names.</summary>
    internal static CheckpointWriter Create(Func<string, string> pathOf, IReadOnlyList<TensorSpec> tensors, CheckpointWriterOptions? options = null)
    {
        options ??= new CheckpointWriterOptions();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in tensors)
            if (!names.Add(t.Name)) throw new ArgumentException($"Tensor '{t.Name}' is listed twice.", nameof(tensors));
        return new CheckpointWriter(pathOf, options, PlanShards(tensors, options.MaxShardBytes));
    }

    /// <summary>
    /// Writes one safetensors file at <paramref name="path"/> whole or not at all: into a temporary
    /// name beside it, renamed when <paramref name="write"/> has written every planned tensor.
    /// </summary>
    public static void WriteFile(string path, IReadOnlyList<TensorSpec> tensors, IReadOnlyDictionary<string, string> metadata, Action<CheckpointWriter> write)
    {
        AtomicFile.RequireFileTarget(path);
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full) ?? ".";
        Directory.CreateDirectory(dir);
        Temporaries.WriteFile(full, temporary =>
        {
            using var writer = Create(_ => temporary, tensors, new CheckpointWriterOptions { MaxShardBytes = long.MaxValue, Metadata = metadata });
            write(writer);
            writer.Complete();
        });
    }

    /// <summary>Splits tensors, in order, into shards of at most <paramref name="maxBytes"/> (a larger tensor goes alone).</summary>
    internal static List<List<TensorSpec>> PlanShards(IReadOnlyList<TensorSpec> tensors, long maxBytes)
    {
        var result = new List<List<TensorSpec>>();
        var current = new List<TensorSpec>();
        long size = 0;
        foreach (var t in tensors)
        {
            if (current.Count > 0 && size + t.ByteLength > maxBytes)
            {
                result.Add(current);
                current = [];
                size = 0;
            }
            current.Add(t);
            size += t.ByteLength;
        }
        if (current.Count > 0 || result.Count == 0) result.Add(current);
        return result;
    }

    /// <summary>Writes the next tensor from float32 values, converted to its storage type.</summary>
    /// <exception cref="OperationCanceledException">A stop was requested (<see cref="Interruption"/>).</exception>
    public void Write(string name, ReadOnlySpan<float> values)
    {
        Interruption.ThrowIfRequested();
        var spec = Next(name, values.Length);
        if (!spec.DType.IsFloatingSupported())
            throw new ArgumentException($"Tensor '{name}' is stored as {spec.DType}; write its bytes with WriteRaw.", nameof(name));
        var type = spec.DType.ToDType();
        int size = spec.DType.SizeOf();
        const int chunk = 1 << 20;
        EnsureBuffer(chunk * size);
        for (int done = 0; done < values.Length; done += chunk)
        {
            int n = Math.Min(chunk, values.Length - done);
            DTypes.FromSingle(type, values.Slice(done, n), buffer.AsSpan(0, n * size));
            stream!.Write(buffer, 0, n * size);
        }
    }

    /// <summary>Writes the next tensor from its stored bytes.</summary>
    /// <exception cref="OperationCanceledException">A stop was requested (<see cref="Interruption"/>).</exception>
    public void WriteRaw(string name, ReadOnlySpan<byte> bytes)
    {
        Interruption.ThrowIfRequested();
        var spec = Current(name);
        if (bytes.Length != spec.ByteLength)
            throw new ArgumentException($"Tensor '{name}' needs {spec.ByteLength} bytes, got {bytes.Length}.", nameof(bytes));
        Advance();
        stream!.Write(bytes);
    }

    /// <summary>Checks every planned tensor was written, syncs the files and writes the index.</summary>
    public void Complete()
    {
        if (completed) return;
        int total = shards.Sum(s => s.Count);
        int written = shards.Take(Math.Max(shard, 0)).Sum(s => s.Count) + (shard >= 0 ? indexInShard : 0);
        if (written != total)
            throw new InvalidOperationException($"{total - written} of {total} planned tensors were not written.");
        // Empty shards (no tensors at all) still get a header.
        while (shard < shards.Count - 1) OpenNextShard();
        CloseShard();
        if (shards.Count > 1) WriteIndex();
        completed = true;
    }

    /// <summary>Closes the current file (an unfinished checkpoint is removed with its <see cref="OutputDirectory"/>).</summary>
    public void Dispose() => stream?.Dispose();

    private TensorSpec Next(string name, long elements)
    {
        var spec = Current(name);
        if (elements != spec.ElementCount)
            throw new ArgumentException($"Tensor '{name}' [{string.Join(", ", spec.Shape)}] has {spec.ElementCount} elements, got {elements}.", nameof(elements));
        Advance();
        return spec;
    }

    // The spec the next write must match.
    private TensorSpec Current(string name)
    {
        int s = shard, i = indexInShard;
        if (s < 0 || i >= shards[s].Count)
        {
            s++;
            i = 0;
            while (s < shards.Count && shards[s].Count == 0) s++;
        }
        if (s >= shards.Count) throw new InvalidOperationException($"Tensor '{name}' was not planned, or is written twice.");
        var spec = shards[s][i];
        if (spec.Name != name) throw new InvalidOperationException($"Expected tensor '{spec.Name}' next, got '{name}'.");
        return spec;
    }

    private void Advance()
    {
        while (shard < 0 || indexInShard >= shards[shard].Count) OpenNextShard();
        indexInShard++;
    }

    private void OpenNextShard()
    {
        CloseShard();
        shard++;
        indexInShard = 0;
        var specs = shards[shard];
        long offset = 0;
        var entries = new List<(string, TensorDType, IReadOnlyList<long>, long, long)>();
        foreach (var t in specs)
        {
            entries.Add((t.Name, t.DType, t.Shape, offset, offset + t.ByteLength));
            offset += t.ByteLength;
        }
        byte[] header = SafetensorsFile.EncodeHeader(options.Metadata, entries);
        stream = new FileStream(pathOf(fileNames[shard]), FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
        stream.Write(length);
        stream.Write(header);
    }

    private void CloseShard()
    {
        if (stream is null) return;
        stream.Flush(flushToDisk: true);
        stream.Dispose();
        stream = null;
    }

    private void WriteIndex()
    {
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int s = 0; s < shards.Count; s++)
            foreach (var t in shards[s]) weightMap[t.Name] = fileNames[s];
        var index = new Dictionary<string, object>
        {
            ["metadata"] = new Dictionary<string, long> { ["total_size"] = shards.Sum(s => s.Sum(t => t.ByteLength)) },
            ["weight_map"] = weightMap,
        };
        string json = JsonSerializer.Serialize(index, JsonFiles.Indented) + "\n";
        File.WriteAllText(pathOf($"{options.FilePrefix}.safetensors.index.json"), json, SafetensorsFile.Utf8);
    }

    private void EnsureBuffer(int bytes)
    {
        if (buffer.Length < bytes) buffer = new byte[bytes];
    }
}
