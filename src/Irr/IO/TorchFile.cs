using System.Collections;
using System.IO.Compression;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Text;
using Irr.Tensors;
using Razorvine.Pickle;

namespace Irr.IO;

/// <summary>
/// A file of named tensors read as float32: a safetensors file or a PyTorch state dict. Safety
/// vectors and Fisher matrices are read through it, whichever format they were saved in.
/// </summary>
public interface ITensorFile : IDisposable
{
    /// <summary>The file's path, for messages.</summary>
    string Path { get; }

    /// <summary>The tensor's storage type and shape; false when the file has no such tensor.</summary>
    bool TryGetTensor(string name, out TensorDType dtype, out IReadOnlyList<long> shape);

    /// <summary>Reads a whole tensor converted to float32; an error naming it when its type is not a float type.</summary>
    float[] ReadSingle(string name);
}

/// <summary>Opens a tensor file by its content: a zip archive is a PyTorch state dict, anything else safetensors.</summary>
public static class TensorFiles
{
    /// <summary>Opens <paramref name="path"/> as a <see cref="TorchFile"/> (zip, <c>torch.save</c> since 1.6) or a <see cref="SafetensorsFile"/>.</summary>
    public static ITensorFile Open(string path)
    {
        Span<byte> head = stackalloc byte[4];
        int n;
        try
        {
            using var stream = File.OpenRead(path);
            n = stream.ReadAtLeast(head, 4, throwOnEndOfStream: false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IrrException($"{path}: cannot read: {e.Message}", e);
        }
        if (n == 4 && head[0] == (byte)'P' && head[1] == (byte)'K' && head[2] == 3 && head[3] == 4) return TorchFile.Open(path);
        if (n >= 2 && head[0] == 0x80 && head[1] <= 5)
            throw new IrrException($"{path}: a PyTorch file in the legacy format (before torch 1.6) is not read yet; re-save it with torch.save in a current torch, or convert it to safetensors");
        return SafetensorsFile.Open(path);
    }
}

/// <summary>One tensor of a PyTorch state dict: a view (offset, shape, strides in elements) of a storage.</summary>
public sealed class TorchTensorInfo
{
    internal TorchTensorInfo(string name, TorchStorage storage, long offset, long[] shape, long[] strides, long elementCount)
    {
        Name = name;
        Storage = storage;
        StorageOffset = offset;
        this.shape = shape;
        this.strides = strides;
        ElementCount = elementCount;
    }

    private readonly long[] shape, strides;

    /// <summary>The state-dict key.</summary>
    public string Name { get; }

    /// <summary>The storage the tensor views (shared when several tensors view one storage).</summary>
    public TorchStorage Storage { get; }

    /// <summary>Element type.</summary>
    public TensorDType DType => Storage.DType;

    /// <summary>Offset of the first element in the storage, in elements.</summary>
    public long StorageOffset { get; }

    /// <summary>Dimensions.</summary>
    public IReadOnlyList<long> Shape => shape;

    /// <summary>Strides in elements, one per dimension.</summary>
    public IReadOnlyList<long> Strides => strides;

    /// <summary>Number of elements (product of the shape).</summary>
    public long ElementCount { get; }

    /// <summary>"[a, b]".</summary>
    public string ShapeText => "[" + string.Join(", ", shape) + "]";

    /// <summary>Whether the view is row-major contiguous.</summary>
    public bool IsContiguous
    {
        get
        {
            long expected = 1;
            for (int d = shape.Length - 1; d >= 0; d--)
            {
                if (shape[d] != 1 && strides[d] != expected) return false;
                expected *= shape[d];
            }
            return true;
        }
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Name} {DType} {ShapeText}";
}

/// <summary>A storage of a PyTorch archive: the entry <c>ARCHIVE/data/KEY</c>.</summary>
public sealed class TorchStorage
{
    internal TorchStorage(string key, TensorDType dtype, long elementCount, string entryName)
    {
        Key = key;
        DType = dtype;
        ElementCount = elementCount;
        EntryName = entryName;
    }

    /// <summary>The storage key (the file name under <c>data/</c>).</summary>
    public string Key { get; }

    /// <summary>Element type.</summary>
    public TensorDType DType { get; }

