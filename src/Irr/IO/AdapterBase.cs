using System.Text.Json.Nodes;

namespace Irr.IO;

/// <summary>
/// Whether a PEFT adapter belongs to the base model it is applied to, judged from what adapter_config.json records
/// (<c>base_model_name_or_path</c>, as PEFT writes it: the path or Hub ID the base was loaded from when training began).
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>The name is a directory here (absolute, or relative to the working directory or to the adapter): the same
/// directory (after links), or a copy with the same <see cref="ModelFingerprint"/>, belongs; one whose config.json
/// differs in architecture or size (<see cref="Facts"/>), or whose weights differ while stored in the same types, is
/// another base (<see cref="Verdict.Mismatch"/>); weights stored in other types cannot be compared.</item>
/// <item>Otherwise (a Hub ID, or a training machine's path): the base is taken to be it when its directory's name,
/// its config's <c>_name_or_path</c> or its Hugging Face cache folder (<c>models--ORG--NAME</c>) carries the same name;
/// the Hugging Face cache's config.json of that ID, when there is one, is compared as above; anything else cannot be
/// decided (<see cref="Verdict.Unknown"/>).</item>
/// </list>
/// </remarks>
public static class AdapterBase
{
    /// <summary>What the check found.</summary>
    public enum Verdict
    {
        /// <summary>The adapter names the base, or names nothing.</summary>
        Belongs,

        /// <summary>The adapter names a base that cannot be compared with the given one (the message says why).</summary>
        Unknown,

        /// <summary>The adapter's named base is provably another model (the message says how).</summary>
        Mismatch,
    }

    /// <summary>
    /// <see cref="Check"/>, acted on: a <see cref="Verdict.Mismatch"/> is refused, a <see cref="Verdict.Unknown"/> is a
    /// <see cref="Diagnostics.Warn"/>.
    /// </summary>
    /// <exception cref="IrrException">The adapter names a base that is provably another model than <paramref name="baseModel"/>.</exception>
    public static void Require(string adapter, string baseModel)
    {
        var (verdict, message) = Check(adapter, baseModel);
        if (verdict == Verdict.Mismatch) throw new IrrException(message!);
        if (verdict == Verdict.Unknown) Diagnostics.Warn(message!);
    }

    /// <summary>The config.json keys compared: a base differing in one of them is another model.</summary>
    public static IReadOnlyList<string> FactKeys { get; } =
        ["model_type", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "vocab_size"];

    /// <summary>
    /// Compares the base the adapter in <paramref name="adapter"/> (a directory) names with <paramref name="baseModel"/> (a
    /// model directory). The message (null for <see cref="Verdict.Belongs"/>) names both and starts with the adapter's path.
    /// <paramref name="hubCache"/> is the Hugging Face hub cache to look a Hub ID up in, or null for huggingface_hub's
    /// (<c>HF_HUB_CACHE</c>, else <c>HF_HOME/hub</c>, else <c>~/.cache/huggingface/hub</c>).
    /// </summary>
    public static (Verdict Verdict, string? Message) Check(string adapter, string baseModel, string? hubCache = null)
    {
        string configPath = Path.Combine(adapter, LoraAdapter.ConfigFile);
        if (!File.Exists(configPath) || !File.Exists(Path.Combine(baseModel, "config.json"))) return (Verdict.Belongs, null);
        string? named;
        try
        {
            named = JsonFiles.ParseObject(JsonFiles.ReadText(configPath), configPath)["base_model_name_or_path"] is JsonValue v && v.TryGetValue(out string? s) ? s : null;
        }
        catch (IrrException)
        {
            return (Verdict.Belongs, null); // the adapter's own reader reports a malformed file
        }
        if (string.IsNullOrWhiteSpace(named)) return (Verdict.Belongs, null);
        string claim = $"{HubCache.Display(adapter)}: adapter_config.json names its base '{named}' (base_model_name_or_path)";
        string given = HubCache.Display(baseModel);

        if (LocalDirectory(named, adapter) is { } local)
        {
            if (SameDirectory(local, baseModel)) return (Verdict.Belongs, null);
            return Compare(local, baseModel, claim);
        }

        if (NamesMatch(named, baseModel)) return (Verdict.Belongs, null);
        var facts = Facts(Path.Combine(baseModel, "config.json"));
        var cached = HubCacheConfigs(named, hubCache).ToList();
        if (cached.Count > 0)
        {
            var matching = cached.Where(c => Differences(Facts(c), facts).Count == 0).ToList();
            if (matching.Count == 0)
                return (Verdict.Mismatch, $"{claim}, which the Hugging Face cache holds as {Describe(Facts(cached[0]))}, but the base given, {given}, is {Describe(facts)}");
            return (Verdict.Unknown, $"{claim}, which the Hugging Face cache holds with the same shapes as the base given, {given} ({Describe(facts)}), under another name; irr cannot check that they are one model");
        }
        return (Verdict.Unknown, $"{claim}, which is no model directory here (no config.json) and not the name of the base given, {given} ({Describe(facts)}); irr cannot check that they are one model");
    }

