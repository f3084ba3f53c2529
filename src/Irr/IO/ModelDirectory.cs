using System.Text.Json;

namespace Irr.IO;

/// <summary>
/// A Hugging Face model directory: <c>config.json</c> and the weights, in one of the layouts transformers'
/// <c>from_pretrained</c> loads, in its order of precedence: <c>model.safetensors</c>, the safetensors shard index
/// <c>model.safetensors.index.json</c>, <c>pytorch_model.bin</c>, the PyTorch shard index
/// <c>pytorch_model.bin.index.json</c>. PyTorch weights are read safely (<see cref="TorchFile"/>: an allow-list
/// of pickle globals; nothing in the file is executed). Opening reads only the config, the index and each weight
/// file's header or pickle. Where several layouts are present the first is loaded, as transformers does, with a warning.
/// </summary>
public sealed class ModelDirectory : IDisposable
{
    /// <summary>The single-file weights name.</summary>
    public const string WeightsFile = "model.safetensors";

    /// <summary>The shard index name.</summary>
    public const string IndexFile = "model.safetensors.index.json";

    /// <summary>The single-file PyTorch weights name.</summary>
    public const string TorchWeightsFile = "pytorch_model.bin";

    /// <summary>The PyTorch shard index name.</summary>
    public const string TorchIndexFile = "pytorch_model.bin.index.json";

    // transformers (modeling_utils.PreTrainedModel.from_pretrained): the first present is loaded.
    private static readonly (string Name, bool Sharded, bool Torch)[] Layouts =
    [
        (WeightsFile, false, false), (IndexFile, true, false), (TorchWeightsFile, false, true), (TorchIndexFile, true, true),
    ];

    private readonly Dictionary<string, (ITensorFile File, TensorEntry Info)> tensors;

    private ModelDirectory(string path, ModelConfig config, List<ITensorFile> shards, string weightsPath, string? index,
        Dictionary<string, (ITensorFile, TensorEntry)> tensors, IReadOnlyList<string> warnings)
    {
        Path = path;
        Warnings = warnings;
        Config = config;
        Shards = shards;
        WeightsPath = weightsPath;
        IndexPath = index;
        this.tensors = tensors;
    }

    /// <summary>The directory, as given.</summary>
    public string Path { get; }

    /// <summary>The parsed config.json.</summary>
    public ModelConfig Config { get; }

    /// <summary>The weight files (safetensors or PyTorch), in index order (one when not sharded).</summary>
    public IReadOnlyList<ITensorFile> Shards { get; }

    /// <summary>The file the weights were loaded from: the single weights file, or the shard index.</summary>
    public string WeightsPath { get; }

    /// <summary>The index file, or null for a single weights file.</summary>
    public string? IndexPath { get; }

    /// <summary>
    /// Whether config.json ties the head to the embedding but the checkpoint holds an <c>lm_head.weight</c> with other
    /// values, so that, as transformers v5 decides, they are not tied and <see cref="Config"/> is untied (with a warning).
    /// A model written from this one writes <c>tie_word_embeddings: false</c>.
    /// </summary>
    public bool UntiedHead { get; private init; }

    /// <summary>Whether the weights are PyTorch files (<c>pytorch_model*.bin</c>) rather than safetensors.</summary>
    public bool IsPyTorch => Shards.Count > 0 && Shards[0] is TorchFile;

    /// <summary>
    /// What the directory holds that is not loaded, one line each (e.g. a shard index beside <c>model.safetensors</c>);
    /// each is also given to <see cref="Diagnostics.Warn"/> when the directory is opened.
    /// </summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>Every tensor of the checkpoint, in file order (a safetensors header's order; a state dict's names sorted).</summary>
    public IEnumerable<TensorEntry> Tensors => Shards.SelectMany(s => s.Tensors);

    /// <summary>Number of tensors.</summary>
    public int TensorCount => tensors.Count;

    /// <summary>Total elements of all tensors.</summary>
    public long ParameterCount => Tensors.Sum(t => t.ElementCount);

    /// <summary>Bytes of the weight files.</summary>
    public long TotalBytes => Shards.Sum(s => s.FileLength);

