using System.Globalization;
using System.Text;

namespace Irr.IO;

/// <summary>
/// Reads a UTF-8 text stream one line at a time, never whole (issue 24, docs/formats.md "Data files and recipes"): a
/// line longer than a limit is refused by its number before it is held, and a line that is not valid UTF-8 is refused
/// with its number, as Python's strict <c>utf-8</c> codec does (<c>UnicodeDecodeError</c>) rather than decoded with
/// replacement characters. A leading byte-order mark is skipped. Lines end at <c>\n</c>; a <c>\r</c> before it is kept
/// (the callers trim it as they always did).
/// </summary>
internal sealed class Utf8Lines : IDisposable
{
    private const int Chunk = 64 * 1024;
    private readonly Stream _stream;
    private readonly string _file;
    private readonly long _limit;
    private readonly string _variable;
    private readonly bool _own;
    private byte[] _buffer = new byte[Chunk];
    private int _start, _end;
    private bool _eof, _bomChecked;

    /// <param name="stream">The text, read from its current position.</param>
    /// <param name="file">The file's name for errors.</param>
    /// <param name="limit">The longest line, in bytes (without its <c>\n</c>).</param>
    /// <param name="variable">The variable that raises <paramref name="limit"/>, named in its error.</param>
    /// <param name="own">Dispose <paramref name="stream"/> with this reader.</param>
    public Utf8Lines(Stream stream, string file, long limit, string variable, bool own = true)
    {
        _stream = stream;
        _file = file;
        _limit = limit;
        _variable = variable;
        _own = own;
    }

    /// <summary>Opens a file for <see cref="Utf8Lines"/> with the record limit (<see cref="Data.DataLimits.RecordBytes"/>).</summary>
    /// <exception cref="IrrException">The file cannot be opened.</exception>
    public static Utf8Lines Open(string path, string file) => new(OpenRead(path), file, Data.DataLimits.RecordBytes, Data.DataLimits.RecordBytesVariable);

    /// <summary>Opens a file to read, as an <see cref="IrrException"/> naming it when that fails.</summary>
    /// <exception cref="IrrException">The file is missing or cannot be read.</exception>
    public static FileStream OpenRead(string path)
    {
        InputFile.RequireRegular(path); // a FIFO or device would block the open, or never end
        try { return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.SequentialScan); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IrrException($"{path}: cannot read: {Diagnostics.Escape(e.Message)}", e);
        }
    }

    /// <summary>The number (1-based) of the line last returned; 0 before the first.</summary>
    public int LineNumber { get; private set; }

    /// <summary>The next line's bytes without its <c>\n</c>, or false at the end. The memory is valid until the next call.</summary>
    /// <exception cref="IrrException">The line is longer than the limit.</exception>
    public bool TryRead(out ReadOnlyMemory<byte> line)
    {
        int scanned = _start;
        while (true)
        {
            int newline = Array.IndexOf(_buffer, (byte)'\n', scanned, _end - scanned);
            if (newline >= 0)
            {
                line = _buffer.AsMemory(_start, newline - _start);
                _start = newline + 1;
                return Check(line);
            }
            int scannedFrom = _end - _start;
            if (_end - _start > _limit) throw TooLong();
            if (_eof)
            {
                line = _buffer.AsMemory(_start, _end - _start);
                _start = _end;
                return line.Length > 0 && Check(line);
            }
            Fill();
            scanned = _start + scannedFrom;
        }
    }

    /// <summary>The next line as text, or null at the end.</summary>
    /// <exception cref="IrrException">The line is longer than the limit, or not valid UTF-8.</exception>
    public string? ReadLine() => TryRead(out var line) ? Decode(line.Span, $"{_file} line {LineNumber}") : null;

    /// <summary>The error of a record longer than its limit, at a line: "data.jsonl line 3: the record's size in bytes exceeds the limit of …".</summary>
    public static IrrException RecordTooLong(string file, long line, string variable, long limit) =>
        Limits.Exceeded(string.Create(CultureInfo.InvariantCulture, $"{file} line {line}"), "the record's size in bytes", variable, limit);

    /// <summary>Strict UTF-8 decoding: the text, or an error at <paramref name="where"/> naming the first invalid byte (<c>not valid UTF-8: byte 0xff at column 7</c>).</summary>
    /// <exception cref="IrrException">The bytes are not valid UTF-8.</exception>
    public static string Decode(ReadOnlySpan<byte> bytes, string where)
    {
        int bad = InvalidAt(bytes);
        if (bad < 0) return Encoding.UTF8.GetString(bytes);
        throw new IrrException(string.Create(CultureInfo.InvariantCulture, $"{where}: not valid UTF-8 (byte 0x{bytes[bad]:x2} at column {bad + 1 - (bytes[..bad].LastIndexOf((byte)'\n') + 1)})"));
    }

    /// <summary>The offset of the first byte that is not part of valid UTF-8 (overlong forms, surrogates and code points above U+10FFFF are invalid, as for Python), or -1.</summary>
    public static int InvalidAt(ReadOnlySpan<byte> bytes)
    {
        if (System.Text.Unicode.Utf8.IsValid(bytes)) return -1;
        int i = 0;
        while (i < bytes.Length)
        {
            if (Rune.DecodeFromUtf8(bytes[i..], out _, out int used) != System.Buffers.OperationStatus.Done) return i;
            i += used;
        }
        return -1;
    }

    private bool Check(ReadOnlyMemory<byte> line)
    {
        LineNumber++;
        _bomChecked = true;
        if (line.Length > _limit) throw RecordTooLong(_file, RecordLine ?? LineNumber, _variable, _limit);
        return true;
    }

    private IrrException TooLong() => RecordTooLong(_file, RecordLine ?? LineNumber + 1, _variable, _limit);

    /// <summary>The line a record that spans lines (a quoted CSV field, a paragraph) started on, for the error of a line beyond the limit; null for the line itself.</summary>
    public int? RecordLine { get; set; }

    private void Fill()
    {
        _eof = !Refill(_stream, ref _buffer, ref _start, ref _end, _limit);
        if (!_bomChecked && (_end - _start >= 3 || _eof))
        {
            if (_buffer.AsSpan(_start, _end - _start).StartsWith("\uFEFF"u8)) _start += 3;
            _bomChecked = true;
        }
    }

    /// <summary>
    /// Reads more of <paramref name="stream"/> into <paramref name="buffer"/> after its pending bytes
    /// [<paramref name="start"/>, <paramref name="end"/>), which are first moved to its start; the buffer grows (doubling)
    /// when full, up to a little more than <paramref name="limit"/>. False at the end of the stream.
    /// </summary>
    internal static bool Refill(Stream stream, ref byte[] buffer, ref int start, ref int end, long limit)
    {
        if (start > 0)
        {
            Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
            end -= start;
            start = 0;
        }
        if (end == buffer.Length)
            Array.Resize(ref buffer, (int)Math.Max(buffer.Length + 1L, Math.Min(buffer.Length * 2L, Math.Min(limit + Chunk, Array.MaxLength))));
        int n = stream.Read(buffer, end, Math.Min(Chunk * 16, buffer.Length - end));
        end += n;
        return n > 0;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_own) _stream.Dispose();
    }
}
