using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Irr.IO;

namespace Irr.Eval;

/// <summary>
/// An append-only JSONL file of one object per line, as the caches (<see cref="VerdictCache"/>, <see cref="EngineCache"/>)
/// keep: read line by line when opened (each line within <see cref="Data.DataLimits.RecordBytes"/>), each new object appended at once (so an interrupted run loses at most the line being
/// written). A line that cannot be read is skipped and counted. Appending is safe from several threads.
/// </summary>
internal sealed class JsonlLog
{
    private readonly Lock _lock = new();
    private bool _needsNewline;

    private JsonlLog(string path) => Path = path;

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>Lines that could not be read (not JSON, or refused by the reader).</summary>
    public int SkippedLines { get; private set; }

    /// <summary>
    /// Whether the file ended in a line without its line feed that could not be read: the line a killed run was writing.
    /// It counts in <see cref="SkippedLines"/>; it is cut off before the next <see cref="Append"/>.
    /// </summary>
    public bool TornLastLine => _tornAt >= 0;

    // Where the torn last line begins (bytes), or -1.
    private long _tornAt = -1;

    /// <summary>
    /// Opens the file (it need not exist) and hands every line's object to <paramref name="read"/>; a line that is not a
    /// JSON object, or whose object <paramref name="read"/> refuses by throwing (a missing or mistyped field), is skipped.
    /// </summary>
    public static JsonlLog Open(string path, Action<JsonObject> read)
    {
        var log = new JsonlLog(path);
        if (!File.Exists(path)) return log;
        // Line by line, each within the record limit (a longer line is an error naming it); a line that is not UTF-8 is unreadable.
        using var stream = Utf8Lines.OpenRead(path);
        long length = stream.Length;
        if (length > 0)
        {
            stream.Seek(-1, SeekOrigin.End);
            log._needsNewline = stream.ReadByte() != '\n';
            stream.Seek(0, SeekOrigin.Begin);
        }
        using var lines = new Utf8Lines(stream, path, Data.DataLimits.RecordBytes, Data.DataLimits.RecordBytesVariable, own: false);
        bool lastUnreadable = false;
        int lastLength = 0;
        while (lines.TryRead(out var bytes))
        {
            lastLength = bytes.Length;
            lastUnreadable = false;
            if (Utf8Lines.InvalidAt(bytes.Span) >= 0)
            {
                log.SkippedLines++;
                lastUnreadable = true;
                continue;
            }
            string line = System.Text.Encoding.UTF8.GetString(bytes.Span);
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                read(JsonNode.Parse(line)!.AsObject());
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or ArgumentException or NullReferenceException or FormatException)
            {
                log.SkippedLines++;
                lastUnreadable = true;
            }
        }
        // The last line, without its line feed and unreadable: the one a killed run was writing.
        if (log._needsNewline && lastUnreadable) log._tornAt = length - lastLength;
        return log;
    }

    /// <summary>Appends one object as a line (the directory is made when missing).</summary>
    public void Append(JsonObject item)
    {
        string line = item.ToJsonString(JsonFiles.LineOptions);
        lock (_lock)
        {
            string? dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(Path));
            if (dir is not null) Directory.CreateDirectory(dir);
            if (_tornAt >= 0)
            {
                using (var file = new FileStream(Path, FileMode.Open, FileAccess.Write)) file.SetLength(_tornAt);
                _tornAt = -1;
                _needsNewline = false;
            }
            File.AppendAllText(Path, (_needsNewline ? "\n" : "") + line + "\n", new UTF8Encoding(false));
            _needsNewline = false;
        }
    }
}
