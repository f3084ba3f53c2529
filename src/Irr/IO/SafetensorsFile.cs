using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Text;
using System.Text.Json;
using Irr.Tensors;
using Microsoft.Win32.SafeHandles;

namespace Irr.IO;

/// <summary>One tensor's entry in a safetensors header.</summary>
public sealed class TensorInfo
{
    internal TensorInfo(string name, TensorDType dtype, long[] shape, long elementCount, long begin, long end)
    {
        Name = name;
        DType = dtype;
        this.shape = shape;
        ElementCount = elementCount;
        Begin = begin;
        End = end;
    }

    private readonly long[] shape;

    /// <summary>The tensor's name, e.g. <c>model.layers.0.self_attn.q_proj.weight</c>.</summary>
    public string Name { get; }

    /// <summary>Storage type.</summary>
    public TensorDType DType { get; }

    /// <summary>Dimensions, outermost first (a weight is <c>[out, in]</c>).</summary>
    public IReadOnlyList<long> Shape => shape;

    /// <summary>Number of elements (1 for a scalar).</summary>
    public long ElementCount { get; }

    /// <summary>Start of the data, relative to the data section.</summary>
    public long Begin { get; }

    /// <summary>End of the data (exclusive), relative to the data section.</summary>
    public long End { get; }

    /// <summary>Bytes of data.</summary>
    public long ByteLength => End - Begin;

    /// <summary>Rows: the first dimension (1 for a scalar).</summary>
    public long Rows => shape.Length == 0 ? 1 : shape[0];

    /// <summary>Elements per row: the product of the dimensions after the first.</summary>
    public long RowLength => shape.Length == 0 || shape[0] == 0 ? ElementCount : ElementCount / shape[0];

    /// <summary>The shape as text, e.g. <c>[4096, 11008]</c>.</summary>
    public string ShapeText => "[" + string.Join(", ", shape) + "]";

    /// <inheritdoc/>
    public override string ToString() => $"{Name} {DType} {ShapeText}";
}

/// <summary>
/// A safetensors file opened for reading. Opening reads and validates only the header; tensor data
/// is memory-mapped one tensor (or row range) at a time when read and unmapped afterwards, so three
/// or four 13 GB models can be streamed side by side in bounded memory.
/// </summary>
/// <remarks>
/// Format (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N,
/// N bytes of JSON <c>{"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [begin, end]}}</c>,
/// then the data section, which the offsets index. The header is validated completely before any
/// tensor is trusted: its length (≤ 100 MB and within the file), JSON syntax, duplicate names, dtype
/// names, shapes, and offsets (inside the data section, matching shape × element size, no overlaps).
/// Every problem is an <see cref="IrrException"/> naming the file and, where there is one, the tensor.
/// </remarks>
public sealed unsafe class SafetensorsFile : ITensorFile
{
    /// <summary>Largest header accepted, as in the reference implementation.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private readonly SafeFileHandle handle;
    private readonly Dictionary<string, TensorInfo> byName;
    private MemoryMappedFile? map;
    private readonly Lock mapLock = new();

