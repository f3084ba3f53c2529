using System.Globalization;
using System.Text;

namespace Irr.Text.Jinja;

/// <summary>
/// jinja2's default <c>Undefined</c>: prints as "", is falsy, iterates as empty, has length 0, equals
/// only another Undefined; arithmetic, attribute access and calls on it fail with <see cref="Hint"/>.
/// </summary>
internal sealed class Undefined(string hint)
{
    public string Hint { get; } = hint;

    public override string ToString() => "";
}

/// <summary>The object made by <c>namespace()</c>: attributes that <c>{% set ns.x = … %}</c> can change from inside loops.</summary>
internal sealed class Namespace
{
    public Dictionary<string, object?> Attributes { get; } = new(StringComparer.Ordinal);
}

/// <summary>A Python tuple (printed with parentheses; made by <c>items()</c>, <c>a, b</c> and <c>(a, b)</c>).</summary>
internal sealed class PyTuple(object?[] items)
{
    public object?[] Items { get; } = items;
}

/// <summary>Something a template can call: a global function, a macro or a bound method.</summary>
internal sealed class Callable(string name, Func<List<object?>, Dictionary<string, object?>, object?> invoke)
{
    public string Name { get; } = name;

    public object? Invoke(List<object?> args, Dictionary<string, object?> kwargs) => invoke(args, kwargs);
}

/// <summary>The <c>loop</c> variable of a for loop.</summary>
internal sealed class LoopContext(IReadOnlyList<object?> items, int depth0)
{
    public int Index0 { get; set; }

    public object? Attribute(string name) => name switch
    {
        "index0" => (long)Index0,
        "index" => (long)Index0 + 1,
        "revindex" => (long)(items.Count - Index0),
        "revindex0" => (long)(items.Count - Index0 - 1),
        "first" => Index0 == 0,
        "last" => Index0 == items.Count - 1,
        "length" => (long)items.Count,
        "depth" => (long)depth0 + 1,
        "depth0" => (long)depth0,
        "previtem" => Index0 > 0 ? items[Index0 - 1] : new Undefined("there is no previous item"),
        "nextitem" => Index0 + 1 < items.Count ? items[Index0 + 1] : new Undefined("there is no next item"),
        "cycle" => new Callable("loop.cycle", (args, _) =>
            args.Count == 0 ? throw new JinjaError("no items for cycling given") : args[Index0 % args.Count]),
        _ => new Undefined($"'LoopContext' object has no attribute '{name}'"),
    };
}

/// <summary>A problem found while rendering; the template adds the line.</summary>
internal class JinjaError(string message) : Exception(message);

/// <summary>What <c>raise_exception(message)</c> throws.</summary>
internal sealed class RaisedError(string message) : JinjaError(message);

