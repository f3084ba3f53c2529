using System.IO.MemoryMappedFiles;
using Microsoft.Win32.SafeHandles;

namespace Irr.IO;

/// <summary>One tensor of a weight file: its name, element type and shape, whatever the file format.</summary>
public abstract class TensorEntry
{
    private protected TensorEntry(string name, TensorDType dtype, long[] shape, long elementCount)
    {
        Name = name;
        DType = dtype;
        this.shape = shape;
        ElementCount = elementCount;
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

    /// <summary>Rows: the first dimension (1 for a scalar).</summary>
    public long Rows => shape.Length == 0 ? 1 : shape[0];

    /// <summary>Elements per row: the product of the dimensions after the first.</summary>
    public long RowLength => shape.Length == 0 || shape[0] == 0 ? ElementCount : ElementCount / shape[0];

    /// <summary>"[a, b]".</summary>
    public string ShapeText => "[" + string.Join(", ", shape) + "]";

    /// <inheritdoc/>
    public override string ToString() => $"{Name} {DType} {ShapeText}";
}

/// <summary>A tensor of another file read under another name (<see cref="TensorNames"/>).</summary>
internal sealed class RenamedEntry(string name, TensorEntry inner) : TensorEntry(name, inner.DType, [.. inner.Shape], inner.ElementCount)
{
    public TensorEntry Inner { get; } = inner;
}

/// <summary>
/// A file of named tensors: a safetensors file or a PyTorch state dict (<c>torch.save</c>, zip or legacy format).
/// Model weights, safety vectors and Fisher matrices are read through it, whichever format they were saved in.
/// </summary>
public interface ITensorFile : IDisposable
{
    /// <summary>The file's path, for messages.</summary>
    string Path { get; }

    /// <summary>Size of the file in bytes.</summary>
    long FileLength { get; }

    /// <summary>The tensors (a safetensors file's header order; a state dict's names in ordinal order).</summary>
    IReadOnlyList<TensorEntry> Tensors { get; }

    /// <summary>The tensor's entry; false when the file has no such tensor.</summary>
    bool TryGetEntry(string name, out TensorEntry entry);

    /// <summary>
    /// Reads rows <c>[firstRow, firstRow + rowCount)</c> (along the first dimension) of a tensor of this file,
    /// converted to float32, into <paramref name="destination"/> (exactly <c>rowCount × RowLength</c> floats).
    /// </summary>
    /// <exception cref="IrrException">The tensor is not of a float type irr computes with, or its data cannot be read.</exception>
    void ReadRowsSingle(TensorEntry entry, long firstRow, long rowCount, Span<float> destination);
}

/// <summary>
/// Budgets on a tensor file's entries (docs/formats.md, "Pickles and tensor containers"), whatever the container.
/// </summary>
internal static class TensorLimits
{
    /// <summary>The environment variable of <see cref="Rank"/>.</summary>
    public const string RankVariable = "IRR_MAX_TENSOR_RANK";

    /// <summary>The environment variable of <see cref="Count"/>.</summary>
    public const string CountVariable = "IRR_MAX_TENSORS";

    /// <summary>The most dimensions a tensor may have: 64 by default (a weight has 1 to 4; PyTorch's own limit is 64 for most operations).</summary>
    public static long Rank => Limits.Get(RankVariable, 64);

    /// <summary>
    /// The most tensors one safetensors file may hold: 300,000 by default (a 7B Llama has 291, DeepSeek-V3's 163 shards
    /// ~92,000 in all); a header of that many entries takes ~0.5 GB to read.
    /// </summary>
    public static long Count => Limits.Get(CountVariable, 300_000);
}

/// <summary>Reading helpers shared by every <see cref="ITensorFile"/>, and opening one by its content.</summary>
public static class TensorFiles
{
    /// <summary>The tensor's storage type and shape; false when the file has no such tensor.</summary>
    public static bool TryGetTensor(this ITensorFile file, string name, out TensorDType dtype, out IReadOnlyList<long> shape)
    {
        if (file.TryGetEntry(name, out var entry)) { dtype = entry.DType; shape = entry.Shape; return true; }
        dtype = default;
        shape = [];
        return false;
    }

    /// <summary>The tensor's entry; an <see cref="IrrException"/> naming the file and tensor when absent.</summary>
    public static TensorEntry Entry(this ITensorFile file, string name) =>
        file.TryGetEntry(name, out var entry) ? entry : throw new IrrException($"{file.Path}: no tensor '{name}'");

    /// <summary>Reads a whole tensor converted to float32 into <paramref name="destination"/> (exactly its element count).</summary>
    public static void ReadSingle(this ITensorFile file, TensorEntry entry, Span<float> destination) =>
        file.ReadRowsSingle(entry, 0, entry.Rows, destination);

    /// <summary>Reads a whole tensor converted to float32; an error naming it when absent or not of a float type.</summary>
    public static float[] ReadSingle(this ITensorFile file, string name)
    {
        var entry = file.Entry(name);
        var values = new float[checked((int)entry.ElementCount)];
        file.ReadRowsSingle(entry, 0, entry.Rows, values);
        return values;
    }

