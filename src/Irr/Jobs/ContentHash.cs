using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Irr.Jobs;

/// <summary>A remembered hash: the SHA-256 of a path while its size and modification time stay as recorded.</summary>
internal sealed record HashEntry
{
    /// <summary>The file or directory (full path).</summary>
    public required string Path { get; init; }

    /// <summary>The file's size, or the sum of a directory's file sizes, in bytes.</summary>
    public required long Size { get; init; }

    /// <summary>The file's last write time, or the latest of a directory's and everything in it (UTC).</summary>
    public required DateTime Mtime { get; init; }

    /// <summary>The content hash (<see cref="ContentHash.Compute"/>), lowercase hex.</summary>
    public required string Sha256 { get; init; }
}

/// <summary>
/// Content hashes of <c>irr run</c>'s inputs: the SHA-256 of a file's bytes; for a directory, of its files' relative names
/// (sorted, '/'-separated) and contents. Hashes are remembered by path, size and modification time, so that a
/// 13 GB model is hashed once, not on every run.
/// </summary>
internal sealed class ContentHash
{
    private readonly Dictionary<string, HashEntry> entries;

    /// <summary>A cache that starts with <paramref name="known"/> (from run.json).</summary>
    public ContentHash(IEnumerable<HashEntry>? known = null) =>
        entries = (known ?? []).GroupBy(e => e.Path, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Last(), StringComparer.Ordinal);

    /// <summary>How many hashes were computed rather than taken from the cache (for tests).</summary>
    public int Computed { get; private set; }

    /// <summary>The cache's entries for <paramref name="paths"/> (what run.json keeps).</summary>
    public IReadOnlyList<HashEntry> EntriesFor(IEnumerable<string> paths) =>
        paths.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).Where(entries.ContainsKey).Select(p => entries[p]).ToList();

    /// <summary>The hash of a file or directory, or null when it does not exist; from the cache while its size and time are unchanged.</summary>
    public string? Of(string path)
    {
        path = Path.GetFullPath(path);
        if (Stamp(path) is not var (size, mtime)) return null;
        if (entries.TryGetValue(path, out var known) && known.Size == size && known.Mtime == mtime) return known.Sha256;
        string hash = Compute(path);
        Computed++;
        entries[path] = new HashEntry { Path = path, Size = size, Mtime = mtime, Sha256 = hash };
        return hash;
    }

    /// <summary>"N bytes, modified TIME" of <see cref="Stamp"/>, or null when the path does not exist.</summary>
    public static string? StampText(string path) => Stamp(path) is var (size, time)
        ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{size} bytes, modified {time:O}") : null;

    /// <summary>The size and last write time that decide whether a cached hash still holds, or null when the path does not exist.</summary>
    public static (long Size, DateTime Mtime)? Stamp(string path)
    {
        if (File.Exists(path))
        {
            var file = new FileInfo(path);
            return (file.Length, file.LastWriteTimeUtc);
        }
        if (!Directory.Exists(path)) return null;
        var directory = new DirectoryInfo(path);
        long size = 0;
        DateTime latest = directory.LastWriteTimeUtc;
        foreach (var entry in directory.EnumerateFileSystemInfos("*", SearchOption.AllDirectories))
        {
            if (entry is FileInfo f) size += f.Length;
            if (entry.LastWriteTimeUtc > latest) latest = entry.LastWriteTimeUtc;
        }
        return (size, latest);
    }

    /// <summary>
    /// The SHA-256 of a file's bytes; for a directory, of each file in ordinal order of its relative name ('/'-separated):
    /// the name in UTF-8, a zero byte, the length as 8 bytes little-endian, the bytes.
    /// </summary>
    /// <exception cref="FileNotFoundException">The path does not exist.</exception>
    public static string Compute(string path) => ComputeWhere(path, _ => true);

    /// <summary>
    /// The SHA-256 of what a model or adapter directory is read from when it answers (<see cref="IsModelFile"/>: the
    /// config, the weights and their index, the tokenizer and chat template files), as <see cref="Compute"/>
    /// hashes a directory; other files (irr-report.json, a README) do not count. Null when the path does not exist.
    /// </summary>
    /// <remarks>
    /// Remembered for the process, keyed by the full path and its <see cref="Stamp"/> (size and latest modification), as
    /// irr run's hash cache is: a sweep or an evaluation that asks again for an unchanged model (its safety and its task
    /// evaluation, the answer cache of a serving engine) reads its gigabytes once.
    /// </remarks>
    public static string? OfModel(string? path)
    {
        if (path is null || !Directory.Exists(path)) return null;
        var key = (Path.GetFullPath(path), Stamp(path));
        return ModelHashes.GetOrAdd(key, _ => ComputeWhere(path, name => (!name.Contains('/') && IsModelFile(name)) || IsNamedChatTemplate(name)));
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(string Path, (long, DateTime)? Stamp), string> ModelHashes = new();

    /// <summary>Whether a file of a model or adapter directory is one the model is read from.</summary>
    public static bool IsModelFile(string name) =>
        IO.ModelDirectory.IsWeightFile(name) || name is "config.json" or "generation_config.json" or "tokenizer.json" or "tokenizer.model"
            or "tokenizer_config.json" or "special_tokens_map.json" or "added_tokens.json" or "chat_template.jinja" or "chat_template.json" or "adapter_config.json";

    /// <summary>A named chat template, <c>additional_chat_templates/&lt;name&gt;.jinja</c> (transformers reads them with the tokenizer).</summary>
    private static bool IsNamedChatTemplate(string name) =>
        name.StartsWith(Text.TokenizerSource.ChatTemplateDir + "/", StringComparison.Ordinal) && name.EndsWith(".jinja", StringComparison.Ordinal)
        && name.IndexOf('/') == name.LastIndexOf('/');

    private static string ComputeWhere(string path, Func<string, bool> include)
    {
        Span<byte> length = stackalloc byte[8];
        var buffer = new byte[1 << 20];
        if (File.Exists(path))
        {
            using var file = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            using var stream = IO.InputFile.OpenRead(path);
            AppendStream(file, stream, buffer);
            return Convert.ToHexStringLower(file.GetHashAndReset());
        }
        if (!Directory.Exists(path)) throw new FileNotFoundException($"{path}: no such file or directory", path);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var files = Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories)
            .Select(f => (Full: f, Name: Path.GetRelativePath(path, f).Replace(Path.DirectorySeparatorChar, '/')))
            .Where(f => include(f.Name))
            .OrderBy(f => f.Name, StringComparer.Ordinal);
        foreach (var (full, name) in files)
        {
            hash.AppendData(Encoding.UTF8.GetBytes(name));
            hash.AppendData([0]);
            using var stream = IO.InputFile.OpenRead(full);
            BinaryPrimitives.WriteInt64LittleEndian(length, stream.Length);
            hash.AppendData(length);
            AppendStream(hash, stream, buffer);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    // Hashing a 7B model's weights takes a minute: a stop request ends it between megabytes.
    private static void AppendStream(IncrementalHash hash, Stream stream, byte[] buffer)
    {
        int read;
        while ((read = stream.Read(buffer)) > 0)
        {
            Interruption.ThrowIfRequested();
            hash.AppendData(buffer, 0, read);
        }
    }
}
