namespace Irr.IO;

/// <summary>
/// Reads a whole text file that is small by nature, within a size limit (docs/formats.md, "Data files and recipes"):
/// irr's own result and record files read back (run.json, safety.json, task.json, sweep.json and its point records,
/// irr-report.json), which a user may bring or a crash may have corrupted. A file larger than the limit is one error
/// naming it, before it is read; text that is not valid UTF-8 is refused by its line.
/// </summary>
public static class BoundedText
{
    /// <summary>The variable of <see cref="Limit"/>.</summary>
    public const string Variable = "IRR_MAX_RESULT_BYTES";

    /// <summary>The largest such file, in bytes: 64 MiB unless <c>IRR_MAX_RESULT_BYTES</c> says otherwise.</summary>
    public static long Limit => Limits.Get(Variable, 64L << 20);

    /// <summary>The text of <paramref name="path"/>, without a leading byte-order mark.</summary>
    /// <exception cref="IrrException">The file cannot be read, is larger than <see cref="Limit"/>, or is not valid UTF-8; the message names it.</exception>
    public static string Read(string path) => Read(path, "the file", Variable, Limit);

    /// <summary>
    /// The text of <paramref name="path"/> (<paramref name="what"/>: "the recipe"), without a leading byte-order mark,
    /// read within <paramref name="limit"/> bytes, which <paramref name="variable"/> raises.
    /// </summary>
    /// <exception cref="IrrException">The file cannot be read, is larger than the limit, or is not valid UTF-8; the message names it.</exception>
    public static string Read(string path, string what, string variable, long limit)
    {
        InputFile.RequireRegular(path); // a FIFO or device would block the open, or never end
        var bytes = new MemoryStream();
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1);
            if (stream.CanSeek && stream.Length > limit) throw Limits.Exceeded(path, $"{what}'s size in bytes", variable, limit);
            var chunk = new byte[64 * 1024];
            int n;
            while ((n = stream.Read(chunk, 0, chunk.Length)) > 0)
            {
                bytes.Write(chunk, 0, n);
                if (bytes.Length > limit) throw Limits.Exceeded(path, $"{what}'s size in bytes", variable, limit);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IrrException($"{path}: cannot read {what}: {Diagnostics.Escape(e.Message)}", e);
        }
        var span = bytes.GetBuffer().AsSpan(0, (int)bytes.Length);
        if (span.StartsWith("\uFEFF"u8)) span = span[3..];
        int bad = Utf8Lines.InvalidAt(span);
        if (bad >= 0) Utf8Lines.Decode(span[..(bad + 1)], $"{path} line {span[..bad].Count((byte)'\n') + 1}");
        return System.Text.Encoding.UTF8.GetString(span);
    }
}
