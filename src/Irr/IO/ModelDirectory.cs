using System.Text.Json;

namespace Irr.IO;

/// <summary>
/// A Hugging Face model directory: <c>config.json</c> and the weights, in one
/// <c>model.safetensors</c> or in shards listed by <c>model.safetensors.index.json</c>.
/// Opening reads only the config, the index and the shard headers. Where both layouts are present,
/// <c>model.safetensors</c> is loaded, as transformers' <c>from_pretrained</c> does, with a warning.
/// </summary>
public sealed class ModelDirectory : IDisposable
{
    /// <summary>The single-file weights name.</summary>
    public const string WeightsFile = "model.safetensors";

    /// <summary>The shard index name.</summary>
    public const string IndexFile = "model.safetensors.index.json";

    private readonly Dictionary<string, (SafetensorsFile File, TensorInfo Info)> tensors;

    private ModelDirectory(string path, ModelConfig config, List<SafetensorsFile> shards, string? index,
        Dictionary<string, (SafetensorsFile, TensorInfo)> tensors, IReadOnlyList<string> warnings)
    {
        Path = path;
        Warnings = warnings;
        Config = config;
        Shards = shards;
        IndexPath = index;
        this.tensors = tensors;
    }

    /// <summary>The directory, as given.</summary>
    public string Path { get; }

    /// <summary>The parsed config.json.</summary>
    public ModelConfig Config { get; }

    /// <summary>The weight files, in index order (one when not sharded).</summary>
    public IReadOnlyList<SafetensorsFile> Shards { get; }

    /// <summary>The index file, or null for a single weights file.</summary>
    public string? IndexPath { get; }

    /// <summary>
    /// What the directory holds that is not loaded, one line each (e.g. a shard index beside <c>model.safetensors</c>);
    /// each is also given to <see cref="Diagnostics.Warn"/> when the directory is opened.
    /// </summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>Every tensor of the checkpoint, in file and header order.</summary>
    public IEnumerable<TensorInfo> Tensors => Shards.SelectMany(s => s.Tensors);

    /// <summary>Number of tensors.</summary>
    public int TensorCount => tensors.Count;

    /// <summary>Total elements of all tensors.</summary>
    public long ParameterCount => Tensors.Sum(t => t.ElementCount);

    /// <summary>Bytes of the weight files.</summary>
    public long TotalBytes => Shards.Sum(s => s.FileLength);

    /// <summary>
    /// Opens a model directory: reads config.json, the shard index if there is one, and every
    /// shard's header, and (unless <paramref name="validate"/> is false) checks the tensors against
    /// the config. Errors are <see cref="IrrException"/>s naming the file. The precedence is transformers':
    /// <c>model.safetensors</c> before <c>model.safetensors.index.json</c>; where both are present the index and
    /// its shards are ignored, with a warning (<see cref="Warnings"/>, <see cref="Diagnostics.Warn"/>).
    /// </summary>
    public static ModelDirectory Open(string path, bool validate = true)
    {
        if (File.Exists(path))
            throw new IrrException($"{path}: is a file; a model is a directory with config.json and *.safetensors");
        if (!Directory.Exists(path))
            throw new IrrException($"{path}: no such directory");
        string configPath = System.IO.Path.Combine(path, "config.json");
        if (!File.Exists(configPath))
            throw new IrrException($"{path}: no config.json (not a Hugging Face model directory{(File.Exists(System.IO.Path.Combine(path, LoraAdapter.ConfigFile)) ? "; it is a PEFT adapter" : "")})");
        var config = ModelConfig.Load(configPath);

        var shards = new List<SafetensorsFile>();
        try
        {
            string indexPath = System.IO.Path.Combine(path, IndexFile);
            string singlePath = System.IO.Path.Combine(path, WeightsFile);
            Dictionary<string, (SafetensorsFile, TensorInfo)> map;
            string? index = null;
            var warnings = new List<string>();
            // transformers (modeling_utils, from_pretrained): the single file first, then the shard index.
            if (File.Exists(singlePath))
            {
                if (File.Exists(indexPath))
                    warnings.Add($"{path}: holds both {WeightsFile} and {IndexFile}{ShardCountText(indexPath)}; loading {WeightsFile}, as transformers does");
                var file = SafetensorsFile.Open(singlePath);
                shards.Add(file);
                map = new Dictionary<string, (SafetensorsFile, TensorInfo)>(StringComparer.Ordinal);
                foreach (var t in file.Tensors) map[t.Name] = (file, t);
            }
            else if (File.Exists(indexPath))
            {
                index = indexPath;
                map = OpenSharded(path, indexPath, shards);
            }
            else
            {
                throw new IrrException(NoWeightsMessage(path));
            }
            foreach (string warning in warnings) Diagnostics.Warn(warning);
            var model = new ModelDirectory(path, config, shards, index, map, warnings);
            if (validate) model.CheckAgainstConfig();
            return model;
        }
        catch
        {
            foreach (var s in shards) s.Dispose();
            throw;
        }
    }

