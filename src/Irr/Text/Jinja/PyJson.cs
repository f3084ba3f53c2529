using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Irr.Text.Jinja;

/// <summary>
/// Python's <c>json.dumps</c> (what transformers' <c>tojson</c> filter calls, with
/// <c>ensure_ascii=False</c> by default), and the conversion of JSON input into template values.
/// </summary>
internal static class PyJson
{
    /// <summary>
    /// <c>json.dumps(value, ensure_ascii, indent, separators, sort_keys)</c>: separators default to
    /// <c>", "</c> and <c>": "</c>, or <c>","</c> and <c>": "</c> when indenting; keys keep their order.
    /// </summary>
    public static string Dumps(object? value, bool ensureAscii = false, object? indent = null, object? separators = null, bool sortKeys = false)
    {
        string? pad = indent switch
        {
            null => null,
            long n => Budget.Current.MaxChars < n ? throw new LimitError($"a JSON indent of {Budget.N(n)} characters", Budget.OutputVariable, Budget.Current.MaxChars)
                : new string(' ', (int)Math.Max(0, n)),
            string s => s,
            _ => throw new JinjaError($"tojson: indent must be an integer or a string, not {Py.TypeName(indent)}"),
        };
        string itemSep = pad is null ? ", " : ",", keySep = ": ";
        if (separators is not null)
        {
            var parts = Py.Iterate(separators);
            if (parts.Count != 2) throw new JinjaError("tojson: separators must be a pair of strings");
            itemSep = Py.Str(parts[0]);
            keySep = Py.Str(parts[1]);
        }
        var sb = new StringBuilder();
        Write(sb, value, ensureAscii, pad, itemSep, keySep, sortKeys, 0);
        Budget.Current.Text(sb.Length);
        return sb.ToString();
    }

    /// <summary>Writes one value, within the nesting and size limits (<see cref="Budget"/>): data a template built may nest without end.</summary>
    private static void Write(StringBuilder sb, object? v, bool ascii, string? pad, string itemSep, string keySep, bool sortKeys, int depth)
    {
        var budget = Budget.Current;
        budget.CheckChars(sb.Length, "the JSON of a value");
        if (v is not (List<object?> or PyTuple or OrderedDictionary<string, object?>))
        {
            WriteValue(sb, v, ascii, pad, itemSep, keySep, sortKeys, depth);
            return;
        }
        budget.Enter();
        try
        {
            WriteValue(sb, v, ascii, pad, itemSep, keySep, sortKeys, depth);
        }
        finally
        {
            budget.Leave();
        }
    }

    private static void WriteValue(StringBuilder sb, object? v, bool ascii, string? pad, string itemSep, string keySep, bool sortKeys, int depth)
    {
        switch (v)
        {
            case null: sb.Append("null"); return;
            case bool b: sb.Append(b ? "true" : "false"); return;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); return;
            case double d:
                sb.Append(double.IsNaN(d) ? "NaN" : double.IsPositiveInfinity(d) ? "Infinity" : double.IsNegativeInfinity(d) ? "-Infinity" : Py.FloatRepr(d));
                return;
            case string s: WriteString(sb, s, ascii); return;
            case List<object?> or PyTuple:
            {
                var items = Py.Iterate(v);
                if (items.Count == 0) { sb.Append("[]"); return; }
                sb.Append('[');
                for (int i = 0; i < items.Count; i++)
                {
                    if (i > 0) sb.Append(itemSep);
                    NewLine(sb, pad, depth + 1);
                    Write(sb, items[i], ascii, pad, itemSep, keySep, sortKeys, depth + 1);
                }
                NewLine(sb, pad, depth);
                sb.Append(']');
                return;
            }
            case OrderedDictionary<string, object?> dict:
            {
                if (dict.Count == 0) { sb.Append("{}"); return; }
                IEnumerable<KeyValuePair<string, object?>> pairs = dict;
                if (sortKeys) pairs = pairs.OrderBy(kv => kv.Key, Comparer<string>.Create(Py.CompareCodePoints));
                sb.Append('{');
                bool first = true;
                foreach (var (k, item) in pairs)
                {
                    if (!first) sb.Append(itemSep);
                    first = false;
                    NewLine(sb, pad, depth + 1);
                    WriteString(sb, k, ascii);
                    sb.Append(keySep);
                    Write(sb, item, ascii, pad, itemSep, keySep, sortKeys, depth + 1);
                }
                NewLine(sb, pad, depth);
                sb.Append('}');
                return;
            }
            case Undefined u:
                throw new JinjaError($"Object of type Undefined is not JSON serializable ({u.Hint})");
            default:
                throw new JinjaError($"Object of type {Py.TypeName(v)} is not JSON serializable");
        }
    }

    private static void NewLine(StringBuilder sb, string? pad, int depth)
    {
        if (pad is null) return;
        Budget.Current.CheckChars(Budget.Sum(sb.Length, Budget.Times(pad.Length, depth)), "the JSON of a value");
        sb.Append('\n');
        for (int i = 0; i < depth; i++) sb.Append(pad);
    }

    private static void WriteString(StringBuilder sb, string s, bool ascii)
    {
        sb.Append('"');
        int n = 0;
        foreach (char c in s)
        {
            if (++n % 4096 == 0) Budget.Current.CheckChars(sb.Length, "the JSON of a value"); // escapes make up to 6 characters of one
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20 || ascii && c > 0x7E) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }

    /// <summary>A JSON value as a template value: objects keep their key order; integers are ints, other numbers floats.</summary>
    /// <remarks>Nested arrays and objects count against the nesting limit (<see cref="Budget.DepthVariable"/>).</remarks>
    public static object? FromJson(JsonElement e)
    {
        if (e.ValueKind is not (JsonValueKind.Object or JsonValueKind.Array)) return FromJsonValue(e);
        var budget = Budget.Current;
        budget.Enter();
        try
        {
            return FromJsonValue(e);
        }
        finally
        {
            budget.Leave();
        }
    }

    private static object? FromJsonValue(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => ToDict(e),
        JsonValueKind.Array => e.EnumerateArray().Select(FromJson).ToList(),
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => IsIntegerLiteral(e.GetRawText()) && e.TryGetInt64(out long l) ? l : (object)e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => null,
    };

    private static bool IsIntegerLiteral(string raw) => !raw.Contains('.') && !raw.Contains('e') && !raw.Contains('E');

    private static OrderedDictionary<string, object?> ToDict(JsonElement e)
    {
        var d = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        foreach (var p in e.EnumerateObject()) d[p.Name] = FromJson(p.Value);
        return d;
    }
}
