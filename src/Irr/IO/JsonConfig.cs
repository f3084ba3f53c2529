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
        throw Bad(key, "an integer");
    }

    public int RequiredInt(string key) => Int(key) ?? throw new IrrException($"{source}: missing \"{key}\"");

    public double? Double(string key)
    {
        var n = Node(key);
        if (n is null) return null;
        if (n is JsonValue v && v.TryGetValue(out double d)) return d;
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

    private IrrException Bad(string key, string what) => new($"{source}: \"{key}\" must be {what}");
}