    /// <summary>Whether the checkpoint holds a tensor of that name.</summary>
    public bool Contains(string name) => tensors.ContainsKey(name);

    /// <summary>The file and header entry of a tensor; an <see cref="IrrException"/> if absent.</summary>
    public (SafetensorsFile File, TensorInfo Info) Locate(string name) =>
        tensors.TryGetValue(name, out var entry) ? entry : throw new IrrException($"{Path}: no tensor '{name}'");

    /// <summary>A tensor's header entry.</summary>
    public TensorInfo Info(string name) => Locate(name).Info;

    /// <summary>Reads a whole tensor as float32.</summary>
    public float[] ReadSingle(string name) => Locate(name).File.ReadSingle(name);

    /// <summary>Reads rows of a tensor as float32 (see <see cref="SafetensorsFile.ReadRowsSingle"/>).</summary>
    public void ReadRowsSingle(string name, long firstRow, long rowCount, Span<float> destination)
    {
        var (file, info) = Locate(name);
        file.ReadRowsSingle(info, firstRow, rowCount, destination);
    }

    /// <summary>
    /// Checks the tensors against <see cref="Config"/>: every expected tensor present with its
    /// shape and a floating dtype, nothing unexpected. Throws one <see cref="IrrException"/> that
    /// lists what is missing, extra or misshapen.
    /// </summary>
    public void CheckAgainstConfig()
    {
        var problems = new List<string>();
        var expected = new HashSet<string>(StringComparer.Ordinal);
        var missing = new List<string>();
        foreach (var (name, shape) in Config.ExpectedTensors())
        {
            expected.Add(name);
            if (!tensors.TryGetValue(name, out var entry))
            {
                missing.Add($"{name} [{string.Join(", ", shape)}]");
                continue;
            }
            if (!entry.Info.Shape.SequenceEqual(shape))
                problems.Add($"{name} is {entry.Info.ShapeText}, config.json implies [{string.Join(", ", shape)}]");
            else if (!entry.Info.DType.IsFloatingSupported())
                problems.Add($"{name} has unsupported dtype {entry.Info.DType}");
        }
        var extra = tensors.Keys.Where(n => !expected.Contains(n) && !ModelConfig.IsTolerated(n, Config)).Order(StringComparer.Ordinal).ToList();
        if (missing.Count > 0) problems.Insert(0, $"missing {Summarise(missing)}");
        if (extra.Count > 0) problems.Add($"unexpected {Summarise(extra)}");
        if (problems.Count > 0)
            throw new IrrException($"{Path}: tensors do not match config.json ({Config}): {string.Join("; ", problems)}");
    }

    /// <summary>
    /// Copies the files that travel with a model (tokenizer, generation config, chat template,
    /// licence …) from <paramref name="sourceDirectory"/>: every regular, non-hidden file except the
    /// weights and their indexes, and except names in <paramref name="except"/> (written by the caller).
    /// Subdirectories are not copied.
    /// </summary>
    public static void CopyAuxiliaryFiles(string sourceDirectory, OutputDirectory output, IEnumerable<string>? except = null)
    {
        var skip = new HashSet<string>(except ?? [], StringComparer.Ordinal);
        foreach (string file in Directory.EnumerateFiles(sourceDirectory))
        {
            string name = System.IO.Path.GetFileName(file);
            if (skip.Contains(name) || name.StartsWith('.') || IsWeightFile(name)) continue;
            File.Copy(file, output.PathOf(name));
        }
    }

