namespace Irr.IO;

/// <summary>
/// A tensor file read under Hugging Face tensor names (<c>model.layers.{i}.self_attn.q_proj.weight</c>), the names safety
/// vectors and Fisher files are keyed by (IRR-SPEC), whatever wrapper the dict was saved from. A state dict written with
/// <c>torch.save(dict(model.named_parameters()))</c> carries the names of the object it was taken from:
/// <list type="bullet">
/// <item>a PEFT model (<c>get_peft_model</c>) prefixes <c>base_model.model.</c>, and its LoRA layers keep the wrapped
/// weight as <c>….q_proj.base_layer.weight</c>;</item>
/// <item>torch's <c>DataParallel</c> / <c>DistributedDataParallel</c> prefix <c>module.</c>;</item>
/// <item><c>torch.compile</c> prefixes <c>_orig_mod.</c>;</item>
/// <item>the inner model (<c>model.model</c>, a <c>LlamaModel</c>) has no <c>model.</c> prefix: <c>layers.0.…</c>;</item>
/// </list>
/// and any combination of these. Each key is read as: its leading <c>module.</c>, <c>_orig_mod.</c> and
/// <c>base_model.model.</c> removed (repeatedly, in any order); <c>.base_layer.weight</c> (<c>.bias</c>) at its end read as
/// <c>.weight</c> (<c>.bias</c>); and <c>model.</c> put before a key that then starts with <c>layers.</c> (or with the inner
/// model's other names, <c>embed_tokens.</c> and <c>norm.</c>). A key that is not a
/// model tensor once mapped (a LoRA factor, <c>lora_A</c>/<c>lora_B</c>…, or PEFT's <c>modules_to_save</c>/<c>original_module</c>
/// copies) keeps its own name, which no lookup asks for. A file whose keys are Hugging Face names already reads unchanged.
/// When some key is renamed, one warning (<see cref="Diagnostics.Warn"/>) names the file and the rules that applied.
/// Disposing the wrapper disposes the file.
/// </summary>
public sealed class TensorNames : ITensorFile
{
    /// <summary>The leading prefixes removed, with their sources: PEFT, torch DDP / DataParallel, torch.compile.</summary>
    public static IReadOnlyList<string> WrapperPrefixes { get; } = ["base_model.model.", "module.", "_orig_mod."];

    private const string BaseLayer = ".base_layer.";
    private const string ModelPrefix = "model.";
    private static readonly string[] BaseLayerLeaves = ["weight", "bias"];

    // The names of the inner model (LlamaModel, the CausalLM's `model`), which the CausalLM has under `model.`.
    private static readonly string[] InnerPrefixes = ["embed_tokens.", "layers.", "norm."];

    // Every rule but the prefixes, as the warning states it, in the order Map applies them.
    private static readonly string[] RenameRules =
        [.. BaseLayerLeaves.Select(BaseLayerRule), .. InnerPrefixes.Select(InnerRule)];

    private static string BaseLayerRule(string leaf) => $"'{BaseLayer}{leaf}' → '.{leaf}'";

    private static string InnerRule(string prefix) => $"'{prefix}' → '{ModelPrefix}{prefix}'";

    private readonly ITensorFile file;
    private readonly Dictionary<string, string> keyOf;
    private readonly Dictionary<string, TensorEntry> entries;

    /// <summary>Reads <paramref name="file"/> under Hugging Face names; warns once when a key is renamed.</summary>
    /// <param name="file">The file; disposed with the wrapper.</param>
    /// <exception cref="IrrException">Two keys read as the same name; the message names the file, both keys and the name.</exception>
    public TensorNames(ITensorFile file)
    {
        this.file = file;
        var keys = file.Tensors.Select(t => t.Name).ToList();
        keyOf = new Dictionary<string, string>(keys.Count, StringComparer.Ordinal);
        var names = new List<string>(keys.Count);
        var prefixes = new HashSet<string>(StringComparer.Ordinal);
        var used = new HashSet<string>(StringComparer.Ordinal);
        // Unchanged keys first, so that a collision names the key read as another's name second.
        foreach (var (key, name, removed, renamed) in keys.Select(Map).OrderBy(m => m.Name != m.Key))
        {
            if (keyOf.TryGetValue(name, out string? other))
                throw new IrrException($"{file.Path}: tensors '{other}' and '{key}' both read as the Hugging Face name '{name}'; keep one of them");
            keyOf[name] = key;
            names.Add(name);
            if (name == key) continue;
            prefixes.UnionWith(removed);
            used.UnionWith(renamed);
        }
        Names = names;
        entries = new Dictionary<string, TensorEntry>(names.Count, StringComparer.Ordinal);
        var list = new List<TensorEntry>(names.Count);
        foreach (string name in names)
        {
            var inner = file.Entry(keyOf[name]);
            var entry = name == inner.Name ? inner : new RenamedEntry(name, inner);
            entries[name] = entry;
            list.Add(entry);
        }
        Tensors = list;
        // In a fixed order: the prefixes, then the other rules as Map applies them.
        var rules = RenameRules.Where(used.Contains).ToList();
        if (prefixes.Count > 0)
            rules.Insert(0, $"removed prefix{(prefixes.Count > 1 ? "es" : "")} {string.Join(", ", WrapperPrefixes.Where(prefixes.Contains).Select(p => $"'{p}'"))}");
        Rules = rules;
        if (rules.Count > 0) Diagnostics.Warn($"{file.Path}: tensor names read as Hugging Face names ({string.Join("; ", rules)})");
    }

