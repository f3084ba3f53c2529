using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Irr.Eval;

namespace Irr.Model;

/// <summary>
/// Answers generated locally (with the weights loaded), on disk, so that an interrupted <c>irr generate</c>,
/// <c>irr eval safety</c> or <c>irr eval task</c> resumes where it stopped: an append-only JSONL file, one
/// <c>{"key", "token_ids"}</c> object per answer, appended (and flushed) as each batch of answers ends. The key
/// (<see cref="Key"/>) is the SHA-256 of everything the answer depends on: the model's and adapter's files
/// (<see cref="Jobs.ContentHash.OfModel"/>), the prompt's token ids (chat template, system prompt, attack and prefill
/// included), the token limit, the EOS ids and the sampling settings (and, when sampling, the seed and the prompt's
/// position); a change to any of them never reuses an answer. The text is decoded again from the token ids. Unreadable
/// lines are skipped: a torn last line (a run killed while writing it) silently, others with one warning
/// (<see cref="Diagnostics.Warn"/>). Safe to use from several threads. The serving engine's counterpart is
/// <see cref="EngineCache"/>.
/// </summary>
internal sealed class GenerationCache
{
    /// <summary>The cache's file name in a run directory (<c>irr eval safety</c>, <c>irr eval task</c>).</summary>
    public const string FileName = "generation-cache.jsonl";

    private readonly Dictionary<string, int[]> _entries = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private readonly JsonlLog _log;

    private GenerationCache(string path, string modelStamp)
    {
        ModelStamp = modelStamp;
        _log = JsonlLog.Open(path, o =>
        {
            var ids = o["token_ids"]!.AsArray().Select(n => (int)n!).ToArray();
            if (ids.Any(id => id < 0)) throw new FormatException("negative token id");
            _entries[(string)o["key"]!] = ids;
        });
        // A torn last line is the one a killed run was writing: ignored without a word.
        if (_log.SkippedLines - (_log.TornLastLine ? 1 : 0) is > 0 and var unreadable)
            Diagnostics.Warn($"{path}: {unreadable} unreadable line(s) of the generation cache ignored; those answers are generated again");
    }

    /// <summary>
    /// Opens (or starts) the cache at <paramref name="path"/> for answers of <paramref name="model"/> with
    /// <paramref name="adapter"/> (directories whose files are hashed into every key); the file is created on the first <see cref="Add"/>.
    /// </summary>
    /// <exception cref="IOException">The file exists but cannot be read.</exception>
    public static GenerationCache Open(string path, string model, string? adapter) =>
        new(path, $"{Jobs.ContentHash.OfModel(model)}+{Jobs.ContentHash.OfModel(adapter)}");

    /// <summary>Opens the cache at <paramref name="path"/> with a given model stamp (tests, models in memory).</summary>
    public static GenerationCache Open(string path, string modelStamp) => new(path, modelStamp);

    /// <summary>The cache file.</summary>
    public string Path => _log.Path;

    /// <summary>What the answers are of: the hashes of the model's and adapter's files.</summary>
    public string ModelStamp { get; }

    /// <summary>Answers held.</summary>
    public int Count
    {
        get { lock (_lock) return _entries.Count; }
    }

    /// <summary>
    /// The key of the answer to prompt <paramref name="index"/> (its position in the run) with token ids
    /// <paramref name="prompt"/>: hex SHA-256 of the UTF-8 of the model stamp, max new tokens, the sorted EOS ids,
    /// temperature, top-p, top-k, the seed and index when sampling (temperature above 0; a greedy answer depends on
    /// neither) and the prompt's ids, NUL-separated. The batch size is not part of it: batching does not change the answers.
    /// </summary>
    public string Key(IReadOnlyList<int> prompt, GenerationOptions options, int index)
    {
        var text = new StringBuilder("irr-local-1\0").Append(ModelStamp).Append('\0');
        text.Append(CultureInfo.InvariantCulture, $"{options.MaxNewTokens}\0{string.Join(",", options.EosTokenIds.Order())}\0");
        text.Append(CultureInfo.InvariantCulture, $"{options.Temperature:R}\0{options.TopP:R}\0{options.TopK}\0");
        if (options.Temperature > 0) text.Append(CultureInfo.InvariantCulture, $"{options.Seed}\0{index}\0");
        text.AppendJoin(',', prompt);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    /// <summary>
    /// The cached answer's token ids, or null; an entry that cannot be an answer under <paramref name="options"/> (longer
    /// than the token limit, or shorter without ending on an EOS id: an edited file) counts as missing.
    /// </summary>
    public int[]? Get(string key, GenerationOptions options)
    {
        int[]? ids;
        lock (_lock) ids = _entries.GetValueOrDefault(key);
        if (ids is null || ids.Length > options.MaxNewTokens) return null;
        return ids.Length == options.MaxNewTokens || (ids.Length > 0 && options.EosTokenIds.Contains(ids[^1])) ? ids : null;
    }

    /// <summary>Whether an answer is held under <paramref name="key"/>.</summary>
    public bool Contains(string key)
    {
        lock (_lock) return _entries.ContainsKey(key);
    }

    /// <summary>Stores an answer and appends it to the file at once.</summary>
    public void Add(string key, int[] tokenIds)
    {
        lock (_lock) _entries[key] = tokenIds;
        _log.Append(new JsonObject
        {
            ["key"] = key,
            ["token_ids"] = new JsonArray([.. tokenIds.Select(id => (JsonNode)id)]),
        });
    }

    /// <summary>
    /// Notes for an interrupted run (<see cref="Interruption.Keep"/>) that <paramref name="kept"/> of its
    /// <paramref name="total"/> answers are kept at <paramref name="path"/>: "N of M answers kept in PATH; run the same
    /// command to resume" (nothing when none are).
    /// </summary>
    public static void NoteKept(int kept, int total, string path)
    {
        if (kept > 0) Interruption.Keep($"{kept} of {total} answers kept in {path}; run the same command to resume");
    }
}
