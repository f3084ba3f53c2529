using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Irr.IO;

namespace Irr.IO;

/// <summary>
/// The one place for how irr reads and writes JSON: the serializer options of its outputs, reading a file or
/// an object with errors that name the file, and typed result files. Positions inside a document are
/// <see cref="JsonCursor"/>'s; typed keys of a config object are <see cref="JsonConfig"/>'s.
/// </summary>
public static partial class JsonFiles
{
    /// <summary>Indented output (config.json, reports, metadata): what transformers' <c>to_json_file</c> writes.</summary>
    public static JsonSerializerOptions Indented { get; } = new() { WriteIndented = true };

    /// <summary>
    /// Result files (safety.json, task.json, perplexity.json, report.json): snake_case names, indented, enums as
    /// snake_case strings, property names read case-insensitively.
    /// </summary>
    public static JsonSerializerOptions ResultOptions { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        PropertyNameCaseInsensitive = true,
    };

    /// <summary>JSONL lines: one line per object, non-ASCII text (Chinese, Vietnamese …) kept readable.</summary>
    public static JsonSerializerOptions LineOptions { get; } = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>A node as an indented document with a final newline.</summary>
    public static string Format(JsonNode node) => node.ToJsonString(Indented) + "\n";

    /// <summary>Writes <paramref name="node"/> indented to <paramref name="path"/> (plainly: for files inside an <see cref="OutputDirectory"/>).</summary>
    public static void WriteFile(string path, JsonNode node) => File.WriteAllText(path, Format(node));

    /// <summary>
    /// The largest JSON file irr reads whole (config.json, tokenizer.json, tokenizer_config.json, adapter_config.json,
    /// generation_config.json, index and record files): <c>IRR_MAX_JSON_BYTES</c>, 64 MB by default. The largest real
    /// one known, Gemma 3's tokenizer.json, is 33 MB; parsing takes a few times the file's size in memory.
    /// </summary>
    public static long MaxJsonBytes => Limits.Get("IRR_MAX_JSON_BYTES", 64L << 20);

    /// <summary>Reads a JSON (or other small text) file, as an <see cref="IrrException"/> naming it if that fails.</summary>
    /// <remarks>
    /// UTF-8 (a byte order mark is skipped; UTF-16 with its mark is read too). Bytes that are not UTF-8 are refused by
    /// line and column, as Python's <c>open(…, encoding="utf-8")</c>, with which transformers reads these files, refuses them.
    /// </remarks>
    /// <exception cref="IrrException">The file cannot be read, is larger than <see cref="MaxJsonBytes"/>, or is not UTF-8.</exception>
    public static string ReadText(string path)
    {
        long limit = MaxJsonBytes;
        var data = BoundedText.ReadBytes(path, limit,
            length => Limits.Exceeded(path, length is { } n ? $"the file's size ({n:N0} bytes)" : "the file's size", "IRR_MAX_JSON_BYTES", limit),
            e => new IrrException($"{path}: cannot read: {e.Message}", e));
        return data switch
        {
            [0xEF, 0xBB, 0xBF, ..] => BoundedText.DecodeUtf8(data[3..], path),
            [0xFF, 0xFE, ..] => System.Text.Encoding.Unicode.GetString(data[2..]),
            [0xFE, 0xFF, ..] => System.Text.Encoding.BigEndianUnicode.GetString(data[2..]),
            _ => BoundedText.DecodeUtf8(data, path),
        };
    }

    /// <summary>
    /// The most values (objects, arrays, keys, strings, numbers …) one JSON file may hold: <c>IRR_MAX_JSON_VALUES</c>,
    /// 8,000,000 by default. Parsing keeps 12 bytes per value, so a file of tiny values (<c>[0,0,0,…]</c>) would take six
    /// times its size; Gemma 3's tokenizer.json, the largest real one known, holds 2.2 million.
    /// </summary>
    public static long MaxJsonValues => Limits.Get("IRR_MAX_JSON_VALUES", 8_000_000);