/// <summary>Python's semantics for the values a template handles: None, bool, long, double, string, list, dict, tuple.</summary>
internal static class Py
{
    /// <summary>Characters whose Python <c>str.upper()</c> is more than one character (Unicode SpecialCasing).</summary>
    private static readonly Dictionary<int, string> UpperExpansions = new()
    {
        [0xDF] = "SS", [0x149] = "\u02BCN", [0x1F0] = "J\u030C", [0x390] = "\u0399\u0308\u0301", [0x3B0] = "\u03A5\u0308\u0301", [0x587] = "\u0535\u0552",
        [0x1E96] = "H\u0331", [0x1E97] = "T\u0308", [0x1E98] = "W\u030A", [0x1E99] = "Y\u030A", [0x1E9A] = "A\u02BE", [0x1F50] = "\u03A5\u0313",
        [0x1F52] = "\u03A5\u0313\u0300", [0x1F54] = "\u03A5\u0313\u0301", [0x1F56] = "\u03A5\u0313\u0342", [0x1F80] = "\u1F08\u0399", [0x1F81] = "\u1F09\u0399", [0x1F82] = "\u1F0A\u0399",
        [0x1F83] = "\u1F0B\u0399", [0x1F84] = "\u1F0C\u0399", [0x1F85] = "\u1F0D\u0399", [0x1F86] = "\u1F0E\u0399", [0x1F87] = "\u1F0F\u0399", [0x1F88] = "\u1F08\u0399",
        [0x1F89] = "\u1F09\u0399", [0x1F8A] = "\u1F0A\u0399", [0x1F8B] = "\u1F0B\u0399", [0x1F8C] = "\u1F0C\u0399", [0x1F8D] = "\u1F0D\u0399", [0x1F8E] = "\u1F0E\u0399",
        [0x1F8F] = "\u1F0F\u0399", [0x1F90] = "\u1F28\u0399", [0x1F91] = "\u1F29\u0399", [0x1F92] = "\u1F2A\u0399", [0x1F93] = "\u1F2B\u0399", [0x1F94] = "\u1F2C\u0399",
        [0x1F95] = "\u1F2D\u0399", [0x1F96] = "\u1F2E\u0399", [0x1F97] = "\u1F2F\u0399", [0x1F98] = "\u1F28\u0399", [0x1F99] = "\u1F29\u0399", [0x1F9A] = "\u1F2A\u0399",
        [0x1F9B] = "\u1F2B\u0399", [0x1F9C] = "\u1F2C\u0399", [0x1F9D] = "\u1F2D\u0399", [0x1F9E] = "\u1F2E\u0399", [0x1F9F] = "\u1F2F\u0399", [0x1FA0] = "\u1F68\u0399",
        [0x1FA1] = "\u1F69\u0399", [0x1FA2] = "\u1F6A\u0399", [0x1FA3] = "\u1F6B\u0399", [0x1FA4] = "\u1F6C\u0399", [0x1FA5] = "\u1F6D\u0399", [0x1FA6] = "\u1F6E\u0399",
        [0x1FA7] = "\u1F6F\u0399", [0x1FA8] = "\u1F68\u0399", [0x1FA9] = "\u1F69\u0399", [0x1FAA] = "\u1F6A\u0399", [0x1FAB] = "\u1F6B\u0399", [0x1FAC] = "\u1F6C\u0399",
        [0x1FAD] = "\u1F6D\u0399", [0x1FAE] = "\u1F6E\u0399", [0x1FAF] = "\u1F6F\u0399", [0x1FB2] = "\u1FBA\u0399", [0x1FB3] = "\u0391\u0399", [0x1FB4] = "\u0386\u0399",
        [0x1FB6] = "\u0391\u0342", [0x1FB7] = "\u0391\u0342\u0399", [0x1FBC] = "\u0391\u0399", [0x1FC2] = "\u1FCA\u0399", [0x1FC3] = "\u0397\u0399", [0x1FC4] = "\u0389\u0399",
        [0x1FC6] = "\u0397\u0342", [0x1FC7] = "\u0397\u0342\u0399", [0x1FCC] = "\u0397\u0399", [0x1FD2] = "\u0399\u0308\u0300", [0x1FD3] = "\u0399\u0308\u0301", [0x1FD6] = "\u0399\u0342",
        [0x1FD7] = "\u0399\u0308\u0342", [0x1FE2] = "\u03A5\u0308\u0300", [0x1FE3] = "\u03A5\u0308\u0301", [0x1FE4] = "\u03A1\u0313", [0x1FE6] = "\u03A5\u0342", [0x1FE7] = "\u03A5\u0308\u0342",
        [0x1FF2] = "\u1FFA\u0399", [0x1FF3] = "\u03A9\u0399", [0x1FF4] = "\u038F\u0399", [0x1FF6] = "\u03A9\u0342", [0x1FF7] = "\u03A9\u0342\u0399", [0x1FFC] = "\u03A9\u0399",
        [0xFB00] = "FF", [0xFB01] = "FI", [0xFB02] = "FL", [0xFB03] = "FFI", [0xFB04] = "FFL", [0xFB05] = "ST",
        [0xFB06] = "ST", [0xFB13] = "\u0544\u0546", [0xFB14] = "\u0544\u0535", [0xFB15] = "\u0544\u053B", [0xFB16] = "\u054E\u0546", [0xFB17] = "\u0544\u053D",
    };