    /// <summary>
    /// Opens a model directory: reads config.json, the shard index if there is one, and every weight file's
    /// header (safetensors) or pickle (PyTorch), and (unless <paramref name="validate"/> is false) checks the tensors
    /// against the config. Errors are <see cref="IrrException"/>s naming the file. The layout is chosen in
    /// transformers' order (see the class summary); where several are present, the others are ignored with a warning
    /// (<see cref="Warnings"/>, <see cref="Diagnostics.Warn"/>). With <paramref name="pytorchOnly"/>, only the PyTorch
    /// layouts are considered (<c>irr convert</c>).
    /// </summary>
    public static ModelDirectory Open(string path, bool validate = true, bool pytorchOnly = false)
    {
        if (File.Exists(path))
            throw new IrrException($"{path}: is a file; a model is a directory with config.json and its weights (*.safetensors or pytorch_model*.bin)");
        if (!Directory.Exists(path))
            throw new IrrException($"{path}: no such directory");
        string configPath = System.IO.Path.Combine(path, "config.json");
        if (!File.Exists(configPath))
            throw new IrrException($"{path}: no config.json (not a Hugging Face model directory{(File.Exists(System.IO.Path.Combine(path, LoraAdapter.ConfigFile)) ? "; it is a PEFT adapter" : "")})");
        var config = ModelConfig.Load(configPath);

        var present = Layouts.Where(l => (!pytorchOnly || l.Torch) && File.Exists(System.IO.Path.Combine(path, l.Name))).ToList();
        if (present.Count == 0) throw new IrrException(NoWeightsMessage(path, pytorchOnly));
        var (name, sharded, torch) = present[0];
        string weightsPath = System.IO.Path.Combine(path, name);
        Func<string, ITensorFile> open = torch ? TorchFile.Open : SafetensorsFile.Open;
        var warnings = new List<string>();
        if (present.Count > 1)
        {
            var ignored = present.Skip(1).Select(l => l.Name + (l.Sharded ? ShardCountText(System.IO.Path.Combine(path, l.Name)) : "")).ToList();
            string all = present.Count == 2 ? $"both {name} and {ignored[0]}" : $"{name}, {string.Join(", ", ignored.SkipLast(1))} and {ignored[^1]}";
            warnings.Add($"{path}: holds {all}; loading {name}, as transformers does");
        }

        var shards = new List<ITensorFile>();
        try
        {
            Dictionary<string, (ITensorFile, TensorEntry)> map;
            if (sharded)
            {
                map = OpenSharded(path, weightsPath, shards, open);
            }
            else
            {
                var file = open(weightsPath);
                shards.Add(file);
                map = new Dictionary<string, (ITensorFile, TensorEntry)>(StringComparer.Ordinal);
                foreach (var t in file.Tensors) map[t.Name] = (file, t);
            }
            var resolved = ResolveTiedHead(path, config, map, warnings);
            foreach (string warning in warnings) Diagnostics.Warn(warning);
            var model = new ModelDirectory(path, resolved, shards, weightsPath, sharded ? weightsPath : null, map, warnings) { UntiedHead = resolved != config };
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
    public (ITensorFile File, TensorEntry Info) Locate(string name) =>
        tensors.TryGetValue(name, out var entry) ? entry : throw new IrrException($"{Path}: no tensor '{name}'");

    /// <summary>A tensor's header entry.</summary>
    public TensorEntry Info(string name) => Locate(name).Info;

    /// <summary>Reads a whole tensor as float32.</summary>
    public float[] ReadSingle(string name)
    {
        var (file, info) = Locate(name);
        var values = new float[info.ElementCount];
        file.ReadSingle(info, values);
        return values;
    }

    /// <summary>Reads rows of a tensor as float32 (see <see cref="ITensorFile.ReadRowsSingle"/>).</summary>
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
    /// Subdirectories are not copied, except the named chat templates transformers reads with the tokenizer
    /// (<c>additional_chat_templates/*.jinja</c>, unless <paramref name="except"/> names that folder).
    /// </summary>
    public static void CopyAuxiliaryFiles(string sourceDirectory, OutputDirectory output, IEnumerable<string>? except = null)
    {
        var skip = new HashSet<string>(except ?? [], StringComparer.Ordinal);
        foreach (string file in AuxiliaryFiles(sourceDirectory, skip))
        {
            InputFile.RequireRegular(file); // a FIFO would block the copy
            File.Copy(file, output.PathOf(System.IO.Path.GetFileName(file)));
        }
        if (!skip.Contains(Text.TokenizerSource.ChatTemplateDir))
            Text.TokenizerSource.CopyFiles(sourceDirectory, output.TemporaryPath, namedTemplatesOnly: true);
    }

    /// <summary>
    /// Refuses, before any work, a source directory whose files that travel with the model (<see cref="CopyAuxiliaryFiles"/>)
    /// include one that is not a regular file (a FIFO, a device): its copy would come last, after the weights are written.
    /// </summary>
    /// <exception cref="IrrException">One of them is not a regular file.</exception>
    public static void RequireRegularAuxiliaryFiles(string sourceDirectory)
    {
        foreach (string file in AuxiliaryFiles(sourceDirectory, [])) InputFile.RequireRegular(file);
        foreach (string name in Text.TokenizerSource.FilesIn(sourceDirectory)) InputFile.RequireRegular(System.IO.Path.Combine(sourceDirectory, name));
    }

    private static IEnumerable<string> AuxiliaryFiles(string sourceDirectory, HashSet<string> skip) =>
        Directory.EnumerateFiles(sourceDirectory).Where(file => System.IO.Path.GetFileName(file) is var name
            && !skip.Contains(name) && !name.StartsWith('.') && !IsWeightFile(name));

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

    private static Dictionary<string, (ITensorFile, TensorEntry)> OpenSharded(string directory, string indexPath, List<ITensorFile> shards, Func<string, ITensorFile> open)
    {
        JsonElement weightMap;
        try
        {
            using var doc = JsonFiles.ParseDocument(JsonFiles.ReadText(indexPath), indexPath, 64);
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out var wm) || wm.ValueKind != JsonValueKind.Object)
                throw new IrrException($"{indexPath}: no \"weight_map\" object");
            weightMap = wm.Clone();
        }
        catch (JsonException e)
        {
            throw new IrrException($"{indexPath}: not valid JSON {JsonFiles.Describe(e)}", e);
        }

        // Every shard named by the index must be a plain file name inside the directory.
        var byShard = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var listed = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            foreach (var entry in weightMap.EnumerateObject())
            {
                string name = entry.Name, shown = InputFile.Escape(name);
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw new IrrException($"{indexPath}: weight_map['{shown}'] is not a file name");
                string shard = entry.Value.GetString()!;
                if (!OutputDirectory.IsPlainFileName(shard) || !InputFile.IsPrintable(shard))
                    throw new IrrException($"{indexPath}: weight_map['{shown}'] points to '{InputFile.Escape(shard)}', which is not a plain file name inside the model directory");
                if (!listed.Add(name))
                    throw new IrrException($"{indexPath}: weight_map lists '{shown}' twice");
                if (!byShard.TryGetValue(shard, out var names)) byShard[shard] = names = [];
                names.Add(name);
            }
        }
        catch (InvalidOperationException e)
        {
            // A lone surrogate escape (\ud800): System.Text.Json parses it but makes no string of it.
            throw new IrrException($"{indexPath}: weight_map holds a string that is not valid Unicode (a lone surrogate escape such as \\ud800)", e);
        }
        if (byShard.Count == 0) throw new IrrException($"{indexPath}: weight_map is empty");