    /// <summary>Number of elements.</summary>
    public long ElementCount { get; }

    internal string EntryName { get; }
}

/// <summary>
/// A PyTorch state dict saved by <c>torch.save</c> in the zip format (torch ≥ 1.6, the default):
/// <c>ARCHIVE/data.pkl</c> (the pickled dict) and <c>ARCHIVE/data/KEY</c> (raw little-endian storages).
/// The pickle is read safely, as <c>torch.load(weights_only=True)</c> does: it may name only
/// <c>collections.OrderedDict</c>, <c>torch._utils._rebuild_tensor_v2</c>, <c>torch.Size</c> and the
/// storage types; any other global is refused with its name, and nothing from the file is executed.
/// Views (storage offsets, strides, storages shared by several tensors) are supported.
/// </summary>
public sealed class TorchFile : ITensorFile
{
    /// <summary>The largest <c>data.pkl</c> read (a state dict's pickle is small; the tensors are elsewhere).</summary>
    public const long MaxPickleBytes = 256L << 20;

    private readonly ZipArchive zip;
    private readonly Dictionary<string, TorchTensorInfo> byName;
    private readonly object gate = new();

    private TorchFile(string path, ZipArchive zip, List<TorchTensorInfo> tensors)
    {
        Path = path;
        this.zip = zip;
        Tensors = tensors;
        byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <inheritdoc/>
    public string Path { get; }

    /// <summary>The tensors, sorted by name (ordinal).</summary>
    public IReadOnlyList<TorchTensorInfo> Tensors { get; }

    /// <summary>Whether the dict has the tensor.</summary>
    public bool Contains(string name) => byName.ContainsKey(name);

    /// <summary>The tensor's entry; false when absent.</summary>
    public bool TryGet(string name, out TorchTensorInfo info) => byName.TryGetValue(name, out info!);

    /// <summary>The tensor's entry; an error naming it when absent.</summary>
    public TorchTensorInfo Get(string name) =>
        byName.TryGetValue(name, out var info) ? info : throw new IrrException($"{Path}: no tensor '{name}'");

    /// <inheritdoc/>
    public bool TryGetTensor(string name, out TensorDType dtype, out IReadOnlyList<long> shape)
    {
        if (byName.TryGetValue(name, out var info)) { dtype = info.DType; shape = info.Shape; return true; }
        dtype = default;
        shape = [];
        return false;
    }

    /// <summary>Opens and checks the archive and reads its pickle (the storages are read on demand).</summary>
    public static TorchFile Open(string path)
    {
        FileStream stream;
        try
        {
            stream = File.OpenRead(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IrrException($"{path}: cannot read: {e.Message}", e);
        }
        ZipArchive? zip = null;
        try
        {
            zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: false);
            var tensors = ReadDict(path, zip);
            return new TorchFile(path, zip, tensors);
        }
        catch (IrrException)
        {
            if (zip is null) stream.Dispose(); else zip.Dispose();
            throw;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            if (zip is null) stream.Dispose(); else zip.Dispose();
            throw new IrrException($"{path}: not a readable PyTorch zip archive: {e.Message}", e);
        }
    }

    /// <inheritdoc/>
    public float[] ReadSingle(string name)
    {
        var info = Get(name);
        if (!info.DType.IsFloatingSupported() && info.DType != TensorDType.F64)
            throw new IrrException($"{Path}: tensor '{name}' has dtype {info.DType}; a float weight is needed");
        byte[] raw = ReadBytes(info);
        var values = new float[checked((int)info.ElementCount)];
        if (info.DType == TensorDType.F64)
        {
            var d = MemoryMarshal.Cast<byte, double>(raw);
            for (int i = 0; i < values.Length; i++) values[i] = (float)d[i];
        }
        else
        {
            DTypes.ToSingle(info.DType.ToDType(), raw, values);
        }
        return values;
    }

    /// <summary>Reads the int64 tensor <paramref name="name"/> (an error naming it for another type).</summary>
    public long[] ReadInt64(string name)
    {
        var info = Get(name);
        if (info.DType != TensorDType.I64) throw new IrrException($"{Path}: tensor '{name}' has dtype {info.DType}, not I64");
        return MemoryMarshal.Cast<byte, long>(ReadBytes(info)).ToArray();
    }

    /// <summary>
    /// The tensor's elements in row-major order, as little-endian bytes of its own type (the view
    /// gathered from its storage).
    /// </summary>
    public byte[] ReadBytes(TorchTensorInfo info)
    {
        int size = info.DType.SizeOf();
        long count = info.ElementCount;
        var result = new byte[checked(count * size)];
        if (count == 0) return result;
        long last = info.StorageOffset;
        for (int d = 0; d < info.Shape.Count; d++) last += (info.Shape[d] - 1) * info.Strides[d];
        byte[] span = ReadStorageRange(info, info.StorageOffset, last - info.StorageOffset + 1);
        if (info.IsContiguous)
        {
            Buffer.BlockCopy(span, 0, result, 0, result.Length);
            return result;
        }
        int rank = info.Shape.Count;
        var index = new long[rank];
        long src = 0;
        for (long i = 0; i < count; i++)
        {
            Buffer.BlockCopy(span, checked((int)(src * size)), result, checked((int)(i * size)), size);
            for (int d = rank - 1; d >= 0; d--)
            {
                if (++index[d] < info.Shape[d]) { src += info.Strides[d]; break; }
                src -= (info.Shape[d] - 1) * info.Strides[d];
                index[d] = 0;
            }
        }
        return result;
    }

    private byte[] ReadStorageRange(TorchTensorInfo info, long first, long count)
    {
        int size = info.DType.SizeOf();
        var buffer = new byte[checked(count * size)];
        lock (gate)
        {
            try
            {
                var entry = zip.GetEntry(info.Storage.EntryName) ?? throw new IrrException($"{Path}: tensor '{info.Name}': storage '{info.Storage.Key}' is missing");
                using var s = entry.Open();
                long skip = first * size;
                if (s.CanSeek) s.Seek(skip, SeekOrigin.Begin);
                else
                {
                    var discard = new byte[81920];
                    while (skip > 0)
                    {
                        int got = s.Read(discard, 0, (int)Math.Min(discard.Length, skip));
                        if (got == 0) throw new EndOfStreamException();
                        skip -= got;
                    }
                }
                s.ReadExactly(buffer);
            }
            catch (IrrException) { throw; }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                throw new IrrException($"{Path}: tensor '{info.Name}': cannot read storage '{info.Storage.Key}': {e.Message}", e);
            }
        }
        return buffer;
    }