    /// <summary>Python's <c>str.upper()</c>: full case mapping, so <c>ß</c> becomes <c>SS</c>.</summary>
    public static string Upper(string s)
    {
        if (s.All(char.IsAscii)) return s.ToUpperInvariant();
        var sb = new StringBuilder(s.Length);
        int n = 0;
        foreach (var r in s.EnumerateRunes())
        {
            if (++n % 4096 == 0) Budget.Current.CheckChars(sb.Length); // case mapping can triple the length
            if (UpperExpansions.TryGetValue(r.Value, out var expansion)) sb.Append(expansion);
            else sb.Append(Rune.ToUpperInvariant(r).ToString());
        }
        return sb.ToString();
    }

    /// <summary>Python's <c>str.lower()</c>: full case mapping, so <c>İ</c> becomes <c>i̇</c>.</summary>
    public static string Lower(string s)
    {
        if (s.All(char.IsAscii)) return s.ToLowerInvariant();
        var sb = new StringBuilder(s.Length);
        int n = 0;
        foreach (var r in s.EnumerateRunes())
        {
            if (++n % 4096 == 0) Budget.Current.CheckChars(sb.Length); // case mapping can triple the length
            if (r.Value == 0x130) sb.Append("i\u0307");
            else sb.Append(Rune.ToLowerInvariant(r).ToString());
        }
        return sb.ToString();
    }

    public static bool Truthy(object? v) => v switch
    {
        null => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        Undefined => false,
        List<object?> l => l.Count > 0,
        PyTuple t => t.Items.Length > 0,
        OrderedDictionary<string, object?> d => d.Count > 0,
        _ => true,
    };

    public static string TypeName(object? v) => v switch
    {
        null => "NoneType",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        List<object?> => "list",
        PyTuple => "tuple",
        OrderedDictionary<string, object?> => "dict",
        Undefined => "Undefined",
        Namespace => "Namespace",
        LoopContext => "LoopContext",
        Callable => "function",
        _ => v.GetType().Name,
    };

    /// <summary>Python's <c>str()</c>.</summary>
    public static string Str(object? v) => v switch
    {
        string s => s,
        Undefined => "",
        _ => Repr(v),
    };

    /// <summary>Python's <c>repr()</c>, within the size limit of a string and the nesting limit (<see cref="Budget"/>).</summary>
    public static string Repr(object? v)
    {
        var sb = new StringBuilder();
        WriteRepr(sb, v);
        Budget.Current.Text(sb.Length);
        return sb.ToString();
    }

    private static void WriteRepr(StringBuilder sb, object? v)
    {
        switch (v)
        {
            case List<object?> or PyTuple or OrderedDictionary<string, object?>:
            {
                var budget = Budget.Current;
                budget.Enter();
                try
                {
                    bool tuple = v is PyTuple, dict = v is OrderedDictionary<string, object?>;
                    sb.Append(tuple ? '(' : dict ? '{' : '[');
                    int n = 0;
                    foreach (var item in v is OrderedDictionary<string, object?> d ? d.Select(kv => (object?)kv) : Iterate(v))
                    {
                        if (n++ > 0) sb.Append(", ");
                        if (item is KeyValuePair<string, object?> kv)
                        {
                            sb.Append(StringRepr(kv.Key)).Append(": ");
                            WriteRepr(sb, kv.Value);
                        }
                        else WriteRepr(sb, item);
                        budget.CheckChars(sb.Length, "a printed value");
                    }
                    if (tuple && n == 1) sb.Append(',');
                    sb.Append(tuple ? ')' : dict ? '}' : ']');
                }
                finally
                {
                    budget.Leave();
                }
                return;
            }
            default:
                sb.Append(v switch
                {
                    null => "None",
                    bool b => b ? "True" : "False",
                    long l => l.ToString(CultureInfo.InvariantCulture),
                    double d => FloatRepr(d),
                    string s => StringRepr(s),
                    Undefined => "Undefined",
                    Namespace => "<Namespace>",
                    _ => $"<{TypeName(v)}>",
                });
                return;
        }
    }