    /// <summary>Parses text that must be a JSON object; <paramref name="source"/> names it in errors.</summary>
    /// <remarks>A key given twice in one object takes its last value, as Python's <c>json</c> (and so transformers) reads it; see <see cref="ParseDocument"/>.</remarks>
    /// <exception cref="IrrException">The text is not JSON, nests deeper than 64, or is not an object.</exception>
    public static JsonObject ParseObject(string text, string source)
    {
        using var doc = ParseDocument(text, source, 64);
        return (doc.RootElement.ValueKind == JsonValueKind.Object ? JsonObject.Create(doc.RootElement.Clone()) : null)
            ?? throw new IrrException($"{source}: not a JSON object");
    }

    /// <summary>
    /// Parses JSON text from a file; <paramref name="source"/> names it in errors. Every JSON file irr reads goes through
    /// here, with one rule for a key given twice in one object (which JSON leaves open): the last value wins, kept at the
    /// first one's place, as Python's <c>json</c> builds a dict, so a file means to irr what it means to transformers,
    /// PEFT and vLLM. A warning names the file and the first such key. NaN and Infinity (which Python writes) are not
    /// JSON and are refused; so is nesting deeper than <paramref name="maxDepth"/>.
    /// </summary>
    /// <exception cref="IrrException">The text is not valid JSON (the message gives the line and byte).</exception>
    public static JsonDocument ParseDocument(string text, string source, int maxDepth)
    {
        var utf8 = System.Text.Encoding.UTF8.GetBytes(text);
        Precheck(utf8, text, source, maxDepth);
        try
        {
            return JsonDocument.Parse(utf8.AsMemory(), new JsonDocumentOptions { MaxDepth = maxDepth, AllowDuplicateProperties = false });
        }
        catch (JsonException)
        {
            // Either not JSON, or a duplicate key: the lenient parse tells which.
        }
        JsonDocument lenient;
        try
        {
            lenient = JsonDocument.Parse(utf8.AsMemory(), new JsonDocumentOptions { MaxDepth = maxDepth });
        }
        catch (JsonException e)
        {
            throw new IrrException($"{source}: not valid JSON {Describe(e)}", e);
        }
        using (lenient)
        {
            var buffer = new System.Buffers.ArrayBufferWriter<byte>(Math.Max(256, utf8.Length));
            string? duplicate = null;
            using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { SkipValidation = true, MaxDepth = maxDepth + 1, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
                WriteLastWins(lenient.RootElement, writer, "", ref duplicate);
            if (duplicate is not null)
                Diagnostics.Warn($"{source}: the key {duplicate} is given twice; the last value is used, as Python's json reads it");
            return JsonDocument.Parse(buffer.WrittenMemory, new JsonDocumentOptions { MaxDepth = maxDepth });
        }
    }

    /// <summary>
    /// One pass of the reader before the document is built: the number of values within <see cref="MaxJsonValues"/>,
    /// and no <c>\\uD800</c>-style escape that leaves a surrogate unpaired (no Unicode text: System.Text.Json cannot
    /// read such a string, and Rust's serde_json, which HF tokenizers uses, refuses it; Python would keep it). A syntax
    /// error found on the way is left to the parse to report, with its position.
    /// </summary>
    private static void Precheck(byte[] utf8, string text, string source, int maxDepth)
    {
        long limit = MaxJsonValues, count = 0;
        bool surrogates = SurrogateEscape().IsMatch(text);
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = maxDepth });
        while (true)
        {
            try
            {
                if (!reader.Read()) return;
            }
            catch (JsonException)
            {
                return;
            }
            if (reader.TokenType is JsonTokenType.EndObject or JsonTokenType.EndArray) continue;
            if (++count > limit) throw Limits.Exceeded(source, "the number of JSON values", "IRR_MAX_JSON_VALUES", limit);
            if (!surrogates || reader.TokenType is not (JsonTokenType.String or JsonTokenType.PropertyName) || !reader.ValueIsEscaped) continue;
            try
            {
                _ = reader.GetString();
            }
            catch (InvalidOperationException)
            {
                int offset = (int)reader.TokenStartIndex, line = 1 + utf8.AsSpan(0, offset).Count((byte)'\n');
                int column = offset - (utf8.AsSpan(0, offset).LastIndexOf((byte)'\n') + 1) + 1;
                bool oneLine = utf8.AsSpan().TrimEnd("\r\n"u8).IndexOf((byte)'\n') < 0; // a JSONL record names its line itself
                throw new IrrException(oneLine ? $"{source}: {UnpairedSurrogate}" : $"{source}: line {line}, byte {column}: {UnpairedSurrogate}");
            }
        }
    }

    /// <summary>What a string escape of an unpaired surrogate (<c>"\ud800"</c>) is: valid JSON to Python, but no text (no UTF-8 encodes it).</summary>
    public const string UnpairedSurrogate = "a string holds an unpaired surrogate escape (\\ud800–\\udfff without its pair), which is not text";

    [System.Text.RegularExpressions.GeneratedRegex(@"\\u[dD][89a-fA-F]")]
    private static partial System.Text.RegularExpressions.Regex SurrogateEscape();

    // Writes the element with each object's duplicate keys reduced to the last value, at the first one's place (a dict's order).
    private static void WriteLastWins(JsonElement e, Utf8JsonWriter writer, string path, ref string? duplicate)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                var order = new List<string>();
                var last = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
                foreach (var p in e.EnumerateObject())
                {
                    if (!last.ContainsKey(p.Name)) order.Add(p.Name);
                    else duplicate ??= path.Length == 0 ? $"\"{p.Name}\"" : $"\"{p.Name}\" (in {path})";
                    last[p.Name] = p.Value;
                }
                writer.WriteStartObject();
                foreach (string name in order)
                {
                    writer.WritePropertyName(name);
                    WriteLastWins(last[name], writer, path.Length == 0 ? name : $"{path}.{name}", ref duplicate);
                }
                writer.WriteEndObject();
                break;
            case JsonValueKind.Array:
                writer.WriteStartArray();
                int i = 0;
                foreach (var item in e.EnumerateArray()) WriteLastWins(item, writer, $"{path}[{i++}]", ref duplicate);
                writer.WriteEndArray();
                break;
            default:
                e.WriteTo(writer);
                break;
        }
    }

    /// <summary>
    /// A JSON error in irr's words, for "<c>FILE: not valid JSON (line L, byte B): what</c>": System.Text.Json's message
    /// without its own position and path suffixes (" LineNumber: 0 | BytePositionInLine: 31.", " Path: $.a"), one line, escaped;
    /// with <paramref name="position"/>, preceded by "(line L, byte B)".
    /// </summary>
    public static string Describe(JsonException e, bool position = true)
    {
        string message = e.Message;
        int nl = message.IndexOfAny(['\r', '\n']);
        if (nl >= 0) message = message[..nl];
        foreach (string suffix in new[] { " Path: ", " LineNumber: " })
        {
            int at = message.IndexOf(suffix, StringComparison.Ordinal);
            if (at >= 0) message = message[..at];
        }
        string where = position && e.LineNumber is { } line ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"(line {line + 1}, byte {(e.BytePositionInLine ?? 0) + 1})") : "";
        string what = Diagnostics.Escape(message.Trim());
        return where.Length == 0 ? what : $"{where}: {what}";
    }

    /// <summary>Serializes a result record with <see cref="ResultOptions"/> to <paramref name="path"/>, atomically.</summary>
    public static void Save<T>(string path, T value) => AtomicFile.WriteText(path, JsonSerializer.Serialize(value, ResultOptions) + "\n");

    /// <summary>Reads a result record written by <see cref="Save{T}"/>, or null when the file does not exist; read within <see cref="BoundedText.Limit"/>.</summary>
    /// <exception cref="IrrException">The file is larger than the limit, not UTF-8, or not valid JSON of the expected shape.</exception>
    public static T? Load<T>(string path) where T : class
    {
        if (!File.Exists(path)) return null;
        try
        {
            return JsonSerializer.Deserialize<T>(BoundedText.Read(path), ResultOptions)
                ?? throw new IrrException($"{path}: empty (null) document");
        }
        catch (JsonException e)
        {
            throw new IrrException($"{path}: not a valid {Path.GetFileName(path)}: {Describe(e)}");
        }
    }
}