    private static (Verdict, string?) Compare(string named, string baseModel, string claim)
    {
        var a = Facts(Path.Combine(named, "config.json"));
        var b = Facts(Path.Combine(baseModel, "config.json"));
        var differences = Differences(a, b);
        if (differences.Count > 0)
            return (Verdict.Mismatch, $"{claim}, a model with {string.Join(", ", differences.Select(k => $"{k} {a[k]}"))}, but the base given, {HubCache.Display(baseModel)}, has {string.Join(", ", differences.Select(k => $"{k} {b[k]}"))}");
        string ta, tb;
        try
        {
            if (ModelFingerprint.Of(named) == ModelFingerprint.Of(baseModel)) return (Verdict.Belongs, null);
            ta = ModelFingerprint.StorageTypes(named);
            tb = ModelFingerprint.StorageTypes(baseModel);
        }
        catch (IrrException e)
        {
            return (Verdict.Unknown, $"{claim}, whose weights irr cannot compare with those of the base given, {HubCache.Display(baseModel)} ({e.Message})");
        }
        if (ta != tb)
            return (Verdict.Unknown, $"{claim}, stored as {ta}, and the base given, {HubCache.Display(baseModel)}, is stored as {tb}; irr cannot check that they are one model");
        return (Verdict.Mismatch, $"{claim}, whose weights differ from those of the base given, {HubCache.Display(baseModel)} (same architecture, other values): the adapter was trained on another model");
    }

    /// <summary>The <see cref="FactKeys"/> a config.json holds, as JSON text (empty when unreadable).</summary>
    public static Dictionary<string, string> Facts(string configPath)
    {
        try
        {
            var root = JsonFiles.ParseObject(JsonFiles.ReadText(configPath), configPath);
            var config = root["text_config"] is JsonObject text && !root.ContainsKey("hidden_size") ? text : root;
            return FactKeys.Where(k => config[k] is JsonValue).ToDictionary(k => k, k => config[k]!.ToJsonString().Trim('"'));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or IrrException)
        {
            return [];
        }
    }

    /// <summary>
    /// config.json's <c>_name_or_path</c> in <paramref name="model"/> (what transformers records as the model a checkpoint
    /// was loaded from), or null when it is absent, empty or the file is unreadable.
    /// </summary>
    public static string? NameOrPath(string model)
    {
        try
        {
            string path = Path.Combine(model, "config.json");
            return JsonFiles.ParseObject(JsonFiles.ReadText(path), path)["_name_or_path"] is JsonValue v && v.TryGetValue(out string? origin) && !string.IsNullOrWhiteSpace(origin)
                ? origin
                : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or IrrException)
        {
            return null;
        }
    }