    /// <summary>Python's float repr: the shortest round-trip digits, fixed notation for 1e-4 ≤ |x| &lt; 1e16.</summary>
    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsInfinity(d)) return d > 0 ? "inf" : "-inf";
        if (d == 0) return double.IsNegative(d) ? "-0.0" : "0.0";
        // Shortest round-trip digits: .NET's "R" gives them; read digits and exponent from it.
        string shortest = d.ToString("R", CultureInfo.InvariantCulture);
        bool negative = shortest.StartsWith('-');
        if (negative) shortest = shortest[1..];
        int exp = 0;
        int e = shortest.IndexOfAny(['E', 'e']);
        if (e >= 0)
        {
            exp = int.Parse(shortest[(e + 1)..], CultureInfo.InvariantCulture);
            shortest = shortest[..e];
        }
        int dot = shortest.IndexOf('.');
        string digits = dot < 0 ? shortest : shortest.Remove(dot, 1);
        int pointPos = (dot < 0 ? shortest.Length : dot) + exp; // position of the decimal point within digits
        int lead = 0;
        while (lead < digits.Length - 1 && digits[lead] == '0') { lead++; pointPos--; }
        digits = digits[lead..].TrimEnd('0');
        if (digits.Length == 0) digits = "0";
        int exp10 = pointPos - 1; // scientific exponent
        string body;
        if (exp10 >= -4 && exp10 < 16)
        {
            if (pointPos <= 0) body = "0." + new string('0', -pointPos) + digits;
            else if (pointPos >= digits.Length) body = digits + new string('0', pointPos - digits.Length) + ".0";
            else body = digits[..pointPos] + "." + digits[pointPos..];
        }
        else
        {
            string mantissa = digits.Length == 1 ? digits : digits[0] + "." + digits[1..];
            body = mantissa + "e" + (exp10 < 0 ? "-" : "+") + Math.Abs(exp10).ToString("00", CultureInfo.InvariantCulture);
        }
        return negative ? "-" + body : body;
    }

    public static string StringRepr(string s)
    {
        char quote = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        var sb = new StringBuilder(s.Length + 2).Append(quote);
        var plain = quote == '\'' ? PlainAsciiSingle : PlainAsciiDouble;
        int i = 0;
        while (i < s.Length)
        {
            // Printable ASCII but the quote and the backslash is copied as a run; the rest rune by rune.
            int run = s.AsSpan(i).IndexOfAnyExcept(plain);
            if (run < 0) run = s.Length - i;
            sb.Append(s, i, run);
            i += run;
            if (i == s.Length) break;
            Budget.Current.CheckChars(sb.Length, "a printed value");
            Rune.DecodeFromUtf16(s.AsSpan(i), out var rune, out int consumed); // a lone surrogate reads as U+FFFD, as EnumerateRunes
            i += consumed;
            int c = rune.Value;
            if (c == quote || c == '\\') sb.Append('\\').Append((char)c);
            else if (c == '\n') sb.Append("\\n");
            else if (c == '\r') sb.Append("\\r");
            else if (c == '\t') sb.Append("\\t");
            else if (c < 0x20 || c == 0x7F) sb.Append($"\\x{c:x2}");
            else if (!IsPrintable(rune)) sb.Append(c <= 0xFF ? $"\\x{c:x2}" : c <= 0xFFFF ? $"\\u{c:x4}" : $"\\U{c:x8}");
            else sb.Append(rune.ToString());
        }
        return sb.Append(quote).ToString();
    }

    private static readonly System.Buffers.SearchValues<char> PlainAsciiSingle =
        System.Buffers.SearchValues.Create(string.Concat(Enumerable.Range(0x20, 0x5F).Select(c => (char)c).Where(c => c is not ('\'' or '\\'))));

    private static readonly System.Buffers.SearchValues<char> PlainAsciiDouble =
        System.Buffers.SearchValues.Create(string.Concat(Enumerable.Range(0x20, 0x5F).Select(c => (char)c).Where(c => c is not ('"' or '\\'))));

    private static bool IsPrintable(Rune r)
    {
        var cat = Rune.GetUnicodeCategory(r);
        return r.Value == ' ' || cat is not (UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate
            or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned or UnicodeCategory.LineSeparator
            or UnicodeCategory.ParagraphSeparator or UnicodeCategory.SpaceSeparator);
    }

    public static bool IsNumber(object? v) => v is long or double or bool;

    public static double ToDouble(object? v) => v switch
    {
        long l => l,
        double d => d,
        bool b => b ? 1 : 0,
        _ => throw new JinjaError($"expected a number, got {TypeName(v)}"),
    };

    /// <summary>Python's <c>==</c>; nested lists, tuples and dicts count against the nesting limit (<see cref="Budget"/>).</summary>
    public static bool Equal(object? a, object? b)
    {
        var budget = Budget.Current;
        budget.Step();
        if (a is string sa && b is string sb) return (sa.Length == sb.Length ? Scanned(sa) : sa) == sb;
        if (a is not (List<object?> or PyTuple or OrderedDictionary<string, object?>)) return EqualItems(a, b);
        budget.Enter();
        try
        {
            return EqualItems(a, b);
        }
        finally
        {
            budget.Leave();
        }
    }

    private static bool EqualItems(object? a, object? b)
    {
        if (a is Undefined || b is Undefined) return a is Undefined && b is Undefined;
        if (IsNumber(a) && IsNumber(b))
            return a is double || b is double ? ToDouble(a) == ToDouble(b) : ToLong(a) == ToLong(b);
        return (a, b) switch
        {
            (null, null) => true,
            (string x, string y) => x == y,
            (List<object?> x, List<object?> y) => x.Count == y.Count && x.Zip(y).All(p => Equal(p.First, p.Second)),
            (PyTuple x, PyTuple y) => x.Items.Length == y.Items.Length && x.Items.Zip(y.Items).All(p => Equal(p.First, p.Second)),
            (OrderedDictionary<string, object?> x, OrderedDictionary<string, object?> y) =>
                x.Count == y.Count && x.All(kv => y.TryGetValue(kv.Key, out var v) && Equal(kv.Value, v)),
            _ => ReferenceEquals(a, b),
        };
    }

    /// <summary>Python's <c>int(x)</c> of a float, refused by name when it is not finite or does not fit 64 bits.</summary>
    public static long Truncate(double d) =>
        double.IsNaN(d) ? throw new JinjaError("cannot convert float NaN to integer")
        : double.IsInfinity(d) ? throw new JinjaError("cannot convert float infinity to integer")
        : d >= -9223372036854775808.0 && d < 9223372036854775808.0 ? (long)Math.Truncate(d)
        : throw new JinjaError($"integer overflow: int({FloatRepr(d)}) does not fit in 64 bits (the templates' integers are 64-bit)");

    public static long ToLong(object? v) => v switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        _ => throw new JinjaError($"expected an integer, got {TypeName(v)}"),
    };

    /// <summary>Python's ordering (&lt;): numbers, strings by code point, lists and tuples lexicographically.</summary>
    public static int Compare(object? a, object? b, string op)
    {
        if (IsNumber(a) && IsNumber(b)) return ToDouble(a).CompareTo(ToDouble(b));
        if (a is string x && b is string y) return CompareCodePoints(Scanned(x), Scanned(y));
        if (a is List<object?> la && b is List<object?> lb) return CompareSequences(la, lb, op);
        if (a is PyTuple ta && b is PyTuple tb) return CompareSequences(ta.Items, tb.Items, op);
        if (a is Undefined u) throw new JinjaError(u.Hint);
        if (b is Undefined v) throw new JinjaError(v.Hint);
        throw new JinjaError($"'{op}' not supported between instances of '{TypeName(a)}' and '{TypeName(b)}'");
    }

    private static int CompareSequences(IReadOnlyList<object?> a, IReadOnlyList<object?> b, string op)
    {
        var budget = Budget.Current;
        budget.Enter();
        try
        {
            for (int i = 0; i < Math.Min(a.Count, b.Count); i++)
                if (!Equal(a[i], b[i])) return Compare(a[i], b[i], op);
            return a.Count.CompareTo(b.Count);
        }
        finally
        {
            budget.Leave();
        }
    }

    public static int CompareCodePoints(string x, string y)
    {
        var ex = x.EnumerateRunes();
        var ey = y.EnumerateRunes();
        while (true)
        {
            bool hx = ex.MoveNext(), hy = ey.MoveNext();
            if (!hx || !hy) return hx.CompareTo(hy);
            int c = ex.Current.Value.CompareTo(ey.Current.Value);
            if (c != 0) return c;
        }
    }

    /// <summary>
    /// Python's iteration: lists, tuples, dict keys, string characters; Undefined is empty. A step per item (the
    /// caller goes through them), and a string's characters as a list within the list limit (<see cref="Budget"/>).
    /// </summary>
    public static IReadOnlyList<object?> Iterate(object? v)
    {
        IReadOnlyList<object?> items = v switch
        {
            List<object?> l => l,
            PyTuple t => t.Items,
            OrderedDictionary<string, object?> d => d.Keys.Cast<object?>().ToList(),
            string s => Characters(s),
            Undefined => [],
            _ => throw new JinjaError($"'{TypeName(v)}' object is not iterable"),
        };
        Budget.Current.Step(items.Count);
        return items;
    }

    private static List<object?> Characters(string s)
    {
        Budget.Current.Items(s.Length, "the characters of a string");
        return s.EnumerateRunes().Select(r => (object?)r.ToString()).ToList();
    }

    /// <summary>Whether <paramref name="s"/> has surrogate pairs (its characters are not its UTF-16 units).</summary>
    public static bool HasSurrogates(string s) => s.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') >= 0;

    /// <summary>The code points of a string with surrogate pairs (Python indexes and slices strings by code point).</summary>
    public static int[] CodePoints(string s)
    {
        Budget.Current.Text(s.Length);
        return s.EnumerateRunes().Select(r => r.Value).ToArray();
    }

    /// <summary>Python's <c>len()</c>.</summary>
    public static long Length(object? v) => v switch
    {
        string s => HasSurrogates(s) ? Scanned(s).EnumerateRunes().Count() : s.Length,
        List<object?> l => l.Count,
        PyTuple t => t.Items.Length,
        OrderedDictionary<string, object?> d => d.Count,
        Undefined => 0,
        _ => throw new JinjaError($"object of type '{TypeName(v)}' has no len()"),
    };

    /// <summary>A string about to be scanned whole, its steps spent.</summary>
    public static string Scanned(string s)
    {
        Budget.Current.Step(s.Length / Budget.CharsPerStep);
        return s;
    }

    /// <summary>Python's <c>in</c>.</summary>
    public static bool Contains(object? container, object? item) => container switch
    {
        string s when item is string sub => Scanned(s).Contains(sub, StringComparison.Ordinal),
        string => throw new JinjaError($"'in <string>' requires string as left operand, not {TypeName(item)}"),
        OrderedDictionary<string, object?> d => item is string k && d.ContainsKey(k),
        Undefined => false,
        _ => Iterate(container).Any(x => Equal(x, item)),
    };
}