        var map = new Dictionary<string, (ITensorFile, TensorEntry)>(StringComparer.Ordinal);
        foreach (var (shardName, names) in byShard)
        {
            string shardPath = System.IO.Path.Combine(directory, shardName);
            if (!File.Exists(shardPath))
                throw new IrrException($"{indexPath}: shard '{shardName}' (holding '{InputFile.Escape(names[0])}'{(names.Count > 1 ? $" and {names.Count - 1} more" : "")}) is missing");
            var file = open(shardPath);
            shards.Add(file);
            var own = names.ToHashSet(StringComparer.Ordinal);
            foreach (string name in names)
                if (!file.TryGetEntry(name, out _))
                    throw new IrrException($"{indexPath}: says '{InputFile.Escape(name)}' is in {shardName}, but that file has no such tensor");
            foreach (var t in file.Tensors)
            {
                if (!own.Contains(t.Name))
                    throw new IrrException($"{shardPath}: holds '{InputFile.Escape(t.Name)}', which {System.IO.Path.GetFileName(indexPath)} does not assign to this shard");
                map[t.Name] = (file, t);
            }
        }
        return map;
    }

    /// <summary>
    /// A config that ties the head to the embedding, against what the checkpoint holds, decided as transformers v5 does
    /// (modeling_utils.PreTrainedModel.tie_weights): an <c>lm_head.weight</c> equal to the embedding is tied (the
    /// stored copy is the same function; PyTorch checkpoints always hold both); one with different values (or another
    /// shape) is NOT tied, with transformers' warning, so the config returned is untied and the stored head is used;
    /// a checkpoint with the head but no embedding reads the embedding from the head.
    /// </summary>
    private static ModelConfig ResolveTiedHead(string path, ModelConfig config, Dictionary<string, (ITensorFile File, TensorEntry Info)> map, List<string> warnings)
    {
        const string embed = LoraAdapter.EmbedWeight, head = LoraAdapter.HeadWeight;
        if (!config.TieWordEmbeddings || !map.TryGetValue(head, out var h)) return config;
        if (!map.TryGetValue(embed, out var e))
        {
            map[embed] = h;
            return config;
        }
        if (SameValues(e.File, e.Info, h.File, h.Info)) return config;
        warnings.Add($"{path}: config.json ties lm_head.weight to {embed} (tie_word_embeddings true), but both are in the checkpoint with different values, " +
                     "so they are not tied, as transformers decides; lm_head.weight is used (set tie_word_embeddings to false to silence this)");
        return config.WithTiedEmbeddings(false);
    }

    // torch.equal on the float32 values: the same shape and every element equal (NaN equals nothing), read in row blocks.
    private static bool SameValues(ITensorFile fa, TensorEntry a, ITensorFile fb, TensorEntry b)
    {
        if (!a.Shape.SequenceEqual(b.Shape) || !a.DType.IsFloatingSupported() || !b.DType.IsFloatingSupported()) return false;
        long width = Math.Max(a.RowLength, 1), block = Math.Max(1, (1 << 20) / width);
        var x = new float[block * width];
        var y = new float[block * width];
        for (long row = 0; row < a.Rows; row += block)
        {
            long count = Math.Min(block, a.Rows - row);
            Span<float> sx = x.AsSpan(0, (int)(count * width)), sy = y.AsSpan(0, (int)(count * width));
            fa.ReadRowsSingle(a, row, count, sx);
            fb.ReadRowsSingle(b, row, count, sy);
            for (int i = 0; i < sx.Length; i++)
                if (sx[i] != sy[i]) return false;
        }
        return true;
    }

    // " (+N shards)" from an index that is not loaded; nothing when it cannot be read.
    private static string ShardCountText(string indexPath)
    {
        try
        {
            using var doc = JsonFiles.ParseDocument(JsonFiles.ReadText(indexPath), indexPath, 64);
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("weight_map", out var map) && map.ValueKind == JsonValueKind.Object)
            {
                int n = map.EnumerateObject().Where(e => e.Value.ValueKind == JsonValueKind.String).Select(e => e.Value.GetString()).Distinct(StringComparer.Ordinal).Count();
                return $" (+{n} shard{(n == 1 ? "" : "s")})";
            }
        }
        catch (Exception e) when (e is IrrException or JsonException or IOException or UnauthorizedAccessException or InvalidOperationException)
        {
        }
        return "";
    }

    private static string NoWeightsMessage(string path, bool pytorchOnly)
    {
        var names = Directory.EnumerateFiles(path).Select(System.IO.Path.GetFileName).ToList();
        if (pytorchOnly) return $"{path}: no {TorchWeightsFile} or {TorchIndexFile}";
        if (names.Any(n => n!.EndsWith(".safetensors", StringComparison.Ordinal)))
            return $"{path}: has *.safetensors files but neither {WeightsFile} nor {IndexFile}";
        if (names.Any(n => n!.StartsWith("pytorch_model", StringComparison.Ordinal) && n.EndsWith(".bin", StringComparison.Ordinal)))
            return $"{path}: has pytorch_model*.bin files but neither {TorchWeightsFile} nor {TorchIndexFile}";
        return $"{path}: no weights ({WeightsFile}, {IndexFile}, {TorchWeightsFile} or {TorchIndexFile})";
    }

    private static string Summarise(List<string> names) =>
        names.Count <= 3 ? string.Join(", ", names) : $"{string.Join(", ", names.Take(3))} and {names.Count - 3} more";
}