    /// <inheritdoc/>
    public void Dispose() => zip.Dispose();

    // ---- the archive and its pickle ----

    private static List<TorchTensorInfo> ReadDict(string path, ZipArchive zip)
    {
        var pickles = zip.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.IndexOf('/') == e.FullName.Length - "/data.pkl".Length).ToList();
        if (pickles.Count != 1)
            throw new IrrException($"{path}: not a PyTorch archive (expected one ARCHIVE/data.pkl, found {pickles.Count})");
        string prefix = pickles[0].FullName[..^"data.pkl".Length];
        if (zip.GetEntry(prefix + "byteorder") is { } order)
        {
            string text = ReadText(order, 64).Trim();
            if (text != "little")
                throw new IrrException($"{path}: byteorder '{text}' is not supported (only little-endian archives are read)");
        }
        if (pickles[0].Length > MaxPickleBytes)
            throw new IrrException($"{path}: data.pkl is {pickles[0].Length} bytes, more than a state dict's pickle ({MaxPickleBytes})");
        byte[] pickle = ReadAll(pickles[0]);
        PickleScanner.Check(pickle, path);

        var unpickler = new StateDictUnpickler(path, zip, prefix);
        object root;
        try
        {
            root = unpickler.loads(pickle);
        }
        catch (IrrException) { throw; }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new IrrException($"{path}: data.pkl is not a valid state dict pickle: {e.Message}", e);
        }

