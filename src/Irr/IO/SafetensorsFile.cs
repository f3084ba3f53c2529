using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Irr.Tensors;

namespace Irr.IO;

/// <summary>One tensor's entry in a safetensors header: its byte range in the data section.</summary>
public sealed class TensorInfo : TensorEntry
{
    internal TensorInfo(string name, TensorDType dtype, long[] shape, long elementCount, long begin, long end)
        : base(name, dtype, shape, elementCount)
    {
        Begin = begin;
        End = end;
    }

    /// <summary>Start of the data, relative to the data section.</summary>
    public long Begin { get; }

    /// <summary>End of the data (exclusive), relative to the data section.</summary>
    public long End { get; }

    /// <summary>Bytes of data.</summary>
    public long ByteLength => End - Begin;
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
public sealed class SafetensorsFile : ITensorFile
{
    /// <summary>
    /// Largest header accepted, in bytes: <c>IRR_MAX_SAFETENSORS_HEADER</c>, 100,000,000 by default as in the reference
    /// implementation (a 7B Llama's header is ~30 KB).
    /// </summary>
    public static long MaxHeaderBytes => Limits.Get(HeaderVariable, 100_000_000);

    private const string HeaderVariable = "IRR_MAX_SAFETENSORS_HEADER";

    private readonly MappedFile file;
    private readonly Dictionary<string, TensorInfo> byName;

