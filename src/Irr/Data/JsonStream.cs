using System.Globalization;
using System.Text.Json;
using Irr.IO;

namespace Irr.Data;

/// <summary>
/// A JSON document read from a stream token by token (<see cref="Utf8JsonReader"/> over a buffer that holds at most one
/// value), so that a JSON array or a CatQA tree of any size is read one record at a time: a value longer than the
/// record limit is refused by the line it starts on before it is held whole, and a value that is not valid UTF-8 is
/// refused with the line of the bad byte.
/// </summary>
internal sealed class JsonStream
{
    private const int Chunk = 64 * 1024;
    private readonly Stream _stream;
    private readonly string _file;
    private readonly long _limit;
    private byte[] _buffer = new byte[Chunk];
    private int _start, _end;
    private bool _eof;
    private long _line = 1; // the line of _buffer[_start]
    private JsonReaderState _state = new(new JsonReaderOptions { MaxDepth = 256 });

    /// <param name="stream">The document, from its first byte (a byte-order mark is skipped).</param>
    /// <param name="file">The file's name for errors.</param>
    /// <param name="limit">The largest value <see cref="Value"/> reads, in bytes.</param>
    public JsonStream(Stream stream, string file, long limit)
    {
        _stream = stream;
        _file = file;
        _limit = limit;
        Fill();
        while (!_eof && _end < 3) Fill();
        if (_buffer.AsSpan(0, _end).StartsWith("\uFEFF"u8)) _start = 3;
    }

    /// <summary>What a string escape of an unpaired surrogate (<c>"\ud800"</c>) is: valid JSON, but no text.</summary>
    public const string UnpairedSurrogate = IO.JsonFiles.UnpairedSurrogate;

    /// <summary>The type of the next token without reading it (<see cref="JsonTokenType.None"/> at the end).</summary>
    /// <exception cref="IrrException">The JSON is not valid, or a token is longer than the limit.</exception>
    public JsonTokenType Peek() => Token(consume: false, out _);

    /// <summary>Reads the next token; <paramref name="text"/> is a property name's text.</summary>
    /// <exception cref="IrrException">The JSON is not valid, or a token is longer than the limit.</exception>
    public JsonTokenType Next(out string? text) => Token(consume: true, out text);

    /// <summary>Reads the next token, which must be <paramref name="expected"/> (the document's first or last).</summary>
    public void Expect(JsonTokenType expected)
    {
        if (Next(out _) is var type && type != expected)
            throw new IrrException(string.Create(CultureInfo.InvariantCulture, $"{_file} line {_line}: expected {Name(expected)}, found {Name(type)}"));
    }

    /// <summary>
    /// Reads the next value whole (an object, an array or a primitive) as a detached element, and the line it starts on.
    /// </summary>
    /// <exception cref="IrrException">The JSON is not valid or not valid UTF-8, or the value is longer than the limit.</exception>
    public JsonElement Value(out long line)
    {
        while (true)
        {
            int at = ValueStart();
            var reader = new Utf8JsonReader(_buffer.AsSpan(_start, _end - _start), _eof, _state);
            bool done;
            try { done = reader.Read() && (reader.TokenType is not (JsonTokenType.StartObject or JsonTokenType.StartArray) || reader.TrySkip()); }
            catch (JsonException e) { throw Invalid(e); }
            if (done)
            {
                int consumed = (int)reader.BytesConsumed;
                line = _line + Newlines(_start, at);
                var bytes = _buffer.AsSpan(at, _start + consumed - at);
                if (bytes.Length > _limit) throw Utf8Lines.RecordTooLong(_file, line, DataLimits.RecordBytesVariable, _limit);
                if (Utf8Lines.InvalidAt(bytes) is var bad and >= 0)
                    Utf8Lines.Decode(bytes[..(bad + 1)], string.Create(CultureInfo.InvariantCulture, $"{_file} line {line + bytes[..bad].Count((byte)'\n')}"));
                JsonElement element;
                try
                {
                    using var doc = JsonDocument.Parse(bytes.ToArray(), new JsonDocumentOptions { MaxDepth = 256 });
                    element = doc.RootElement.Clone();
                }
                catch (JsonException e) { throw Invalid(e); }
                LastValueBytes = bytes.Length;
                LastValueValues = DataLimits.Values(bytes);
                Advance(consumed, reader.CurrentState);
                return element;
            }
            if (_end - at > _limit) throw Utf8Lines.RecordTooLong(_file, _line + Newlines(_start, at), DataLimits.RecordBytesVariable, _limit);
            Fill();
        }
    }

