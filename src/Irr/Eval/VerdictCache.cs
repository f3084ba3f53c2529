using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Irr.Eval;

/// <summary>
/// Verdicts on disk, so that an interrupted evaluation resumes without asking the judge again: an
/// append-only JSONL file, one <c>{"key", "verdict", "detail", "score", "refused"}</c> object per line, keyed by the
/// SHA-256 of (judge name with protocol and model, prompt, response). Only parsed verdicts (safe,
/// harmful) are stored; unknowns are asked again on the next run. A truncated or unreadable line (an
/// interrupted write) is skipped. Safe to use from several threads.
/// </summary>
internal sealed class VerdictCache
{
    private readonly Dictionary<string, JudgeResult> _entries = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private readonly JsonlLog _log;

    private VerdictCache(string path) =>
        _log = JsonlLog.Open(path, o =>
        {
            var verdict = Enum.Parse<Verdict>((string)o["verdict"]!, ignoreCase: true);
            if (verdict != Verdict.Unknown) _entries[(string)o["key"]!] = new JudgeResult(verdict, (string?)o["detail"], (int?)o["score"]) { Refused = (bool?)o["refused"] };
        });

    /// <summary>The cache file.</summary>
    public string Path => _log.Path;

    /// <summary>Verdicts held.</summary>
    public int Count
    {
        get { lock (_lock) return _entries.Count; }
    }

    /// <summary>Lines of the file that could not be read (normally 0, or 1 after an interrupted write).</summary>
    public int SkippedLines => _log.SkippedLines;

    /// <summary>Opens (or starts) the cache at <paramref name="path"/>; the file is created on the first <see cref="Add"/>.</summary>
    public static VerdictCache Open(string path) => new(path);

    /// <summary>The key of one judgement: hex SHA-256 of the UTF-8 of judge name, prompt and response separated by NUL.</summary>
    public static string Key(string judgeName, JudgeRequest request) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{judgeName}\0{request.Prompt}\0{request.Response}")));

    /// <summary>The cached verdict, or null.</summary>
    public JudgeResult? Get(string key)
    {
        lock (_lock) return _entries.GetValueOrDefault(key);
    }

    /// <summary>Stores a verdict and appends it to the file at once (unknown verdicts are not stored).</summary>
    public void Add(string key, JudgeResult result)
    {
        if (result.Verdict == Verdict.Unknown) return;
        lock (_lock) _entries[key] = result;
        _log.Append(new JsonObject
        {
            ["key"] = key,
            ["verdict"] = result.Verdict.ToString().ToLowerInvariant(),
            ["detail"] = result.Detail,
            ["score"] = result.Score,
            ["refused"] = result.Refused,
        });
    }
}