    private SafetensorsFile(string path, SafeFileHandle handle, long fileLength, long dataStart,
        IReadOnlyDictionary<string, string> metadata, List<TensorInfo> tensors)
    {
        Path = path;
        this.handle = handle;
        FileLength = fileLength;
        DataStart = dataStart;
        Metadata = metadata;
        Tensors = tensors;
        byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>The path the file was opened with.</summary>
    public string Path { get; }

    /// <summary>Size of the file in bytes.</summary>
    public long FileLength { get; }

    /// <summary>Offset of the data section in the file (8 + header length).</summary>
    public long DataStart { get; }

    /// <summary>The <c>__metadata__</c> entries (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The tensors in header order.</summary>
    public IReadOnlyList<TensorInfo> Tensors { get; }

    /// <summary>Whether the file holds a tensor of that name.</summary>
    public bool Contains(string name) => byName.ContainsKey(name);

    /// <summary>Looks a tensor up by name.</summary>
    public bool TryGet(string name, out TensorInfo info) => byName.TryGetValue(name, out info!);

    /// <summary>The tensor of that name; an <see cref="IrrException"/> if there is none.</summary>
    public TensorInfo Get(string name) =>
        byName.TryGetValue(name, out var info) ? info : throw new IrrException($"{Path}: no tensor '{name}'");

    /// <summary>Opens a file and validates its header. The data is not read.</summary>
    public static SafetensorsFile Open(string path)
    {
        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IrrException($"{path}: cannot open: {e.Message}", e);
        }
        try
        {
            long length = RandomAccess.GetLength(handle);
            var (metadata, tensors, dataStart) = ReadHeader(path, handle, length);
            return new SafetensorsFile(path, handle, length, dataStart, metadata, tensors);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public bool TryGetTensor(string name, out TensorDType dtype, out IReadOnlyList<long> shape)
    {
        if (byName.TryGetValue(name, out var info)) { dtype = info.DType; shape = info.Shape; return true; }
        dtype = default;
        shape = [];
        return false;
    }

    /// <summary>Reads a whole tensor converted to float32.</summary>
    public float[] ReadSingle(string name)
    {
        var info = Get(name);
        var values = new float[checked((int)info.ElementCount)];
        ReadSingle(info, values);
        return values;
    }

    /// <summary>Reads a whole tensor converted to float32 into <paramref name="destination"/> (exactly its element count).</summary>
    public void ReadSingle(TensorInfo info, Span<float> destination) => ReadRowsSingle(info, 0, info.Rows, destination);

    /// <summary>
    /// Reads rows <c>[firstRow, firstRow + rowCount)</c> of a tensor (rows along its first
    /// dimension) converted to float32, so one matrix or part of one can be loaded alone.
    /// </summary>
    public void ReadRowsSingle(TensorInfo info, long firstRow, long rowCount, Span<float> destination)
    {
        if (!info.DType.IsFloatingSupported())
            throw new IrrException($"{Path}: tensor '{info.Name}': unsupported dtype {info.DType} (irr computes with F32, F16 and BF16)");
        CheckRows(info, firstRow, rowCount);
        long count = rowCount * info.RowLength;
        if (destination.Length != count)
            throw new ArgumentException($"Destination holds {destination.Length} floats; rows {firstRow}..{firstRow + rowCount} of '{info.Name}' are {count}.", nameof(destination));
        if (count == 0) return;
        int size = info.DType.SizeOf();
        var type = info.DType.ToDType();
        using var view = MapView(info.Begin + firstRow * info.RowLength * size, count * size);
        const int chunk = 1 << 20; // elements per conversion call
        for (long done = 0; done < count; done += chunk)
        {
            int n = (int)Math.Min(chunk, count - done);
            DTypes.ToSingle(type, new ReadOnlySpan<byte>(view.Pointer + done * size, n * size), destination.Slice((int)done, n));
        }
    }

    /// <summary>Copies a tensor's stored bytes (no conversion) to <paramref name="destination"/>.</summary>
    public void CopyRawTo(TensorInfo info, Stream destination)
    {
        const int chunk = 1 << 22;
        var buffer = new byte[(int)Math.Min(chunk, Math.Max(1, info.ByteLength))];
        for (long done = 0; done < info.ByteLength;)
        {
            int n = (int)Math.Min(buffer.Length, info.ByteLength - done);
            int read = RandomAccess.Read(handle, buffer.AsSpan(0, n), DataStart + info.Begin + done);
            if (read <= 0) throw new IrrException($"{Path}: tensor '{info.Name}': file ends before its data");
            destination.Write(buffer, 0, read);
            done += read;
        }
    }

    /// <summary>Releases the file and any mapping.</summary>
    public void Dispose()
    {
        map?.Dispose();
        handle.Dispose();
    }

    private void CheckRows(TensorInfo info, long firstRow, long rowCount)
    {
        if (firstRow < 0 || rowCount < 0 || firstRow + rowCount > info.Rows)
            throw new ArgumentOutOfRangeException(nameof(firstRow), $"Rows {firstRow}..{firstRow + rowCount} are outside '{info.Name}' {info.ShapeText}.");
    }

    // Maps [dataStart + begin, +length) until the view is disposed, which unmaps it, so the pages
    // do not stay in this process's working set.
    private View MapView(long begin, long length)
    {
        MemoryMappedFile m;
        lock (mapLock)
            m = map ??= MemoryMappedFile.CreateFromFile(handle, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: true);
        return new View(m.CreateViewAccessor(DataStart + begin, length, MemoryMappedFileAccess.Read));
    }

    private readonly struct View : IDisposable
    {
        private readonly MemoryMappedViewAccessor accessor;

        public View(MemoryMappedViewAccessor accessor)
        {
            this.accessor = accessor;
            byte* p = null;
            accessor.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            Pointer = p + accessor.PointerOffset;
        }

        public byte* Pointer { get; }

        public void Dispose()
        {
            accessor.SafeMemoryMappedViewHandle.ReleasePointer();
            accessor.Dispose();
        }
    }

    // ---- header ------------------------------------------------------------------------------

    private static (IReadOnlyDictionary<string, string>, List<TensorInfo>, long) ReadHeader(string path, SafeFileHandle handle, long fileLength)
    {
        if (fileLength < 8)
            throw new IrrException($"{path}: not a safetensors file: {fileLength} bytes, shorter than the 8-byte header length");
        Span<byte> prefix = stackalloc byte[8];
        ReadExactly(path, handle, prefix, 0);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > MaxHeaderBytes)
            throw new IrrException($"{path}: header length {headerLength} bytes exceeds the 100 MB limit (corrupt or not a safetensors file)");
        if ((long)headerLength > fileLength - 8)
            throw new IrrException($"{path}: header length {headerLength} bytes runs past the end of the {fileLength}-byte file (truncated?)");
        var json = new byte[headerLength];
        ReadExactly(path, handle, json, 8);
        long dataStart = 8 + (long)headerLength;
        long dataLength = fileLength - dataStart;

        if (!System.Text.Unicode.Utf8.IsValid(json))
            throw new IrrException($"{path}: header is not valid UTF-8 (corrupt or not a safetensors file)");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new IrrException($"{path}: header is not valid JSON: {e.Message}", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new IrrException($"{path}: header is JSON but not an object");
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var tensors = new List<TensorInfo>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                    throw new IrrException($"{path}: header names '{property.Name}' twice");
                if (property.Name == "__metadata__")
                    ReadMetadata(path, property.Value, metadata);
                else
                    tensors.Add(ReadTensor(path, property.Name, property.Value, dataLength));
            }
            CheckOverlaps(path, tensors);
            return (metadata, tensors, dataStart);
        }
    }