    /// <summary>The size of the value <see cref="Value"/> read last, in bytes.</summary>
    public int LastValueBytes { get; private set; }

    /// <summary>The JSON values of the value <see cref="Value"/> read last (<see cref="DataLimits.Values(ReadOnlySpan{byte})"/>).</summary>
    public long LastValueValues { get; private set; }

    /// <summary>Skips the next value (its tokens one by one, none held longer than a token).</summary>
    public void Skip()
    {
        int depth = 0;
        do
        {
            var type = Next(out _);
            if (type is JsonTokenType.StartObject or JsonTokenType.StartArray) depth++;
            else if (type is JsonTokenType.EndObject or JsonTokenType.EndArray) depth--;
            else if (type == JsonTokenType.None) return;
        } while (depth > 0);
    }

    private JsonTokenType Token(bool consume, out string? text)
    {
        while (true)
        {
            var reader = new Utf8JsonReader(_buffer.AsSpan(_start, _end - _start), _eof, _state);
            bool read;
            try { read = reader.Read(); }
            catch (JsonException e) { throw Invalid(e); }
            if (read)
            {
                text = null;
                if (reader.TokenType is JsonTokenType.PropertyName or JsonTokenType.String)
                {
                    string where = string.Create(CultureInfo.InvariantCulture, $"{_file} line {_line + Newlines(_start, _start + (int)reader.TokenStartIndex)}");
                    Utf8Lines.Decode(reader.ValueSpan, where);
                    if (reader.TokenType == JsonTokenType.PropertyName)
                    {
                        try { text = reader.GetString(); }
                        catch (InvalidOperationException e) { throw new IrrException($"{where}: {UnpairedSurrogate}", e); }
                    }
                }
                if (consume) Advance((int)reader.BytesConsumed, reader.CurrentState);
                return reader.TokenType;
            }
            if (_eof)
            {
                text = null;
                return JsonTokenType.None;
            }
            if (_end - ValueStart() > _limit) throw Utf8Lines.RecordTooLong(_file, _line + Newlines(_start, ValueStart()), DataLimits.RecordBytesVariable, _limit);
            Fill();
        }
    }

    // Where the next value starts: after whitespace and a separating comma.
    private int ValueStart()
    {
        int i = _start;
        bool comma = false;
        while (i < _end)
        {
            byte b = _buffer[i];
            if (b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n') i++;
            else if (b == (byte)',' && !comma) { comma = true; i++; }
            else break;
        }
        return i;
    }

    private long Newlines(int from, int to) => _buffer.AsSpan(from, to - from).Count((byte)'\n');

    private void Advance(int consumed, JsonReaderState state)
    {
        _line += Newlines(_start, _start + consumed);
        _start += consumed;
        _state = state;
    }

    private void Fill()
    {
        // Whitespace between values is dropped first, so that only a value ever grows the buffer.
        int skip = _start;
        while (skip < _end && _buffer[skip] is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n') skip++;
        _line += Newlines(_start, skip);
        _start = skip;
        _eof = !Utf8Lines.Refill(_stream, ref _buffer, ref _start, ref _end, _limit);
    }

    private IrrException Invalid(JsonException e) =>
        new(string.Create(CultureInfo.InvariantCulture, $"{_file}: not valid JSON (line {(e.LineNumber ?? 0) + 1}, byte {(e.BytePositionInLine ?? 0) + 1}): {IO.JsonFiles.Describe(e, position: false)}"), e);

    private static string Name(JsonTokenType type) => type switch
    {
        JsonTokenType.StartArray => "an array",
        JsonTokenType.StartObject => "an object",
        JsonTokenType.None => "the end of the file",
        _ => "a value",
    };
}
