using System.Text.Json;

namespace Irr.IO;

/// <summary>
/// A JSON value together with the file it came from and its path inside it (<c>model.merges[17]</c>),
/// so that every complaint about a malformed file can name both, as <see cref="IrrException"/> requires.
/// </summary>
internal readonly record struct JsonCursor(JsonElement Element, string File, string Path)
{
    /// <summary>
    /// Parses <paramref name="json"/> (nesting up to 256 deep; a key given twice takes its last value, see
    /// <see cref="JsonFiles.ParseDocument"/>); a syntax error becomes an <see cref="IrrException"/> naming the file and position.
    /// </summary>
    public static JsonDocument Parse(string json, string file) => JsonFiles.ParseDocument(json, file, 256);

    /// <summary>Parses one line of JSONL, <paramref name="where"/> naming the file and line: an error says the byte within it.</summary>
    /// <exception cref="IrrException">The line is not valid JSON, or nests deeper than 256.</exception>
    public static JsonDocument ParseLine(string json, string where) => JsonFiles.ParseDocument(json, where, 256, oneLine: true);

    /// <summary>The root of a document.</summary>
    public static JsonCursor Root(JsonDocument doc, string file) => new(doc.RootElement, file, "");

    /// <summary>This value with its own copy of the JSON, so it outlives the document it was read from.</summary>
    public JsonCursor Detached() => this with { Element = Element.Clone() };

    public JsonValueKind Kind => Element.ValueKind;

    public bool IsNull => Element.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined;

    /// <summary>Where this value is, for messages: <c>tokenizer.json: model.merges[17]</c>.</summary>
    public string Where => Path.Length == 0 ? File : $"{File}: {Path}";

    /// <summary>An <see cref="IrrException"/> about this value; its keys and quoted text with control characters escaped.</summary>
    public IrrException Error(string problem) => new(Diagnostics.Escape($"{Where}: {problem}"));

    private string Child(string key) => Path.Length == 0 ? key : $"{Path}.{key}";

    /// <summary>The member <paramref name="key"/> of this object, or null when it is absent (JSON null counts as present).</summary>
    public JsonCursor? Get(string key)
    {
        RequireKind(JsonValueKind.Object, "an object");
        return Element.TryGetProperty(key, out var v) ? new JsonCursor(v, File, Child(key)) : null;
    }

    /// <summary>The member <paramref name="key"/>, or null when it is absent or JSON null.</summary>
    public JsonCursor? GetNonNull(string key) => Get(key) is { IsNull: false } c ? c : null;

    /// <summary>The member <paramref name="key"/>, which must be present.</summary>
    public JsonCursor Required(string key) =>
        Get(key) ?? throw new IrrException($"{Where}: missing \"{key}\"");

    /// <summary>The members of this object in file order.</summary>
    public IEnumerable<(string Key, JsonCursor Value)> Properties()
    {
        RequireKind(JsonValueKind.Object, "an object");
        foreach (var p in Element.EnumerateObject()) yield return (p.Name, new JsonCursor(p.Value, File, Child(p.Name)));
    }

    /// <summary>The items of this array.</summary>
    public IEnumerable<JsonCursor> Items()
    {
        RequireKind(JsonValueKind.Array, "an array");
        int i = 0;
        foreach (var e in Element.EnumerateArray()) yield return new JsonCursor(e, File, $"{Path}[{i++}]");
    }

    public int ArrayLength
    {
        get { RequireKind(JsonValueKind.Array, "an array"); return Element.GetArrayLength(); }
    }

    public string AsString()
    {
        RequireKind(JsonValueKind.String, "a string");
        return Element.GetString()!;
    }

    public bool AsBool() => Element.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw Error($"expected true or false, found {Describe()}"),
    };

    public int AsInt() => Element.ValueKind == JsonValueKind.Number && Element.TryGetInt32(out int v)
        ? v
        : throw Error($"expected an integer, found {Describe()}");

    public double AsDouble() => Element.ValueKind == JsonValueKind.Number
        ? Element.GetDouble()
        : throw Error($"expected a number, found {Describe()}");

    /// <summary>Optional members with a default.</summary>
    public bool Bool(string key, bool fallback) => GetNonNull(key) is { } c ? c.AsBool() : fallback;

    public string? String(string key) => GetNonNull(key) is { } c ? c.AsString() : null;

    public int Int(string key, int fallback) => GetNonNull(key) is { } c ? c.AsInt() : fallback;

    private void RequireKind(JsonValueKind kind, string what)
    {
        if (Element.ValueKind != kind) throw Error($"expected {what}, found {Describe()}");
    }

    /// <summary>A short description of the value for messages: <c>a number</c>, <c>the string "x"</c>.</summary>
    public string Describe() => Element.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => $"the string \"{Truncate(Element.GetString()!)}\"",
        JsonValueKind.Number => $"the number {Element.GetRawText()}",
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        _ => "null",
    };

    private static string Truncate(string s) => s.Length <= 40 ? s : s[..40] + "…";
}
