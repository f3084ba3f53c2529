using System.Collections;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Text;
using Razorvine.Pickle;

namespace Irr.IO;

/// <summary>One tensor of a PyTorch state dict: a view (offset, shape, strides in elements) of a storage.</summary>
public sealed class TorchTensorInfo : TensorEntry
{
    internal TorchTensorInfo(string name, TorchStorage storage, long offset, long[] shape, long[] strides, long elementCount)
        : base(name, storage.DType, shape, elementCount)
    {
        Storage = storage;
        StorageOffset = offset;
        this.strides = strides;
    }

    private readonly long[] strides;

    /// <summary>The storage the tensor views (shared when several tensors view one storage).</summary>
    public TorchStorage Storage { get; }

    /// <summary>Offset of the first element in the storage, in elements.</summary>
    public long StorageOffset { get; }

    /// <summary>Strides in elements, one per dimension.</summary>
    public IReadOnlyList<long> Strides => strides;

    /// <summary>Whether the view is row-major contiguous.</summary>
    public bool IsContiguous
    {
        get
        {
            long expected = 1;
            for (int d = Shape.Count - 1; d >= 0; d--)
            {
                if (Shape[d] != 1 && strides[d] != expected) return false;
                expected *= Shape[d];
            }
            return true;
        }
    }

    // The last storage element the view reaches (StorageOffset − 1 for an empty tensor).
    internal long LastElement
    {
        get
        {
            if (ElementCount == 0) return StorageOffset - 1;
            long last = StorageOffset;
            for (int d = 0; d < Shape.Count; d++) last += (Shape[d] - 1) * strides[d];
            return last;
        }
    }
}

/// <summary>A storage of a PyTorch file: raw little-endian elements at a place in the file.</summary>
public sealed class TorchStorage
{
    internal TorchStorage(string key, TensorDType dtype, long elementCount)
    {
        Key = key;
        DType = dtype;
        ElementCount = elementCount;
    }

    /// <summary>The storage key (the file name under <c>data/</c> in the zip format).</summary>
    public string Key { get; }

    /// <summary>Element type.</summary>
    public TensorDType DType { get; }

    /// <summary>Number of elements.</summary>
    public long ElementCount { get; }

    /// <summary>Offset of element 0 in the file, in bytes (known once the file's layout has been read).</summary>
    public long FileOffset { get; internal set; } = -1;
}

/// <summary>The two layouts <c>torch.save</c> writes.</summary>
public enum TorchFormat
{
    /// <summary>A zip archive (the default since torch 1.6): <c>ARCHIVE/data.pkl</c> and one member <c>ARCHIVE/data/KEY</c> per storage.</summary>
    Zip,

    /// <summary>
    /// The legacy layout (torch &lt; 1.6, or <c>_use_new_zipfile_serialization=False</c>): five pickles in a row
    /// (magic number, protocol version, system info, the object, the storage keys), then each storage as an
    /// int64 element count and its elements.
    /// </summary>
    Legacy,
}

/// <summary>
/// A PyTorch state dict saved by <c>torch.save</c>, in the zip format (torch ≥ 1.6) or the legacy one
/// (<see cref="TorchFormat"/>). The pickle is read safely, as <c>torch.load(weights_only=True)</c> does: it may
/// name only <c>collections.OrderedDict</c>, <c>torch._utils._rebuild_tensor_v2</c>, <c>torch._utils._rebuild_parameter</c>
/// (an <c>nn.Parameter</c>, read as its tensor), <c>torch.Size</c> and the storage types; any other global is refused
/// with its name, and nothing from the file is executed.
/// Views (storage offsets, strides, storages shared by several tensors) are supported. Opening reads only the
/// pickles; tensor data is memory-mapped when read, a row range at a time, as for safetensors
/// (zip members must be stored uncompressed, as <c>torch.save</c> writes them).
/// </summary>
public sealed class TorchFile : ITensorFile
{
    /// <summary>
    /// The largest pickle read, in bytes (a state dict's pickle is small, ~100 bytes a tensor; the tensors are elsewhere):
    /// <c>IRR_MAX_PICKLE_BYTES</c>, 64 MiB by default. The pickle's opcodes, memo entries, objects, stack depth and nesting
    /// are budgeted too, before anything is unpickled (docs/formats.md, "Pickles and tensor containers").
    /// </summary>
    public static long MaxPickleBytes => PickleLimits.Current().Bytes;

