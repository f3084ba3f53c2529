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
public static class JsonFiles
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

    /// <summary>Reads a text file, as an <see cref="IrrException"/> naming it if that fails.</summary>
    /// <exception cref="IrrException">The file cannot be read.</exception>
    public static string ReadText(string path)
    {
        try { return File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IrrException($"{path}: cannot read: {e.Message}", e);
        }
    }

    /// <summary>Parses text that must be a JSON object; <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="IrrException">The text is not JSON, or not an object.</exception>
    public static JsonObject ParseObject(string text, string source)
    {
        try
        {
            return JsonNode.Parse(text) as JsonObject ?? throw new IrrException($"{source}: not a JSON object");
        }
        catch (JsonException e)
        {
            throw new IrrException($"{source}: not valid JSON: {e.Message}", e);
        }
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
            throw new IrrException($"{path}: not a valid {Path.GetFileName(path)}: {e.Message}");
        }
    }
}