    private static void ReadMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new IrrException($"{path}: __metadata__ must be an object of strings");
        foreach (var entry in value.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw new IrrException($"{path}: __metadata__ entry '{entry.Name}' is not a string");
            metadata[entry.Name] = entry.Value.GetString()!;
        }
    }

    private static TensorInfo ReadTensor(string path, string name, JsonElement value, long dataLength)
    {
        string where = $"{path}: tensor '{name}'";
        if (value.ValueKind != JsonValueKind.Object)
            throw new IrrException($"{where}: entry is not an object");
        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw new IrrException($"{where}: missing or non-string \"dtype\"");
        string dtypeName = dtypeElement.GetString()!;
        if (!TensorDTypes.TryParse(dtypeName, out var dtype))
            throw new IrrException($"{where}: unknown dtype '{dtypeName}'");

        if (!value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw new IrrException($"{where}: missing or non-array \"shape\"");
        var shape = new long[shapeElement.GetArrayLength()];
        long count = 1;
        int i = 0;
        foreach (var dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out long d) || d < 0)
                throw new IrrException($"{where}: shape entry {i} is not a non-negative integer");
            shape[i++] = d;
            try { count = checked(count * d); }
            catch (OverflowException) { throw new IrrException($"{where}: shape [{string.Join(", ", shape.Take(i))}…] has too many elements"); }
        }

        if (!value.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
            throw new IrrException($"{where}: \"data_offsets\" must be [begin, end]");
        if (!offsets[0].TryGetInt64(out long begin) || !offsets[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            throw new IrrException($"{where}: data_offsets [{offsets[0]}, {offsets[1]}] are not 0 ≤ begin ≤ end");
        if (end > dataLength)
            throw new IrrException($"{where}: data_offsets [{begin}, {end}] run past the {dataLength}-byte data section (truncated file?)");
        long expected;
        try { expected = checked(count * dtype.SizeOf()); }
        catch (OverflowException) { throw new IrrException($"{where}: shape has too many elements"); }
        if (end - begin != expected)
            throw new IrrException($"{where}: {dtype} [{string.Join(", ", shape)}] needs {expected} bytes but data_offsets [{begin}, {end}] hold {end - begin}");
        return new TensorInfo(name, dtype, shape, count, begin, end);
    }

    private static void CheckOverlaps(string path, List<TensorInfo> tensors)
    {
        TensorInfo? previous = null;
        foreach (var t in tensors.Where(t => t.ByteLength > 0).OrderBy(t => t.Begin))
        {
            if (previous is not null && t.Begin < previous.End)
                throw new IrrException($"{path}: tensors '{previous.Name}' [{previous.Begin}, {previous.End}) and '{t.Name}' [{t.Begin}, {t.End}) overlap");
            previous = t;
        }
    }

    private static void ReadExactly(string path, SafeFileHandle handle, Span<byte> buffer, long offset)
    {
        while (buffer.Length > 0)
        {
            int n = RandomAccess.Read(handle, buffer, offset);
            if (n <= 0) throw new IrrException($"{path}: file ends at byte {offset} inside the header (truncated?)");
            buffer = buffer[n..];
            offset += n;
        }
    }

    /// <summary>Header JSON in the layout the writer uses, exposed for tests and the writer.</summary>
    internal static byte[] EncodeHeader(IReadOnlyDictionary<string, string>? metadata, IEnumerable<(string Name, TensorDType DType, IReadOnlyList<long> Shape, long Begin, long End)> tensors)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            foreach (var t in tensors)
            {
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", t.DType.ToString());
                w.WriteStartArray("shape");
                foreach (long d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(t.Begin);
                w.WriteNumberValue(t.End);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
        int padded = (int)((stream.Length + 7) / 8 * 8);
        while (stream.Length < padded) stream.WriteByte((byte)' ');
        return stream.ToArray();
    }

    internal static readonly Encoding Utf8 = new UTF8Encoding(false);
}