    // torch/serialization.py: MAGIC_NUMBER and PROTOCOL_VERSION of the legacy format.
    private static readonly BigInteger LegacyMagic = BigInteger.Parse("119547037146038801333356");
    private const int LegacyProtocol = 1001;

    private readonly MappedFile file;
    private readonly Dictionary<string, TorchTensorInfo> byName;

    private TorchFile(MappedFile file, TorchFormat format, List<TorchTensorInfo> tensors)
    {
        this.file = file;
        Format = format;
        Tensors = tensors;
        byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <inheritdoc/>
    public string Path => file.Path;

    /// <inheritdoc/>
    public long FileLength => file.Length;

    /// <summary>The layout the file was saved in.</summary>
    public TorchFormat Format { get; }

    /// <summary>The tensors, sorted by name (ordinal).</summary>
    public IReadOnlyList<TorchTensorInfo> Tensors { get; }

    IReadOnlyList<TensorEntry> ITensorFile.Tensors => Tensors;

    /// <summary>Whether the dict has the tensor.</summary>
    public bool Contains(string name) => byName.ContainsKey(name);

    /// <summary>The tensor's entry; false when absent.</summary>
    public bool TryGet(string name, out TorchTensorInfo info) => byName.TryGetValue(name, out info!);

    /// <inheritdoc/>
    public bool TryGetEntry(string name, out TensorEntry entry)
    {
        bool found = byName.TryGetValue(name, out var info);
        entry = info!;
        return found;
    }

    /// <summary>The tensor's entry; an error naming it when absent.</summary>
    public TorchTensorInfo Get(string name) =>
        byName.TryGetValue(name, out var info) ? info : throw new IrrException($"{Path}: no tensor '{name}'");

    /// <summary>Whether a file's first bytes are those of a <c>torch.save</c> file: a zip archive or a pickle (protocol 2–5).</summary>
    public static bool IsTorchFile(ReadOnlySpan<byte> head) =>
        ZipDirectory.IsZip(head) || (head.Length >= 2 && head[0] == 0x80 && head[1] is >= 2 and <= 5);

    /// <summary>Opens the file, checks its layout and reads its pickles (the storages are read on demand).</summary>
    /// <exception cref="IrrException">Not a PyTorch file, a refused pickle global, or storages that do not fit the file.</exception>
    public static TorchFile Open(string path)
    {
        var file = MappedFile.Open(path);
        try
        {
            Span<byte> head = stackalloc byte[4];
            int n = (int)Math.Min(4, file.Length);
            file.Read(head[..n], 0, "the first bytes");
            if (ZipDirectory.IsZip(head[..n])) return new TorchFile(file, TorchFormat.Zip, ReadZip(file));
            if (IsTorchFile(head[..n])) return new TorchFile(file, TorchFormat.Legacy, ReadLegacy(file));
            throw new IrrException($"{path}: not a PyTorch file (neither a zip archive nor a pickle)");
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public void ReadRowsSingle(TensorEntry entry, long firstRow, long rowCount, Span<float> destination)
    {
        var info = entry as TorchTensorInfo ?? throw new ArgumentException($"'{entry.Name}' is not a tensor of {Path}", nameof(entry));
        if (!info.DType.IsFloatingSupported() && info.DType != TensorDType.F64)
            throw new IrrException($"{Path}: tensor '{info.Name}' has dtype {info.DType}; a float weight is needed");
        TensorFiles.CheckRows(info, firstRow, rowCount, destination.Length);
        long count = rowCount * info.RowLength;
        if (count == 0) return;
        int size = info.DType.SizeOf();
        if (info.IsContiguous)
        {
            long first = info.StorageOffset + firstRow * info.RowLength;
            using var view = file.Map(info.Storage.FileOffset + first * size, count * size);
            view.ToSingle(info.DType, 0, destination);
            return;
        }
        byte[] all = ReadBytes(info);
        var rows = all.AsSpan(checked((int)(firstRow * info.RowLength * size)), checked((int)(count * size)));
        if (info.DType == TensorDType.F64)
        {
            var d = MemoryMarshal.Cast<byte, double>(rows);
            for (int i = 0; i < d.Length; i++) destination[i] = (float)d[i];
        }
        else
        {
            Irr.Tensors.DTypes.ToSingle(info.DType.ToDType(), rows, destination);
        }
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
        long extent = info.LastElement - info.StorageOffset + 1;
        using var view = file.Map(info.Storage.FileOffset + info.StorageOffset * size, extent * size);
        if (info.IsContiguous)
        {
            view.Span(0, result.Length).CopyTo(result);
            return result;
        }
        int rank = info.Shape.Count;
        var index = new long[rank];
        long src = 0;
        for (long i = 0; i < count; i++)
        {
            view.Span(src * size, size).CopyTo(result.AsSpan(checked((int)(i * size)), size));
            for (int d = rank - 1; d >= 0; d--)
            {
                if (++index[d] < info.Shape[d]) { src += info.Strides[d]; break; }
                src -= (info.Shape[d] - 1) * info.Strides[d];
                index[d] = 0;
            }
        }
        return result;
    }

    /// <inheritdoc/>
    public void Dispose() => file.Dispose();

    // ---- the zip format ----

    private static List<TorchTensorInfo> ReadZip(MappedFile file)
    {
        string path = file.Path;
        var members = ZipDirectory.Read(file);
        var pickles = members.Values.Where(e => e.Name.EndsWith("/data.pkl", StringComparison.Ordinal) && e.Name.IndexOf('/') == e.Name.Length - "/data.pkl".Length).ToList();
        if (pickles.Count != 1)
            throw new IrrException($"{path}: not a PyTorch archive (expected one ARCHIVE/data.pkl, found {pickles.Count})");
        string prefix = pickles[0].Name[..^"data.pkl".Length];
        if (members.TryGetValue(prefix + "byteorder", out var order))
        {
            string text = order.Size > 64 ? "(too long)" : Encoding.ASCII.GetString(ZipDirectory.ReadAll(file, order, 64)).Trim();
            if (text != "little")
                throw new IrrException($"{path}: byteorder '{text}' is not supported (only little-endian archives are read)");
        }
        byte[] pickle = ZipDirectory.ReadAll(file, pickles[0], MaxPickleBytes, PickleLimits.BytesVariable);
        try
        {
            PickleScanner.Check(pickle, path);
        }
        catch (TruncatedPickleException e)
        {
            throw new IrrException(e.Message);
        }

        var unpickler = new StateDictUnpickler(path, legacy: false, (key, type, numel) =>
        {
            string memberName = prefix + "data/" + key;
            if (!members.TryGetValue(memberName, out var member)) throw new IrrException($"{path}: storage '{InputFile.Escape(key)}' is missing (no {InputFile.Escape(memberName)})");
            if (!member.IsStored)
                throw new IrrException($"{path}: storage '{InputFile.Escape(key)}' is compressed ({InputFile.Escape(memberName)}); torch.save stores storages uncompressed, so the archive was re-packed: re-save it with torch.save");
            if (numel < 0 || numel > member.Size / type.SizeOf())
                throw new IrrException($"{path}: storage '{InputFile.Escape(key)}' should hold {numel} {type} elements but {InputFile.Escape(memberName)} has {member.Size} bytes");
            return new TorchStorage(key, type, numel) { FileOffset = member.DataOffset };
        });
        return ReadDict(path, Unpickle(unpickler, pickle, path, "data.pkl"));
    }

    // ---- the legacy format ----

    private static List<TorchTensorInfo> ReadLegacy(MappedFile file)
    {
        string path = file.Path;
        // The five pickles come first; read as much of the file as they need (they are small).
        byte[] prefix = [];
        int[] ends = new int[5];
        long max = MaxPickleBytes;
        for (long want = Math.Min(file.Length, Math.Min(1 << 20, max)); ; want = Math.Min(file.Length, Math.Min(want * 4, max)))
        {
            prefix = new byte[want];
            file.Read(prefix, 0, "the pickles");
            try
            {
                int next = 0;
                for (int i = 0; i < 5; i++) ends[i] = next = PickleScanner.Check(prefix, path, next, LegacyPickleNames[i]);
                break;
            }
            catch (TruncatedPickleException e)
            {
                if (want >= file.Length) throw new IrrException(e.Message);
                if (want >= max) throw Limits.Exceeded(path, "the pickles' size in bytes", PickleLimits.BytesVariable, max);
            }
        }

        var plain = new Unpickler();
        object magic = Unpickle(plain, prefix[..ends[0]], path, LegacyPickleNames[0]);
        if (magic is not (int or long or BigInteger) || ToBig(magic) != LegacyMagic)
            throw new IrrException($"{path}: not a PyTorch file (a pickle without torch.save's magic number)");
        object protocol = Unpickle(plain, prefix[ends[0]..ends[1]], path, LegacyPickleNames[1]);
        if (protocol is not (int or long) || ToLong(protocol) != LegacyProtocol)
            throw new IrrException($"{path}: legacy PyTorch protocol {protocol} is not supported (only {LegacyProtocol})");
        if (Unpickle(plain, prefix[ends[1]..ends[2]], path, LegacyPickleNames[2]) is not Hashtable sysInfo)
            throw new IrrException($"{path}: legacy PyTorch system info is not a dict");
        if (sysInfo["little_endian"] is not true)
            throw new IrrException($"{path}: saved on a big-endian machine (only little-endian files are read)");

        var storages = new Dictionary<string, TorchStorage>(StringComparer.Ordinal);
        var views = new List<(TorchStorage View, string Root, long Offset)>();
        var unpickler = new StateDictUnpickler(path, legacy: true, (key, type, numel) =>
        {
            var s = new TorchStorage(key, type, numel);
            storages[key] = s;
            return s;
        }, (viewKey, root, offset, numel) =>
        {
            var s = new TorchStorage(viewKey, root.DType, numel);
            views.Add((s, root.Key, offset));
            return s;
        });
        object dict = Unpickle(unpickler, prefix[ends[2]..ends[3]], path, LegacyPickleNames[3]);
        if (Unpickle(plain, prefix[ends[3]..ends[4]], path, LegacyPickleNames[4]) is not ArrayList keys || keys.Cast<object>().Any(k => k is not string))
            throw new IrrException($"{path}: the legacy storage key list is not a list of strings");

        // Each storage: an int64 element count, then its elements, in the order of the key list.
        long at = ends[4];
        Span<byte> countBytes = stackalloc byte[8];
        foreach (string key in keys)
        {
            string shown = InputFile.Escape(key);
            if (!storages.TryGetValue(key, out var storage))
                throw new IrrException($"{path}: storage '{shown}' is listed but no tensor uses it");
            if (storage.FileOffset >= 0) throw new IrrException($"{path}: storage '{shown}' is listed twice");
            file.Read(countBytes, at, $"storage '{shown}'");
            long numel = BitConverter.ToInt64(countBytes);
            if (numel != storage.ElementCount)
                throw new IrrException($"{path}: storage '{shown}' should hold {storage.ElementCount} elements but its record says {numel}");
            // Element count × size, overflow-checked: 2^62 four-byte elements do not "fit" a 320-byte file.
            long room = file.Length - at - 8;
            if (numel < 0 || room < 0 || numel > room / storage.DType.SizeOf())
                throw new IrrException($"{path}: storage '{shown}' ({numel} {storage.DType} elements) runs past the end of the file (truncated?)");
            long bytes = numel * storage.DType.SizeOf();
            storage.FileOffset = at + 8;
            at += 8 + bytes;
        }
        foreach (var s in storages.Values)
            if (s.FileOffset < 0) throw new IrrException($"{path}: storage '{InputFile.Escape(s.Key)}' has no data (it is missing from the storage key list)");
        foreach (var (view, root, offset) in views)
        {
            if (!storages.TryGetValue(root, out var r)) throw new IrrException($"{path}: storage view '{InputFile.Escape(view.Key)}' of '{InputFile.Escape(root)}' has no root storage");
            if (offset < 0 || view.ElementCount < 0 || offset > r.ElementCount - view.ElementCount)
                throw new IrrException($"{path}: storage view '{InputFile.Escape(view.Key)}' reaches past the end of storage '{InputFile.Escape(root)}'");
            view.FileOffset = r.FileOffset + offset * r.DType.SizeOf();
        }
        return ReadDict(path, dict);
    }

    private static readonly string[] LegacyPickleNames = ["magic number pickle", "protocol version pickle", "system info pickle", "state dict pickle", "storage key pickle"];

    private static BigInteger ToBig(object o) => o switch { int i => i, long l => l, BigInteger b => b, _ => BigInteger.MinusOne };

    private static object Unpickle(Unpickler unpickler, byte[] pickle, string path, string label)
    {
        try
        {
            return unpickler.loads(pickle);
        }
        catch (IrrException) { throw; }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new IrrException($"{path}: {label} is not a valid state dict pickle: {InputFile.Escape(e.Message)}", e);
        }
    }

    // ---- the state dict ----

    private static List<TorchTensorInfo> ReadDict(string path, object root)
    {
        IEnumerable<(object Key, object? Value)> items = root switch
        {
            Hashtable h => h.Keys.Cast<object>().OrderBy(k => k as string, StringComparer.Ordinal).Select(k => (k, h[k])),
            _ => throw new IrrException($"{path}: holds {Article(root)}, not a state dict (a dict of tensor name → tensor)"),
        };
        var tensors = new List<TorchTensorInfo>();
        items = items.ToList();
        // A training checkpoint ({"state_dict": {…}, "epoch": 3}): name the dict of tensors before anything else.
        foreach (var (key, value) in items)
            if (key is string name && value is Hashtable { Count: > 0 } inner && inner.Values.Cast<object?>().Any(v => v is RebuiltTensor))
                throw new IrrException($"{path}: entry '{InputFile.Escape(name)}' is a dict of tensors, not a tensor: a checkpoint that holds a state dict; save that dict alone (torch.save(checkpoint['{InputFile.Escape(name)}'], …))");
        foreach (var (key, value) in items)
        {
            if (key is not string name) throw new IrrException($"{path}: a state dict key is {Article(key)}, not a string");
            if (!InputFile.IsValidUnicode(name)) // control characters are kept, as torch keeps them, and escaped where shown
                throw new IrrException($"{path}: tensor name '{InputFile.Escape(name)}' is not valid Unicode (a lone surrogate)");
            if (value is not RebuiltTensor t)
                throw new IrrException($"{path}: entry '{InputFile.Escape(name)}' is {Article(value)}, not a tensor (only a state dict's tensors are read)");
            tensors.Add(CheckView(path, name, t));
        }
        return tensors;
    }

    /// <summary>
    /// Checks a tensor's view of its storage: sizes and strides non-negative, every product overflow-checked, the view
    /// inside the storage, and no element of the storage read twice. A state dict's tensors are contiguous, or simple
    /// views of a storage (transposed, sliced, tied weights sharing one storage); a view that repeats elements (stride 0
    /// of <c>expand</c>/broadcasting, overlapping strides) would be materialised larger than its storage (a 512-byte
    /// file could become gigabytes), and is refused by name.
    /// </summary>
    private static TorchTensorInfo CheckView(string path, string name, RebuiltTensor t)
    {
        string where = $"{path}: tensor '{InputFile.Escape(name)}'";
        if (t.Shape.Length != t.Strides.Length)
            throw new IrrException($"{where} has {t.Shape.Length} dimensions but {t.Strides.Length} strides");
        if (t.Shape.Length > TensorLimits.Rank)
            throw Limits.Exceeded(where, $"the number of dimensions ({t.Shape.Length})", TensorLimits.RankVariable, TensorLimits.Rank);
        try
        {
            long count = 1, last = t.Offset;
            if (t.Offset < 0) throw new IrrException($"{where} has a negative storage offset");
            for (int d = 0; d < t.Shape.Length; d++)
            {
                if (t.Shape[d] < 0 || t.Strides[d] < 0) throw new IrrException($"{where} has a negative size or stride");
                count = checked(count * t.Shape[d]);
            }
            if (count > 0)
            {
                for (int d = 0; d < t.Shape.Length; d++) last = checked(last + checked((t.Shape[d] - 1) * t.Strides[d]));
                if (last >= t.Storage.ElementCount)
                    throw new IrrException($"{where} reaches element {last} of storage '{InputFile.Escape(t.Storage.Key)}', which has {t.Storage.ElementCount}");
                if (count > t.Storage.ElementCount)
                    throw new IrrException($"{where} {ShapeText(t.Shape)} has {count} elements, more than the {t.Storage.ElementCount} of its storage '{InputFile.Escape(t.Storage.Key)}' (an expanded or broadcast view; save a contiguous copy, tensor.contiguous())");
                if (Overlap(t.Shape, t.Strides) is { } overlap)
                    throw new IrrException($"{where} {ShapeText(t.Shape)} with strides {ShapeText(t.Strides)} {overlap} (an expanded or broadcast view; save a contiguous copy, tensor.contiguous())");
            }
            if (checked(count * t.Storage.DType.SizeOf()) > Array.MaxLength)
                throw new IrrException($"{where} is too large to read");
            return new TorchTensorInfo(name, t.Storage, t.Offset, t.Shape, t.Strides, count);
        }
        catch (OverflowException)
        {
            throw new IrrException($"{where} has sizes or strides out of range");
        }
    }

    private static string ShapeText(long[] values) => "[" + string.Join(", ", values) + "]";

    /// <summary>
    /// Why a view reads some storage element twice, or null when it provably does not: taken in increasing order of
    /// stride, each dimension's stride must step over everything the smaller ones reach (PyTorch's
    /// "non-overlapping and dense" test, without the density). Every view made by slicing, narrowing, stepping or
    /// permuting a contiguous tensor passes; one with a stride of 0 over a size above 1, or strides that interleave,
    /// does not. Sizes of 1 (and the empty tensor) read nothing twice whatever their stride.
    /// </summary>
    internal static string? Overlap(IReadOnlyList<long> shape, IReadOnlyList<long> strides)
    {
        var dims = Enumerable.Range(0, shape.Count).Where(d => shape[d] > 1).OrderBy(d => strides[d]).ToList();
        long reach = 0; // the largest element offset the dimensions so far reach
        foreach (int d in dims)
        {
            if (strides[d] == 0) return $"repeats its elements (stride 0 in dimension {d})";
            if (strides[d] <= reach) return $"reads elements of its storage more than once (dimension {d} overlaps the smaller strides)";
            reach = checked(reach + (shape[d] - 1) * strides[d]);
        }
        return null;
    }

    private static string Article(object? o) => Describe(o) is var d && d == "None" ? "None" : ("aeiou".Contains(char.ToLowerInvariant(d[0])) ? "an " : "a ") + d;

    internal static string Describe(object? o) => o switch
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
        return full is "collections.OrderedDict" or "torch._utils._rebuild_tensor_v2" or "torch._utils._rebuild_parameter" or "torch.Size" || StorageTypes.ContainsKey(full);
    }

    static TorchFile()
    {
        // Razorvine.Pickle keeps one process-wide table; these constructors hold no per-file state, and
        // PickleScanner has refused every other global before Razorvine sees the pickle.
        Unpickler.registerConstructor("collections", "OrderedDict", new OrderedDictConstructor());
        Unpickler.registerConstructor("torch._utils", "_rebuild_tensor_v2", new RebuildTensorConstructor());
        Unpickler.registerConstructor("torch._utils", "_rebuild_parameter", new RebuildParameterConstructor());
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

    /// <summary>
    /// Resolves persistent ids to storages: <c>('storage', type, key, location, numel)</c> in the zip format and
    /// <c>('storage', type, key, location, numel, view_metadata)</c> in the legacy one, where view_metadata is None
    /// or <c>(view_key, offset, view_numel)</c>, a slice of storage <c>key</c> (torch &lt; 0.4). The location
    /// ("cpu", "cuda:0") is not used: the bytes are the same.
    /// </summary>
    private sealed class StateDictUnpickler(string path, bool legacy, Func<string, TensorDType, long, TorchStorage> newStorage,
        Func<string, TorchStorage, long, long, TorchStorage>? newView = null) : Unpickler
    {
        private readonly Dictionary<string, TorchStorage> storages = new(StringComparer.Ordinal);

        protected override object persistentLoad(object pid)
        {
            int arity = legacy ? 6 : 5;
            if (pid is not object[] t || t.Length != arity || t[0] is not "storage" || t[1] is not StorageTypeConstructor type || t[2] is not string key)
                throw new IrrException($"{path}: the pickle has a persistent id that is not a storage ('storage', type, key, location, numel{(legacy ? ", view" : "")})");
            long numel = ToLong(t[4]);
            if (key.Length == 0 || key.Contains('/') || key.Contains('\\') || key.Contains(".."))
                throw new IrrException($"{path}: the pickle names an invalid storage key '{InputFile.Escape(key)}'");
            if (!storages.TryGetValue(key, out var storage))
            {
                storage = newStorage(key, type.DType, numel);
                storages[key] = storage;
            }
            else if (storage.ElementCount != numel && !legacy)
            {
                throw new IrrException($"{path}: storage '{InputFile.Escape(key)}' is given {storage.ElementCount} and {numel} elements");
            }
            if (storage.DType != type.DType) throw new IrrException($"{path}: storage '{InputFile.Escape(key)}' is used as both {storage.DType} and {type.DType}");
            if (!legacy || t[5] is null) return storage;
            if (t[5] is not object[] { Length: 3 } view || view[0] is not string viewKey)
                throw new IrrException($"{path}: storage '{InputFile.Escape(key)}' has view metadata that is not (key, offset, numel)");
            string id = "view:" + viewKey;
            if (storages.TryGetValue(id, out var known)) return known;
            var slice = newView!(viewKey, storage, ToLong(view[1]), ToLong(view[2]));
            storages[id] = slice;
            return slice;
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

    // _rebuild_parameter(data, requires_grad, backward_hooks): an nn.Parameter, read as its tensor (a dict of
    // model.named_parameters() holds them; torch.load(weights_only=True) allows it).
    private sealed class RebuildParameterConstructor : IObjectConstructor
    {
        public object construct(object[] args)
        {
            if (args.Length != 3 || args[0] is not RebuiltTensor tensor) throw new PickleException("_rebuild_parameter with unexpected arguments");
            if (args[2] is Hashtable { Count: > 0 }) throw new PickleException("a parameter with backward hooks");
            return tensor;
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