    /// <summary>
    /// Opens <paramref name="path"/> by its content: a zip archive or a pickle is a PyTorch file
    /// (<see cref="TorchFile"/>, <c>torch.save</c> in the zip format of torch ≥ 1.6 or the legacy one), anything else
    /// a <see cref="SafetensorsFile"/>.
    /// </summary>
    public static ITensorFile Open(string path)
    {
        if (Directory.Exists(path))
            throw new IrrException($"{path}: is a directory, not a file of tensors (safetensors or a torch.save state dict); a model directory is no safety vector or Fisher");
        Span<byte> head = stackalloc byte[4];
        int n;
        try
        {
            using var stream = InputFile.OpenRead(path);
            n = stream.ReadAtLeast(head, 4, throwOnEndOfStream: false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IrrException($"{path}: cannot read: {e.Message}", e);
        }
        if (TorchFile.IsTorchFile(head[..n])) return TorchFile.Open(path);
        if (n == 0) throw new IrrException($"{path}: an empty file (neither a safetensors file nor a PyTorch state dict)");
        string extension = System.IO.Path.GetExtension(path).ToLowerInvariant();
        if (extension is ".pt" or ".pth" or ".bin" or ".ckpt")
            throw new IrrException($"{path}: not a PyTorch file (neither a zip archive nor a pickle), nor a safetensors file");
        return SafetensorsFile.Open(path);
    }

    internal static void CheckRows(TensorEntry entry, long firstRow, long rowCount, int destinationLength)
    {
        if (firstRow < 0 || rowCount < 0 || firstRow + rowCount > entry.Rows)
            throw new ArgumentOutOfRangeException(nameof(firstRow), $"Rows {firstRow}..{firstRow + rowCount} are outside '{entry.Name}' {entry.ShapeText}.");
        long count = rowCount * entry.RowLength;
        if (destinationLength != count)
            throw new ArgumentException($"Destination holds {destinationLength} floats; rows {firstRow}..{firstRow + rowCount} of '{entry.Name}' are {count}.", "destination");
    }
}

/// <summary>
/// A read-only file whose byte ranges are memory-mapped on demand and unmapped when the view is disposed, so
/// several multi-gigabyte checkpoints can be streamed side by side in bounded memory.
/// </summary>
internal sealed unsafe class MappedFile : IDisposable
{
    private readonly SafeFileHandle handle;
    private MemoryMappedFile? map;
    private readonly Lock mapLock = new();

    private MappedFile(string path, SafeFileHandle handle)
    {
        Path = path;
        this.handle = handle;
        Length = RandomAccess.GetLength(handle);
    }

    public string Path { get; }

    public long Length { get; }

    /// <summary>Opens <paramref name="path"/> for reading; an <see cref="IrrException"/> naming it when it cannot be.</summary>
    public static MappedFile Open(string path)
    {
        InputFile.RequireRegular(path);
        try
        {
            return new MappedFile(path, File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IrrException($"{path}: cannot open: {e.Message}", e);
        }
    }

    /// <summary>Reads exactly <paramref name="buffer"/>.Length bytes at <paramref name="offset"/>; false when the file ends first.</summary>
    public bool TryRead(Span<byte> buffer, long offset)
    {
        while (buffer.Length > 0)
        {
            int n = RandomAccess.Read(handle, buffer, offset);
            if (n <= 0) return false;
            buffer = buffer[n..];
            offset += n;
        }
        return true;
    }

    /// <summary>Reads exactly <paramref name="buffer"/>.Length bytes at <paramref name="offset"/>; an error naming <paramref name="what"/> when the file ends first.</summary>
    public void Read(Span<byte> buffer, long offset, string what)
    {
        if (!TryRead(buffer, offset))
            throw new IrrException($"{Path}: file ends inside {what} (truncated?)");
    }

    /// <summary>Maps <c>[begin, begin + length)</c> until the view is disposed.</summary>
    public View Map(long begin, long length)
    {
        MemoryMappedFile m;
        lock (mapLock)
            m = map ??= MemoryMappedFile.CreateFromFile(handle, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: true);
        return new View(m.CreateViewAccessor(begin, length, MemoryMappedFileAccess.Read));
    }

    /// <summary>Copies <paramref name="length"/> bytes at <paramref name="offset"/> to <paramref name="destination"/>.</summary>
    public void CopyTo(long offset, long length, Stream destination, string what)
    {
        var buffer = new byte[(int)Math.Min(1 << 22, Math.Max(1, length))];
        for (long done = 0; done < length;)
        {
            int n = (int)Math.Min(buffer.Length, length - done);
            Read(buffer.AsSpan(0, n), offset + done, what);
            destination.Write(buffer, 0, n);
            done += n;
        }
    }

    public void Dispose()
    {
        map?.Dispose();
        handle.Dispose();
    }

    public readonly struct View : IDisposable
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

        public ReadOnlySpan<byte> Span(long offset, int length) => new(Pointer + offset, length);

        /// <summary>
        /// Converts <paramref name="destination"/>.Length elements of type <paramref name="dtype"/> (F32, F16, BF16 or F64)
        /// starting at byte <paramref name="offset"/> of the view to float32.
        /// </summary>
        public void ToSingle(TensorDType dtype, long offset, Span<float> destination)
        {
            const int chunk = 1 << 20; // elements per conversion call
            int size = dtype.SizeOf();
            for (int done = 0; done < destination.Length; done += chunk)
            {
                int n = Math.Min(chunk, destination.Length - done);
                var bytes = Span(offset + (long)done * size, n * size);
                var target = destination.Slice(done, n);
                if (dtype == TensorDType.F64)
                {
                    var d = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(bytes);
                    for (int i = 0; i < n; i++) target[i] = (float)d[i];
                }
                else
                {
                    Irr.Tensors.DTypes.ToSingle(dtype.ToDType(), bytes, target);
                }
            }
        }

        public void Dispose()
        {
            accessor.SafeMemoryMappedViewHandle.ReleasePointer();
            accessor.Dispose();
        }
    }
}