    /// <inheritdoc/>
    public string Path => file.Path;

    /// <summary>The file's tensors under the names they are read by, in the order of the keys given (unchanged keys first).</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>The rules that renamed some key, as the warning states them ("removed prefix 'module.'", "'layers.' → 'model.layers.'"); empty when none did.</summary>
    public IReadOnlyList<string> Rules { get; }

    /// <inheritdoc/>
    public long FileLength => file.FileLength;

    /// <summary>The file's tensors under the names they are read by (<see cref="Names"/>' order).</summary>
    public IReadOnlyList<TensorEntry> Tensors { get; }

    /// <inheritdoc/>
    public bool TryGetEntry(string name, out TensorEntry entry) => entries.TryGetValue(name, out entry!);

    /// <inheritdoc/>
    public void ReadRowsSingle(TensorEntry entry, long firstRow, long rowCount, Span<float> destination) =>
        file.ReadRowsSingle(entry is RenamedEntry renamed ? renamed.Inner : entry, firstRow, rowCount, destination);

    /// <inheritdoc/>
    public void Dispose() => file.Dispose();

    /// <summary>
    /// Opens a safety vector or Fisher file (<see cref="TensorFiles.Open"/>: safetensors or a PyTorch state dict) under
    /// Hugging Face names.
    /// </summary>
    /// <exception cref="IrrException">The file cannot be read, or two of its keys read as the same name.</exception>
    public static TensorNames OpenHfKeyed(string path)
    {
        var file = TensorFiles.Open(path);
        try
        {
            return new TensorNames(file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>The Hugging Face name a key is read as (the key itself when it is one already, or is no model tensor).</summary>
    public static string HfName(string key) => Map(key).Name;

    // The mapped name, the wrapper prefixes removed and the other rules that applied (none when the key is kept).
    private static (string Key, string Name, List<string> Removed, List<string> Renamed) Map(string key)
    {
        string name = key;
        var removed = new List<string>();
        var renamed = new List<string>();
        for (bool stripped = true; stripped;)
        {
            stripped = false;
            foreach (string prefix in WrapperPrefixes)
            {
                if (name.Length > prefix.Length && name.StartsWith(prefix, StringComparison.Ordinal))
                {
                    name = name[prefix.Length..];
                    removed.Add(prefix);
                    stripped = true;
                }
            }
        }
        foreach (string leaf in BaseLayerLeaves)
        {
            string suffix = BaseLayer + leaf;
            if (name.Length > suffix.Length && name.EndsWith(suffix, StringComparison.Ordinal))
            {
                name = name[..^suffix.Length] + "." + leaf;
                renamed.Add(BaseLayerRule(leaf));
            }
        }
        if (InnerPrefixes.FirstOrDefault(p => name.StartsWith(p, StringComparison.Ordinal)) is { } inner)
        {
            name = ModelPrefix + name;
            renamed.Add(InnerRule(inner));
        }
        return name == key || !IsModelTensor(name) ? (key, key, [], []) : (key, name, removed, renamed);
    }

    // Not a LoRA factor (lora_A, lora_B, lora_embedding_A, lora_magnitude_vector …) nor a PEFT modules_to_save copy.
    private static bool IsModelTensor(string name) =>
        !name.Split('.').Any(part => part.StartsWith("lora_", StringComparison.Ordinal) || part is "modules_to_save" or "original_module");
}
