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
        var span = ReadBytes(path, limit, _ => Limits.Exceeded(path, $"{what}'s size in bytes", variable, limit),
            e => new IrrException($"{path}: cannot read {what}: {InputFile.Reason(e)}", e));
        return DecodeUtf8(span.StartsWith("\uFEFF"u8) ? span[3..] : span, path);
    }

    /// <summary>
    /// The bytes of a regular file, read in chunks and never beyond <paramref name="limit"/>: a file that declares or turns
    /// out larger is <paramref name="tooLarge"/>(its declared length, when it has one) before more is read.
    /// </summary>
    /// <exception cref="IrrException">Not a regular file, too large, or (through <paramref name="unreadable"/>) an I/O error.</exception>
    internal static Span<byte> ReadBytes(string path, long limit, Func<long?, IrrException> tooLarge, Func<Exception, IrrException> unreadable)
    {
        InputFile.RequireRegular(path); // a FIFO or device would block the open, or never end
        var bytes = new MemoryStream();
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.SequentialScan);
            if (stream.CanSeek && stream.Length > limit) throw tooLarge(stream.Length);
            var chunk = new byte[64 * 1024];
            for (int n; (n = stream.Read(chunk, 0, chunk.Length)) > 0;)
            {
                if (bytes.Length + n > limit) throw tooLarge(null);
                bytes.Write(chunk, 0, n);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw unreadable(e);
        }
        return bytes.GetBuffer().AsSpan(0, (int)bytes.Length);
    }

    /// <summary>
    /// Strict UTF-8 decoding of a file's bytes: the text, or an error at the first byte that is not UTF-8, by line and column
    /// ("config.json line 3: not valid UTF-8 (byte 0xff at column 17)"), as Python's <c>utf-8</c> codec refuses it.
    /// </summary>
    /// <exception cref="IrrException">The bytes are not valid UTF-8.</exception>
    internal static string DecodeUtf8(ReadOnlySpan<byte> data, string path)
    {
        int bad = Utf8Lines.InvalidAt(data);
        if (bad < 0) return System.Text.Encoding.UTF8.GetString(data);
        return Utf8Lines.Decode(data[..(bad + 1)], $"{path} line {System.MemoryExtensions.Count(data[..bad], (byte)'\n') + 1}"); // throws
    }
}