    /// <summary>The <see cref="FactKeys"/> in which two <see cref="Facts"/> differ (keys present in both).</summary>
    public static List<string> Differences(Dictionary<string, string> a, Dictionary<string, string> b) =>
        FactKeys.Where(k => a.ContainsKey(k) && b.ContainsKey(k) && a[k] != b[k]).ToList();

    private static string Describe(Dictionary<string, string> facts) =>
        facts.Count == 0 ? "a model" : string.Join(", ", facts.Select(kv => $"{kv.Key} {kv.Value}"));

    // The named base as a model directory here: absolute, or relative to the working directory or to the adapter.
    private static string? LocalDirectory(string named, string adapter)
    {
        string[] candidates = Path.IsPathRooted(named) ? [named] : [Path.GetFullPath(named), Path.GetFullPath(Path.Combine(adapter, named))];
        return candidates.FirstOrDefault(c => File.Exists(Path.Combine(c, "config.json")));
    }

    /// <summary>Whether two paths are one directory: equal full paths, or equal after resolving links.</summary>
    public static bool SameDirectory(string a, string b) => Resolve(a) == Resolve(b);

    private static string Resolve(string path)
    {
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        try
        {
            // Resolve every component: a link may be anywhere along the path.
            string? parent = Path.GetDirectoryName(full);
            string resolvedParent = parent is null ? full : Resolve(parent);
            string joined = parent is null ? full : Path.Combine(resolvedParent, Path.GetFileName(full));
            var target = new DirectoryInfo(joined).ResolveLinkTarget(returnFinalTarget: true);
            return target is null ? joined : Resolve(target.FullName);
        }
        catch (IOException)
        {
            return full;
        }
    }

    // A Hub ID (or a foreign path) names the base when the base's directory, its config's _name_or_path or its cache
    // folder carries the same last component (case-insensitively, as Hub IDs are matched).
    private static bool NamesMatch(string named, string baseModel)
    {
        string Leaf(string s) => Path.GetFileName(s.Replace('\\', '/').TrimEnd('/'));
        string want = Leaf(named);
        var names = new List<string> { Leaf(Path.GetFullPath(baseModel)), Leaf(Resolve(baseModel)) };
        if (NameOrPath(baseModel) is { } origin) names.Add(Leaf(origin));
        // …/models--ORG--NAME/snapshots/REVISION, as given or after links
        foreach (string path in new[] { Path.TrimEndingDirectorySeparator(Path.GetFullPath(baseModel)), Resolve(baseModel) })
        {
            var parts = path.Split('/');
            if (parts.Length >= 3 && parts[^2] == "snapshots" && parts[^3].StartsWith("models--", StringComparison.Ordinal))
                names.Add(parts[^3]["models--".Length..].Split("--")[^1]);
        }
        return names.Any(n => string.Equals(n, want, StringComparison.OrdinalIgnoreCase));
    }

    // config.json of a Hub ID's snapshots in the Hugging Face cache (HF_HUB_CACHE, HF_HOME/hub or ~/.cache/huggingface/hub).
    private static IEnumerable<string> HubCacheConfigs(string id, string? hubCache)
    {
        var parts = id.Split('/');
        if (parts.Length is < 1 or > 2 || parts.Any(p => p.Length == 0 || p is "." or "..")) yield break;
        string? home = Environment.GetEnvironmentVariable("HF_HOME");
        string hub = hubCache ?? (Environment.GetEnvironmentVariable("HF_HUB_CACHE") is { Length: > 0 } h ? h
            : home is { Length: > 0 } ? Path.Combine(home, "hub")
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "huggingface", "hub"));
        string snapshots = Path.Combine(hub, "models--" + string.Join("--", parts), "snapshots");
        if (!Directory.Exists(snapshots)) yield break;
        foreach (string snapshot in Directory.EnumerateDirectories(snapshots).Order(StringComparer.Ordinal))
            if (File.Exists(Path.Combine(snapshot, "config.json"))) yield return Path.Combine(snapshot, "config.json");
    }
}
