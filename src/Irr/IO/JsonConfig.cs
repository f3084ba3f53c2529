using System.Text.Json;
using System.Text.Json.Nodes;

namespace Irr.IO;

/// <summary>Typed access to the keys of a JSON config file, with errors that name the file and key.</summary>
internal sealed class JsonConfig(JsonObject o, string source)
{
    public JsonNode? Node(string key) => o.TryGetPropertyValue(key, out var v) ? v : null;

    /// <summary>Whether the key is present, even with the value null.</summary>
    public bool Has(string key) => o.ContainsKey(key);

    public string? String(string key) => Node(key) switch
    {
        null => null,
        JsonValue v when v.TryGetValue(out string? s) => s,
        _ => throw Bad(key, "a string"),
    };

    public string? StringArrayFirst(string key) => Node(key) switch
    {
        null => null,
        JsonArray { Count: > 0 } a when a[0] is JsonValue v && v.TryGetValue(out string? s) => s,
        JsonArray { Count: 0 } => null,
        _ => throw Bad(key, "a list of strings"),
    };

    public int? Int(string key)
    {
        var n = Node(key);
        if (n is null) return null;
        if (n is JsonValue v && v.TryGetValue(out int i)) return i;
        throw Bad(key, n is JsonValue { } number && number.GetValueKind() == JsonValueKind.Number && number.TryGetValue(out double _)
            ? "an integer from -2,147,483,648 to 2,147,483,647" : "an integer");
    }

    /// <summary>
    /// An integer from 1 to <paramref name="max"/> (a size: layers, a dimension, a count), or null when absent; a larger
    /// value is refused as exceeding the limit <paramref name="variable"/> (<see cref="Limits"/>), before anything is sized by it.
    /// </summary>
    public int? Positive(string key, long max, string variable)
    {
        if (Int(key) is not { } v) return null;
        if (v <= 0) throw new IrrException($"{source}: \"{key}\" must be positive, not {v}");
        if (v > max) throw Limits.Exceeded(source, $"\"{key}\" {v:N0}", variable, max);
        return v;
    }

    public int RequiredInt(string key) => Int(key) ?? throw new IrrException($"{source}: missing \"{key}\"");

    public double? Double(string key)
    {
        var n = Node(key);
        if (n is null) return null;
        if (n is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out double d))
            return double.IsFinite(d) ? d : throw Bad(key, "a finite number");
        throw Bad(key, "a number");
    }

    public double RequiredDouble(string key) => Double(key) ?? throw new IrrException($"{source}: missing \"{key}\"");

    public bool? Bool(string key)
    {
        var n = Node(key);
        if (n is null) return null;
        if (n is JsonValue v && v.TryGetValue(out bool b)) return b;
        throw Bad(key, "true or false");
    }

    public IReadOnlyList<int> IntOrIntList(string key)
    {
        var n = Node(key);
        if (n is null) return [];
        if (n is JsonArray a)
            return a.Select((x, i) => x is JsonValue v && v.TryGetValue(out int id) ? id : throw Bad($"{key}[{i}]", "an integer")).ToArray();
        return [Int(key)!.Value];
    }

    private IrrException Bad(string key, string what) => new($"{source}: \"{key}\" must be {what}{Found(key)}");

    // ", not 1e+400": the value given, as JSON (strings quoted and escaped), shortened.
    private string Found(string key)
    {
        string text = o.TryGetPropertyValue(key.Split('[')[0], out var v) && v is not null ? v.ToJsonString() : "null";
        return key.Contains('[') ? "" : $", not {(text.Length <= 60 ? text : text[..60] + "…")}";
    }
}