        IEnumerable<(object Key, object? Value)> items = root switch
        {
            Hashtable h => h.Keys.Cast<object>().OrderBy(k => k as string, StringComparer.Ordinal).Select(k => (k, h[k])),
            _ => throw new IrrException($"{path}: holds a {Describe(root)}, not a state dict (a dict of tensor name → tensor)"),
        };
        var tensors = new List<TorchTensorInfo>();
        foreach (var (key, value) in items)
        {
            if (key is not string name) throw new IrrException($"{path}: a state dict key is a {Describe(key)}, not a string");
            if (value is not RebuiltTensor t)
                throw new IrrException($"{path}: entry '{name}' is a {Describe(value)}, not a tensor (only a state dict's tensors are read)");
            tensors.Add(CheckView(path, name, t));
        }
        return tensors;
    }

    private static TorchTensorInfo CheckView(string path, string name, RebuiltTensor t)
    {
        if (t.Shape.Length != t.Strides.Length)
            throw new IrrException($"{path}: tensor '{name}' has {t.Shape.Length} dimensions but {t.Strides.Length} strides");
        try
        {
            long count = 1, last = t.Offset;
            if (t.Offset < 0) throw new IrrException($"{path}: tensor '{name}' has a negative storage offset");
            for (int d = 0; d < t.Shape.Length; d++)
            {
                if (t.Shape[d] < 0 || t.Strides[d] < 0) throw new IrrException($"{path}: tensor '{name}' has a negative size or stride");
                count = checked(count * t.Shape[d]);
            }
            if (count > 0)
            {
                for (int d = 0; d < t.Shape.Length; d++) last = checked(last + (t.Shape[d] - 1) * t.Strides[d]);
                if (last >= t.Storage.ElementCount)
                    throw new IrrException($"{path}: tensor '{name}' reaches element {last} of storage '{t.Storage.Key}', which has {t.Storage.ElementCount}");
            }
            if (checked(count * t.Storage.DType.SizeOf()) > Array.MaxLength)
                throw new IrrException($"{path}: tensor '{name}' is too large to read");
            return new TorchTensorInfo(name, t.Storage, t.Offset, t.Shape, t.Strides, count);
        }
        catch (OverflowException)
        {
            throw new IrrException($"{path}: tensor '{name}' has sizes or strides out of range");
        }
    }

    private static string Describe(object? o) => o switch
    {
        null => "None",
        string => "string",
        bool => "bool",
        int or long or BigInteger => "int",
        double => "float",
        RebuiltTensor => "tensor",
        Hashtable => "dict",
        ArrayList => "list",
        object[] => "tuple",
        _ => o.GetType().Name,
    };

    private static byte[] ReadAll(ZipArchiveEntry entry)
    {
        using var s = entry.Open();
        var bytes = new byte[entry.Length];
        s.ReadExactly(bytes);
        return bytes;
    }

    private static string ReadText(ZipArchiveEntry entry, int max)
    {
        if (entry.Length > max) return "(too long)";
        return Encoding.ASCII.GetString(ReadAll(entry));
    }

    // ---- the allow-list ----

    private static readonly Dictionary<string, TensorDType> StorageTypes = new(StringComparer.Ordinal)
    {
        ["torch.FloatStorage"] = TensorDType.F32,
        ["torch.HalfStorage"] = TensorDType.F16,
        ["torch.BFloat16Storage"] = TensorDType.BF16,
        ["torch.DoubleStorage"] = TensorDType.F64,
        ["torch.LongStorage"] = TensorDType.I64,
        ["torch.IntStorage"] = TensorDType.I32,
        ["torch.ShortStorage"] = TensorDType.I16,
        ["torch.CharStorage"] = TensorDType.I8,
        ["torch.ByteStorage"] = TensorDType.U8,
        ["torch.BoolStorage"] = TensorDType.BOOL,
    };

    /// <summary>The globals a state dict's pickle may name (what <c>torch.load(weights_only=True)</c> needs for one).</summary>
    internal static bool IsAllowed(string module, string name)
    {
        string full = module + "." + name;
        return full is "collections.OrderedDict" or "torch._utils._rebuild_tensor_v2" or "torch.Size" || StorageTypes.ContainsKey(full);
    }

    static TorchFile()
    {
        // Razorvine.Pickle keeps one process-wide table; these constructors hold no per-file state, and
        // PickleScanner has refused every other global before Razorvine sees the pickle.
        Unpickler.registerConstructor("collections", "OrderedDict", new OrderedDictConstructor());
        Unpickler.registerConstructor("torch._utils", "_rebuild_tensor_v2", new RebuildTensorConstructor());
        Unpickler.registerConstructor("torch", "Size", new SizeConstructor());
        foreach (var (full, dtype) in StorageTypes)
            Unpickler.registerConstructor("torch", full["torch.".Length..], new StorageTypeConstructor(dtype));
    }

    internal static long ToLong(object? o) => o switch
    {
        int i => i,
        long l => l,
        BigInteger b when b >= long.MinValue && b <= long.MaxValue => (long)b,
        _ => throw new PickleException($"expected an integer, found {Describe(o)}"),
    };

    private static long[] ToLongs(object? o) => o is object[] tuple ? tuple.Select(ToLong).ToArray() : throw new PickleException($"expected a tuple of integers, found {Describe(o)}");

    private sealed class StateDictUnpickler(string path, ZipArchive zip, string prefix) : Unpickler
    {
        private readonly Dictionary<string, TorchStorage> storages = new(StringComparer.Ordinal);

        protected override object persistentLoad(object pid)
        {
            if (pid is not object[] { Length: 5 } t || t[0] is not "storage" || t[1] is not StorageTypeConstructor type || t[2] is not string key)
                throw new IrrException($"{path}: data.pkl has a persistent id that is not a storage ('storage', type, key, location, numel)");
            long numel = ToLong(t[4]);
            if (storages.TryGetValue(key, out var known))
            {
                if (known.DType != type.DType) throw new IrrException($"{path}: storage '{key}' is used as both {known.DType} and {type.DType}");
                return known;
            }
            if (key.Length == 0 || key.Contains('/') || key.Contains('\\') || key.Contains(".."))
                throw new IrrException($"{path}: data.pkl names an invalid storage key '{key}'");
            string entryName = prefix + "data/" + key;
            var entry = zip.GetEntry(entryName) ?? throw new IrrException($"{path}: storage '{key}' is missing (no {entryName})");
            if (numel < 0 || numel > entry.Length / type.DType.SizeOf())
                throw new IrrException($"{path}: storage '{key}' should hold {numel} {type.DType} elements but {entryName} has {entry.Length} bytes");
            var storage = new TorchStorage(key, type.DType, numel, entryName);
            storages[key] = storage;
            return storage;
        }
    }

    internal sealed class RebuiltTensor(TorchStorage storage, long offset, long[] shape, long[] strides)
    {
        public TorchStorage Storage { get; } = storage;
        public long Offset { get; } = offset;
        public long[] Shape { get; } = shape;
        public long[] Strides { get; } = strides;
    }

    /// <summary>An OrderedDict: a Hashtable, so SETITEM(S) fill it (Razorvine reverses each SETITEMS batch, so order is not kept).</summary>
    internal sealed class OrderedDictObject : Hashtable
    {
        /// <summary>BUILD on an OrderedDict sets instance attributes (a state dict's <c>_metadata</c>); they are ignored.</summary>
        public void __setstate__(Hashtable state) { }
    }

    private sealed class OrderedDictConstructor : IObjectConstructor
    {
        public object construct(object[] args)
        {
            if (args.Length != 0) throw new PickleException("OrderedDict with constructor arguments");
            return new OrderedDictObject();
        }
    }

    private sealed class RebuildTensorConstructor : IObjectConstructor
    {
        // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
        public object construct(object[] args)
        {
            if (args.Length is not (6 or 7) || args[0] is not TorchStorage storage)
                throw new PickleException("_rebuild_tensor_v2 with unexpected arguments");
            if (args[5] is not null and not Hashtable) throw new PickleException("_rebuild_tensor_v2 with unexpected backward hooks");
            if (args[5] is Hashtable { Count: > 0 }) throw new PickleException("a tensor with backward hooks");
            return new RebuiltTensor(storage, ToLong(args[1]), ToLongs(args[2]), ToLongs(args[3]));
        }
    }

    private sealed class SizeConstructor : IObjectConstructor
    {
        public object construct(object[] args) =>
            args is [object[] dims] ? dims : throw new PickleException("torch.Size with unexpected arguments");
    }

    internal sealed class StorageTypeConstructor(TensorDType dtype) : IObjectConstructor
    {
        public TensorDType DType { get; } = dtype;

        public object construct(object[] args) => throw new PickleException("a storage type is called");
    }
}