    /// <summary>Whether a file name is model weights (safetensors, pickles, other frameworks) or their index.</summary>
    public static bool IsWeightFile(string name) =>
        name.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) ||
        name.EndsWith(".safetensors.index.json", StringComparison.OrdinalIgnoreCase) ||
        name.EndsWith(".bin.index.json", StringComparison.OrdinalIgnoreCase) ||
        (name.EndsWith(".bin", StringComparison.OrdinalIgnoreCase) && (name.StartsWith("pytorch_model", StringComparison.Ordinal) || name.StartsWith("adapter_model", StringComparison.Ordinal))) ||
        name.EndsWith(".pt", StringComparison.OrdinalIgnoreCase) || name.EndsWith(".pth", StringComparison.OrdinalIgnoreCase) ||
        name.EndsWith(".ckpt", StringComparison.OrdinalIgnoreCase) || name.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) ||
        name.EndsWith(".h5", StringComparison.OrdinalIgnoreCase) || name.EndsWith(".msgpack", StringComparison.OrdinalIgnoreCase);

    /// <summary>Releases the weight files.</summary>
    public void Dispose()
    {
        foreach (var s in Shards) s.Dispose();
    }

    private static Dictionary<string, (SafetensorsFile, TensorInfo)> OpenSharded(string directory, string indexPath, List<SafetensorsFile> shards)
    {
        JsonElement weightMap;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(indexPath));
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out var wm) || wm.ValueKind != JsonValueKind.Object)
                throw new IrrException($"{indexPath}: no \"weight_map\" object");
            weightMap = wm.Clone();
        }
        catch (JsonException e)
        {
            throw new IrrException($"{indexPath}: not valid JSON: {e.Message}", e);
        }

        // Every shard named by the index must be a plain file name inside the directory.
        var byShard = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var listed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in weightMap.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw new IrrException($"{indexPath}: weight_map['{entry.Name}'] is not a file name");
            string shard = entry.Value.GetString()!;
            if (!OutputDirectory.IsPlainFileName(shard))
                throw new IrrException($"{indexPath}: weight_map['{entry.Name}'] points to '{shard}', which is not a plain file name inside the model directory");
            if (!listed.Add(entry.Name))
                throw new IrrException($"{indexPath}: weight_map lists '{entry.Name}' twice");
            if (!byShard.TryGetValue(shard, out var names)) byShard[shard] = names = [];
            names.Add(entry.Name);
        }
        if (byShard.Count == 0) throw new IrrException($"{indexPath}: weight_map is empty");

        var map = new Dictionary<string, (SafetensorsFile, TensorInfo)>(StringComparer.Ordinal);
        foreach (var (shardName, names) in byShard)
        {
            string shardPath = System.IO.Path.Combine(directory, shardName);
            if (!File.Exists(shardPath))
                throw new IrrException($"{indexPath}: shard '{shardName}' (holding '{names[0]}'{(names.Count > 1 ? $" and {names.Count - 1} more" : "")}) is missing");
            var file = SafetensorsFile.Open(shardPath);
            shards.Add(file);
            var own = names.ToHashSet(StringComparer.Ordinal);
            foreach (string name in names)
                if (!file.TryGet(name, out _))
                    throw new IrrException($"{indexPath}: says '{name}' is in {shardName}, but that file has no such tensor");
            foreach (var t in file.Tensors)
            {
                if (!own.Contains(t.Name))
                    throw new IrrException($"{shardPath}: holds '{t.Name}', which {IndexFile} does not assign to this shard");
                map[t.Name] = (file, t);
            }
        }
        return map;
    }

    // " (+N shards)" from an index that is not loaded; nothing when it cannot be read.
    private static string ShardCountText(string indexPath)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(indexPath));
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("weight_map", out var map) && map.ValueKind == JsonValueKind.Object)
            {
                int n = map.EnumerateObject().Where(e => e.Value.ValueKind == JsonValueKind.String).Select(e => e.Value.GetString()).Distinct(StringComparer.Ordinal).Count();
                return $" (+{n} shard{(n == 1 ? "" : "s")})";
            }
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
        }
        return "";
    }

    private static string NoWeightsMessage(string path)
    {
        var names = Directory.EnumerateFiles(path).Select(System.IO.Path.GetFileName).ToList();
        if (names.Any(n => n!.StartsWith("pytorch_model", StringComparison.Ordinal) && n.EndsWith(".bin", StringComparison.Ordinal)))
            return $"{path}: has only pytorch_model*.bin weights; irr reads safetensors only, because .bin files are Python pickles that can run code when loaded " +
                   "(convert with transformers: model.save_pretrained(dir, safe_serialization=True))";
        if (names.Any(n => n!.EndsWith(".safetensors", StringComparison.Ordinal)))
            return $"{path}: has *.safetensors files but neither {WeightsFile} nor {IndexFile}";
        return $"{path}: no {WeightsFile} or {IndexFile}";
    }

    private static string Summarise(List<string> names) =>
        names.Count <= 3 ? string.Join(", ", names) : $"{string.Join(", ", names.Take(3))} and {names.Count - 3} more";
}