    private SafetensorsFile(MappedFile file, long dataStart, IReadOnlyDictionary<string, string> metadata, List<TensorInfo> tensors)
    {
        this.file = file;
        DataStart = dataStart;
        Metadata = metadata;
        Tensors = tensors;
        byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>The path the file was opened with.</summary>
    public string Path => file.Path;

    /// <summary>Size of the file in bytes.</summary>
    public long FileLength => file.Length;

    /// <summary>Offset of the data section in the file (8 + header length).</summary>
    public long DataStart { get; }

    /// <summary>The <c>__metadata__</c> entries (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The tensors in header order.</summary>
    public IReadOnlyList<TensorInfo> Tensors { get; }

    IReadOnlyList<TensorEntry> ITensorFile.Tensors => Tensors;

    /// <summary>Whether the file holds a tensor of that name.</summary>
    public bool Contains(string name) => byName.ContainsKey(name);

    /// <summary>Looks a tensor up by name.</summary>
    public bool TryGet(string name, out TensorInfo info) => byName.TryGetValue(name, out info!);

    /// <inheritdoc/>
    public bool TryGetEntry(string name, out TensorEntry entry)
    {
        bool found = byName.TryGetValue(name, out var info);
        entry = info!;
        return found;
    }

    /// <summary>The tensor of that name; an <see cref="IrrException"/> if there is none.</summary>
    public TensorInfo Get(string name) =>
        byName.TryGetValue(name, out var info) ? info : throw new IrrException($"{Path}: no tensor '{name}'");

    /// <summary>Opens a file and validates its header. The data is not read.</summary>
    public static SafetensorsFile Open(string path)
    {
        var file = MappedFile.Open(path);
        try
        {
            var (metadata, tensors, dataStart) = ReadHeader(file);
            return new SafetensorsFile(file, dataStart, metadata, tensors);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads rows <c>[firstRow, firstRow + rowCount)</c> of a tensor (rows along its first
    /// dimension) converted to float32, so one matrix or part of one can be loaded alone.
    /// Each call maps only those bytes, and unmaps them afterwards.
    /// </summary>
    public void ReadRowsSingle(TensorEntry entry, long firstRow, long rowCount, Span<float> destination)
    {
        var info = entry as TensorInfo ?? throw new ArgumentException($"'{entry.Name}' is not a tensor of {Path}", nameof(entry));
        if (!info.DType.IsFloatingSupported() && info.DType != TensorDType.F64)
            throw new IrrException($"{Path}: tensor '{info.Name}': unsupported dtype {info.DType} (irr reads F32, F16, BF16 and F64 as float32)");
        TensorFiles.CheckRows(info, firstRow, rowCount, destination.Length);
        long count = rowCount * info.RowLength;
        if (count == 0) return;
        int size = info.DType.SizeOf();
        using var view = file.Map(DataStart + info.Begin + firstRow * info.RowLength * size, count * size);
        view.ToSingle(info.DType, 0, destination[..(int)count]);
    }

    /// <summary>Copies a tensor's stored bytes (no conversion) to <paramref name="destination"/>.</summary>
    public void CopyRawTo(TensorInfo info, Stream destination) =>
        file.CopyTo(DataStart + info.Begin, info.ByteLength, destination, $"tensor '{info.Name}'");

    /// <summary>Releases the file and any mapping.</summary>
    public void Dispose() => file.Dispose();

    // ---- header ------------------------------------------------------------------------------

    private static (IReadOnlyDictionary<string, string>, List<TensorInfo>, long) ReadHeader(MappedFile file)
    {
        string path = file.Path;
        long fileLength = file.Length;
        if (fileLength < 8)
            throw new IrrException($"{path}: not a safetensors file: {fileLength} bytes, shorter than the 8-byte header length");
        Span<byte> prefix = stackalloc byte[8];
        ReadExactly(file, prefix, 0);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        long maxHeader = MaxHeaderBytes;
        if (headerLength > (ulong)maxHeader)
            throw Limits.Exceeded(path, $"the header length of {headerLength} bytes (corrupt or not a safetensors file?)", HeaderVariable, maxHeader);
        if ((long)headerLength > fileLength - 8)
            throw new IrrException($"{path}: header length {headerLength} bytes runs past the end of the {fileLength}-byte file (truncated?)");
        var json = new byte[headerLength];
        ReadExactly(file, json, 8);
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
            throw new IrrException($"{path}: header is not valid JSON {JsonFiles.Describe(e)}", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new IrrException($"{path}: header is JSON but not an object");
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var tensors = new List<TensorInfo>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            long maxTensors = TensorLimits.Count;
            try
            {
                foreach (var property in doc.RootElement.EnumerateObject())
                {
                    string name = property.Name;
                    // Control characters are kept (the safetensors library reads any string; they are escaped where shown);
                    // a lone surrogate is no Unicode at all.
                    if (!InputFile.IsValidUnicode(name))
                        throw new IrrException($"{path}: header names '{InputFile.Escape(name)}', which is not valid Unicode (a lone surrogate)");
                    if (!seen.Add(name))
                        throw new IrrException($"{path}: header names '{InputFile.Escape(name)}' twice");
                    if (name == "__metadata__")
                        ReadMetadata(path, property.Value, metadata);
                    else if (tensors.Count >= maxTensors)
                        throw Limits.Exceeded(path, "the number of tensors", TensorLimits.CountVariable, maxTensors);
                    else
                        tensors.Add(ReadTensor(path, name, property.Value, dataLength));
                }
            }
            catch (InvalidOperationException e)
            {
                // System.Text.Json reads a lone surrogate escape (\ud800) but cannot make a string of it; serde_json, which
                // the reference implementation parses with, refuses it too.
                throw new IrrException($"{path}: header holds a string that is not valid Unicode (a lone surrogate escape such as \\ud800): {InputFile.Escape(e.Message)}", e);
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
            if (!InputFile.IsValidUnicode(entry.Name))
                throw new IrrException($"{path}: __metadata__ has a key '{InputFile.Escape(entry.Name)}' that is not valid Unicode (a lone surrogate)");
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw new IrrException($"{path}: __metadata__ entry '{InputFile.Escape(entry.Name)}' is not a string");
            metadata[entry.Name] = entry.Value.GetString()!;
        }
    }

    private static TensorInfo ReadTensor(string path, string name, JsonElement value, long dataLength)
    {
        string where = $"{path}: tensor '{InputFile.Escape(name)}'";
        if (value.ValueKind != JsonValueKind.Object)
            throw new IrrException($"{where}: entry is not an object");
        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw new IrrException($"{where}: missing or non-string \"dtype\"");
        string dtypeName = dtypeElement.GetString()!;
        if (!TensorDTypes.TryParse(dtypeName, out var dtype))
            throw new IrrException($"{where}: unknown dtype '{InputFile.Escape(dtypeName)}'");

        if (!value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw new IrrException($"{where}: missing or non-array \"shape\"");
        if (shapeElement.GetArrayLength() > TensorLimits.Rank)
            throw Limits.Exceeded(where, $"the number of dimensions ({shapeElement.GetArrayLength()})", TensorLimits.RankVariable, TensorLimits.Rank);
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
        long begin = 0, end = 0;
        if (offsets[0].ValueKind != JsonValueKind.Number || offsets[1].ValueKind != JsonValueKind.Number ||
            !offsets[0].TryGetInt64(out begin) || !offsets[1].TryGetInt64(out end) || begin < 0 || end < begin)
            throw new IrrException($"{where}: data_offsets [{InputFile.Escape(offsets[0].GetRawText(), 40)}, {InputFile.Escape(offsets[1].GetRawText(), 40)}] are not 0 ≤ begin ≤ end");
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
                throw new IrrException($"{path}: tensors '{InputFile.Escape(previous.Name)}' [{previous.Begin}, {previous.End}) and '{InputFile.Escape(t.Name)}' [{t.Begin}, {t.End}) overlap");
            previous = t;
        }
    }

    private static void ReadExactly(MappedFile file, Span<byte> buffer, long offset)
    {
        if (!file.TryRead(buffer, offset))
            throw new IrrException($"{file.Path}: file ends inside the header (truncated?)");
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
