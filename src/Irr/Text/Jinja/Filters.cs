using System.Globalization;
using System.Text;

namespace Irr.Text.Jinja;

internal static partial class Builtins
{
    private static readonly HashSet<string> Filters =
    [
        "trim", "length", "count", "tojson", "upper", "lower", "default", "d", "capitalize", "title", "string", "list",
        "join", "first", "last", "reverse", "sort", "unique", "selectattr", "rejectattr", "select", "reject", "map",
        "items", "dictsort", "int", "float", "abs", "round", "replace", "safe", "indent", "min", "max", "sum", "batch",
    ];

    public static bool HasFilter(string name) => Filters.Contains(name);

    public static object? ApplyFilter(string name, object? v, List<object?> args, Dictionary<string, object?> kwargs)
    {
        object? Arg(int i, string key, object? dflt) =>
            i >= 0 && i < args.Count ? args[i] : kwargs.TryGetValue(key, out var kv) ? kv : dflt;
        switch (name)
        {
            case "trim":
                return Arg(0, "chars", null) is string chars ? Py.Str(v).Trim(chars.ToCharArray()) : PyStrip(Py.Str(v), true, true);
            case "length" or "count":
                return Py.Length(v);
            case "tojson":
                // transformers' tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False) = json.dumps
                return PyJson.Dumps(v, Py.Truthy(Arg(0, "ensure_ascii", false)), Arg(1, "indent", null), Arg(2, "separators", null), Py.Truthy(Arg(3, "sort_keys", false)));
            case "upper":
                return Py.Upper(Py.Str(v));
            case "lower":
                return Py.Lower(Py.Str(v));
            case "capitalize":
            {
                string s = Py.Str(v);
                return s.Length == 0 ? s : Py.Upper(s[..1]) + Py.Lower(s[1..]);
            }
            case "title":
                return TitleFilter(Py.Str(v));
            case "default" or "d":
            {
                var dflt = Arg(0, "default_value", "");
                bool boolean = Py.Truthy(Arg(1, "boolean", false));
                return v is Undefined || boolean && !Py.Truthy(v) ? dflt : v;
            }
            case "string":
                return Py.Str(v);
            case "safe":
                return v;
            case "list":
                return Py.Iterate(v).ToList();
            case "join":
            {
                string sep = Py.Str(Arg(0, "d", ""));
                var attribute = Arg(1, "attribute", null);
                var items = Py.Iterate(v).Select(x => attribute is null ? x : GetAttributePath(x, attribute));
                return Join(sep, items.Select(Py.Str).ToList());
            }
            case "first":
            {
                var items = Py.Iterate(v);
                return items.Count > 0 ? items[0] : new Undefined("No first item, sequence was empty.");
            }
            case "last":
            {
                var items = Py.Iterate(v);
                return items.Count > 0 ? items[^1] : new Undefined("No last item, sequence was empty.");
            }
            case "reverse":
                return v is string text ? string.Concat(Py.Iterate(text).Reverse().Cast<string>()) : Py.Iterate(v).Reverse().ToList();
            case "sort":
            {
                bool reverse = Py.Truthy(Arg(0, "reverse", false));
                bool caseSensitive = Py.Truthy(Arg(1, "case_sensitive", false));
                var attribute = Arg(2, "attribute", null);
                return SortStable(Py.Iterate(v), x => SortKey(attribute is null ? x : GetAttributePath(x, attribute), caseSensitive), reverse);
            }
            case "unique":
            {
                var result = new List<object?>();
                foreach (var x in Py.Iterate(v)) if (!result.Any(y => Py.Equal(x, y))) result.Add(x);
                return result;
            }
            case "selectattr" or "rejectattr":
            {
                if (args.Count == 0) throw new JinjaError($"{name} needs an attribute name");
                bool keep = name == "selectattr";
                var attribute = args[0]!;
                return Py.Iterate(v).Where(x =>
                {
                    var value = GetAttributePath(x, attribute);
                    bool passes = args.Count < 2 ? Py.Truthy(value) : ApplyTest(Py.Str(args[1]), value, args.Skip(2).ToList());
                    return passes == keep;
                }).ToList();
            }
            case "select" or "reject":
            {
                bool keep = name == "select";
                return Py.Iterate(v).Where(x =>
                    (args.Count == 0 ? Py.Truthy(x) : ApplyTest(Py.Str(args[0]), x, args.Skip(1).ToList())) == keep).ToList();
            }
            case "map":
            {
                if (kwargs.TryGetValue("attribute", out var attribute))
                {
                    var dflt = kwargs.GetValueOrDefault("default");
                    return Py.Iterate(v).Select(x =>
                    {
                        var r = GetAttributePath(x, attribute);
                        return r is Undefined && kwargs.ContainsKey("default") ? dflt : r;
                    }).ToList();
                }
                if (args.Count == 0) throw new JinjaError("map needs a filter name or attribute=");
                string filter = Py.Str(args[0]);
                if (!HasFilter(filter)) throw new JinjaError($"unsupported filter '{filter}'");
                // map('map', 'map', …) nests one filter call per argument: counted like any nesting.
                var budget = Budget.Current;
                budget.Enter();
                try
                {
                    return Py.Iterate(v).Select(x => budget.Made(ApplyFilter(filter, x, args.Skip(1).ToList(), kwargs))).ToList();
                }
                finally
                {
                    budget.Leave();
                }
            }
            case "items":
                return v switch
                {
                    OrderedDictionary<string, object?> d => d.Select(kv => (object?)new PyTuple([kv.Key, kv.Value])).ToList(),
                    Undefined => new List<object?>(),
                    _ => throw new JinjaError($"can only get item pairs from a mapping, not {Py.TypeName(v)}"),
                };
            case "dictsort":
            {
                if (v is not OrderedDictionary<string, object?> d) throw new JinjaError("dictsort expects a mapping");
                bool caseSensitive = Py.Truthy(Arg(0, "case_sensitive", false));
                int k = Py.Str(Arg(1, "by", "key")) switch
                {
                    "key" => 0,
                    "value" => 1,
                    _ => throw new JinjaError("You can only sort by either \"key\" or \"value\""),
                };
                bool reverse = Py.Truthy(Arg(2, "reverse", false));
                var pairs = d.Select(kv => (object?)new PyTuple([kv.Key, kv.Value])).ToList();
                return SortStable(pairs, p => SortKey(((PyTuple)p!).Items[k], caseSensitive), reverse);
            }
            case "int":
                return v switch
                {
                    long or bool => Py.ToLong(v),
                    double dd => double.IsNaN(dd) ? Arg(0, "default", 0L) : Py.Truncate(dd),
                    // jinja2: int(value, base), then int(float(value)) so that "42.23"|int is 42, then the default.
                    string s when PyParseInt(s, (int)Py.ToLong(Arg(1, "base", 10L))) is long l => l,
                    string s when double.TryParse(WithoutDigitSeparators(s.Trim()), NumberStyles.Float, CultureInfo.InvariantCulture, out double dd) => double.IsNaN(dd) ? Arg(0, "default", 0L) : Py.Truncate(dd),
                    _ => Arg(0, "default", 0L),
                };
            case "float":
                return v switch
                {
                    long or bool or double => Py.ToDouble(v),
                    string s when double.TryParse(WithoutDigitSeparators(s.Trim()), NumberStyles.Float, CultureInfo.InvariantCulture, out double dd) => dd,
                    _ => Arg(0, "default", 0.0),
                };
            case "abs":
                return v switch { long l => l == long.MinValue ? throw new JinjaError("integer overflow: abs(-9223372036854775808) does not fit in 64 bits (the templates' integers are 64-bit)") : (object)Math.Abs(l), double dd => Math.Abs(dd), bool b => b ? 1L : 0L, _ => throw new JinjaError($"bad operand type for abs(): '{Py.TypeName(v)}'") };
            case "round":
            {
                // Beyond ±400 digits a double is unchanged or rounds to zero: clamped, so that 10**precision stays small.
                int precision = (int)Math.Clamp(Py.ToLong(Arg(0, "precision", 0L)), -400, 400);
                string method = Py.Str(Arg(1, "method", "common"));
                double x = Py.ToDouble(v), scale = Math.Pow(10, precision);
                return method switch
                {
                    // Python's round(int, n) stays an int.
                    "common" when v is long or bool => (object)(precision >= 0 ? Py.ToLong(v) : Py.Truncate(PyRound(x, precision))),
                    "common" => PyRound(x, precision),
                    "ceil" => Math.Ceiling(x * scale) / scale,
                    "floor" => Math.Floor(x * scale) / scale,
                    _ => throw new JinjaError("method must be common, ceil or floor"),
                };
            }
            case "replace":
            {
                string s = Py.Str(v), old = Py.Str(Arg(0, "old", "")), replacement = Py.Str(Arg(1, "new", ""));
                long count = Py.ToLong(Arg(2, "count", -1L));
                return PyReplace(s, old, replacement, count);
            }
            case "indent":
                return Indent(Py.Str(v), Arg(0, "width", 4L), Py.Truthy(Arg(1, "first", false)), Py.Truthy(Arg(2, "blank", false)));
            case "min" or "max":
            {
                // jinja2's min/max(case_sensitive=False, attribute=None): strings compare lower-cased.
                var items = Py.Iterate(v);
                if (items.Count == 0) return new Undefined($"No aggregated item, sequence was empty.");
                bool caseSensitive = Py.Truthy(Arg(0, "case_sensitive", false));
                var attribute = Arg(1, "attribute", null);
                object? Key(object? x) => SortKey(attribute is null ? x : GetAttributePath(x, attribute), caseSensitive);
                var best = items[0];
                foreach (var x in items.Skip(1))
                    if (name == "min" ? Py.Compare(Key(x), Key(best), "<") < 0 : Py.Compare(Key(x), Key(best), ">") > 0) best = x;
                return best;
            }
            case "sum":
            {
                object? total = Arg(1, "start", 0L);
                var attribute = Arg(0, "attribute", null);
                foreach (var x in Py.Iterate(v)) total = Binary("+", total, attribute is null ? x : GetAttributePath(x, attribute));
                return total;
            }
            case "batch":
            {
                int size = (int)Math.Clamp(Py.ToLong(Arg(0, "linecount", 1L)), int.MinValue, int.MaxValue);
                if (size <= 0) throw new JinjaError("batch size must be positive");
                return Py.Iterate(v).Chunk(size).Select(c => (object?)c.ToList()).ToList();
            }
        }
        throw new JinjaError($"unsupported filter '{name}'");
    }

    /// <summary>Python's <c>sorted(items, key=key, reverse=reverse)</c>: stable in both directions.</summary>
    private static List<object?> SortStable(IReadOnlyList<object?> items, Func<object?, object?> key, bool reverse)
    {
        var comparer = Comparer<object?>.Create((p, q) =>
        {
            Budget.Current.Step();
            return Py.Compare(p, q, "<");
        });
        try
        {
            return (reverse ? items.OrderByDescending(key, comparer) : items.OrderBy(key, comparer)).ToList();
        }
        catch (InvalidOperationException e) when (e.InnerException is JinjaError inner)
        {
            // The sort wraps what the comparison throws (e.g. comparing a string with a number).
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(inner);
            throw;
        }
    }

    /// <summary>jinja2 sorts strings case-insensitively unless <c>case_sensitive</c>.</summary>
    private static object? SortKey(object? value, bool caseSensitive) => !caseSensitive && value is string s ? s.ToLowerInvariant() : value;

    /// <summary>jinja2's attribute lookup for filters: "a.b" follows dots, digits index.</summary>
    private static object? GetAttributePath(object? value, object? attribute)
    {
        if (attribute is long l) return GetItem(value, l);
        foreach (var part in Py.Str(attribute).Split('.'))
            value = long.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out long i) ? GetItem(value, i) : GetItem(value, part);
        return value;
    }

    /// <summary>Python's <c>str.title()</c>: a letter is upper-cased when the character before it is not a letter.</summary>
    private static string Title(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool start = true;
        foreach (char c in s)
        {
            sb.Append(start ? char.ToUpperInvariant(c) : char.ToLowerInvariant(c));
            start = !char.IsLetter(c);
        }
        return sb.ToString();
    }

    /// <summary>
    /// jinja2's <c>title</c> filter, which is not <c>str.title()</c>: words begin only after runs of
    /// whitespace, <c>-</c>, <c>(</c>, <c>{</c>, <c>[</c> or <c>&lt;</c>; each word's first character is
    /// upper-cased and the rest lower-cased.
    /// </summary>
    private static string TitleFilter(string s)
    {
        var sb = new StringBuilder(s.Length);
        int i = 0;
        while (i < s.Length)
        {
            Budget.Current.CheckChars(sb.Length);
            int j = i;
            bool delimiter = IsTitleDelimiter(s[i]);
            while (j < s.Length && IsTitleDelimiter(s[j]) == delimiter) j++;
            string item = s[i..j];
            int first = char.IsHighSurrogate(item[0]) && item.Length > 1 ? 2 : 1;
            sb.Append(Py.Upper(item[..first])).Append(Py.Lower(item[first..]));
            i = j;
        }
        return sb.ToString();
    }

    private static bool IsTitleDelimiter(char c) => c is '-' or '(' or '{' or '[' or '<' || Lexer.IsSpace(c);

    /// <summary>Python's <c>int(s, base)</c> for base 0 or 2–36: whitespace, sign, base prefix, single underscores between digits.</summary>
    private static long? PyParseInt(string text, int numberBase)
    {
        string s = text.Trim(PyWhitespace);
        if (numberBase is not 0 and (< 2 or > 36)) throw new JinjaError("int() base must be >= 2 and <= 36, or 0");
        bool negative = false;
        if (s.Length > 0 && s[0] is '+' or '-')
        {
            negative = s[0] == '-';
            s = s[1..];
        }
        int b = numberBase;
        if (s.Length > 1 && s[0] == '0' && char.ToLowerInvariant(s[1]) is 'x' or 'o' or 'b')
        {
            int prefixBase = char.ToLowerInvariant(s[1]) switch { 'x' => 16, 'o' => 8, _ => 2 };
            if (b == 0 || b == prefixBase)
            {
                b = prefixBase;
                s = s[2..];
                if (s.StartsWith('_')) s = s[1..];
            }
        }
        else if (b == 0)
        {
            b = 10;
            if (s.Length > 1 && s[0] == '0' && s.Any(c => c is not ('0' or '_'))) return null;
        }
        if (s.Length == 0 || s[0] == '_' || s[^1] == '_' || s.Contains("__", StringComparison.Ordinal)) return null;
        long value = 0;
        foreach (char c in s)
        {
            if (c == '_') continue;
            int digit = c is >= '0' and <= '9' ? c - '0' : char.ToLowerInvariant(c) is >= 'a' and <= 'z' and var lc ? lc - 'a' + 10 : 99;
            if (digit >= b) return null;
            try
            {
                value = checked(value * b + digit);
            }
            catch (OverflowException)
            {
                throw new JinjaError($"integer overflow: int({Py.StringRepr(text.Length > 40 ? text[..40] + "…" : text)}) does not fit in 64 bits (the templates' integers are 64-bit)");
            }
        }
        return negative ? -value : value;
    }

    private static readonly char[] PyWhitespace = [' ', '\t', '\n', '\r', '\v', '\f', '\u001c', '\u001d', '\u001e', '\u001f', '\u0085', '\u00a0', '\u1680', '\u2000', '\u2001', '\u2002', '\u2003', '\u2004', '\u2005', '\u2006', '\u2007', '\u2008', '\u2009', '\u200a', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000'];

    /// <summary>Python's numeric literals in <c>int()</c>/<c>float()</c> allow single underscores between digits.</summary>
    private static string WithoutDigitSeparators(string s)
    {
        if (!s.Contains('_')) return s;
        for (int i = 0; i < s.Length; i++)
            if (s[i] == '_' && (i == 0 || i == s.Length - 1 || !char.IsAsciiDigit(s[i - 1]) || !char.IsAsciiDigit(s[i + 1]))) return s;
        return s.Replace("_", "", StringComparison.Ordinal);
    }

    /// <summary>
    /// Python's <c>round(x, n)</c>: the exact binary value rounded half to even at <paramref name="precision"/>
    /// decimals (so <c>round(2.5)</c> is 2.0 and <c>round(2.675, 2)</c> is 2.67), returned as a float.
    /// </summary>
    private static double PyRound(double x, int precision)
    {
        if (double.IsNaN(x) || double.IsInfinity(x) || x == 0) return x;
        long bits = BitConverter.DoubleToInt64Bits(x);
        int exponent = (int)((bits >> 52) & 0x7FF);
        long mantissa = bits & 0xFFFFFFFFFFFFFL;
        if (exponent == 0) exponent++;
        else mantissa |= 1L << 52;
        exponent -= 1075;
        if (exponent >= 0 && precision >= 0) return x;
        // |x| = mantissa * 2^exponent; scaled = |x| * 10^precision = num / den exactly.
        var num = new System.Numerics.BigInteger(mantissa);
        var den = System.Numerics.BigInteger.One;
        if (exponent >= 0) num <<= exponent;
        else den <<= -exponent;
        if (precision >= 0) num *= System.Numerics.BigInteger.Pow(10, precision);
        else den *= System.Numerics.BigInteger.Pow(10, -precision);
        var q = System.Numerics.BigInteger.DivRem(num, den, out var r);
        int cmp = (2 * r).CompareTo(den);
        if (cmp > 0 || (cmp == 0 && !q.IsEven)) q += 1;
        string digits = (x < 0 ? "-" : "") + q.ToString(CultureInfo.InvariantCulture) + "E" + (-precision).ToString(CultureInfo.InvariantCulture);
        double result = double.Parse(digits, NumberStyles.Float, CultureInfo.InvariantCulture);
        return result == 0 && x < 0 ? -0.0 : result;
    }

    private static string Indent(string s, object? width, bool first, bool blank)
    {
        long padLength = width is string w0 ? w0.Length : Math.Max(0, Py.ToLong(width));
        var lines = s.Split('\n');
        Budget.Current.Text(Budget.Sum(s.Length, Budget.Times(padLength, lines.Length)));
        string pad = width is string w ? w : new string(' ', (int)padLength);
        var sb = new StringBuilder();
        for (int i = 0; i < lines.Length; i++)
        {
            if (i > 0) sb.Append('\n');
            bool indent = (i > 0 || first) && (blank || lines[i].Length > 0);
            if (indent) sb.Append(pad);
            sb.Append(lines[i]);
        }
        return sb.ToString();
    }

    // ---- Python methods of strings and dicts ------------------------------------------------------

    private static Callable? Method(object? target, string name)
    {
        switch (target)
        {
            case string s:
                return StringMethod(s, name);
            case OrderedDictionary<string, object?> d:
                return name switch
                {
                    "items" => new Callable("items", (_, _) => d.Select(kv => (object?)new PyTuple([kv.Key, kv.Value])).ToList()),
                    "keys" => new Callable("keys", (_, _) => d.Keys.Cast<object?>().ToList()),
                    "values" => new Callable("values", (_, _) => d.Values.ToList()),
                    "get" => new Callable("get", (args, _) =>
                        args.Count > 0 && args[0] is string k && d.TryGetValue(k, out var v) ? v : args.Count > 1 ? args[1] : null),
                    _ => null,
                };
            case List<object?> when name is "append" or "extend" or "pop" or "insert" or "remove" or "clear" or "sort" or "reverse":
                return new Callable(name, (_, _) => throw new JinjaError($"unsupported: list.{name}() changes the list, which the sandbox transformers renders in forbids"));
            case List<object?> l2 when name == "index":
                return new Callable(name, (args, _) =>
                {
                    int i = l2.FindIndex(x => Py.Equal(x, args.FirstOrDefault()));
                    return i >= 0 ? (long)i : throw new JinjaError("value is not in list");
                });
            case List<object?> l3 when name == "count":
                return new Callable(name, (args, _) => (long)l3.Count(x => Py.Equal(x, args.FirstOrDefault())));
        }
        return null;
    }

    private static Callable? StringMethod(string s, string name)
    {
        string? Chars(List<object?> args) => args.Count > 0 && args[0] is not null ? Py.Str(args[0]) : null;
        return name switch
        {
            "strip" => new("strip", (a, _) => Chars(a) is { } c ? s.Trim(c.ToCharArray()) : PyStrip(s, true, true)),
            "lstrip" => new("lstrip", (a, _) => Chars(a) is { } c ? s.TrimStart(c.ToCharArray()) : PyStrip(s, true, false)),
            "rstrip" => new("rstrip", (a, _) => Chars(a) is { } c ? s.TrimEnd(c.ToCharArray()) : PyStrip(s, false, true)),
            "split" => new("split", (a, k) => PySplit(s, a.Count > 0 ? a[0] : k.GetValueOrDefault("sep"), a.Count > 1 ? Py.ToLong(a[1]) : k.TryGetValue("maxsplit", out var m) ? Py.ToLong(m) : -1)),
            "startswith" => new("startswith", (a, _) => Affix(a, p => s.StartsWith(p, StringComparison.Ordinal))),
            "endswith" => new("endswith", (a, _) => Affix(a, p => s.EndsWith(p, StringComparison.Ordinal))),
            "upper" => new("upper", (_, _) => Py.Upper(s)),
            "lower" => new("lower", (_, _) => Py.Lower(s)),
            "title" => new("title", (_, _) => Title(s)),
            "capitalize" => new("capitalize", (_, _) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant()),
            "replace" => new("replace", (a, _) => PyReplace(s, Py.Str(a.ElementAtOrDefault(0)), Py.Str(a.ElementAtOrDefault(1)), a.Count > 2 ? Py.ToLong(a[2]) : -1)),
            "find" => new("find", (a, _) => (long)CodePointIndex(s, Py.Scanned(s).IndexOf(Py.Str(a.ElementAtOrDefault(0)), StringComparison.Ordinal))),
            "count" => new("count", (a, _) => (long)CountOccurrences(Py.Scanned(s), Py.Str(a.ElementAtOrDefault(0)))),
            "join" => new("join", (a, _) => Join(s, Py.Iterate(a.ElementAtOrDefault(0)).Select(Py.Str).ToList())),
            "splitlines" => new("splitlines", (_, _) => SplitLines(s)),
            "removeprefix" => new("removeprefix", (a, _) => Py.Str(a.ElementAtOrDefault(0)) is var p && s.StartsWith(p, StringComparison.Ordinal) ? s[p.Length..] : s),
            "removesuffix" => new("removesuffix", (a, _) => Py.Str(a.ElementAtOrDefault(0)) is var p && p.Length > 0 && s.EndsWith(p, StringComparison.Ordinal) ? s[..^p.Length] : s),
            "isdigit" => new("isdigit", (_, _) => s.Length > 0 && s.All(char.IsDigit)),
            "isalpha" => new("isalpha", (_, _) => s.Length > 0 && s.All(char.IsLetter)),
            "isalnum" => new("isalnum", (_, _) => s.Length > 0 && s.All(char.IsLetterOrDigit)),
            "isspace" => new("isspace", (_, _) => s.Length > 0 && s.All(Lexer.IsSpace)),
            "islower" => new("islower", (_, _) => s.Any(char.IsLetter) && s == s.ToLowerInvariant()),
            "isupper" => new("isupper", (_, _) => s.Any(char.IsLetter) && s == s.ToUpperInvariant()),
            _ => null,
        };
    }

    private static bool Affix(List<object?> args, Func<string, bool> test) => args.ElementAtOrDefault(0) switch
    {
        string p => test(p),
        PyTuple t => t.Items.Any(x => test(Py.Str(x))),
        var other => throw new JinjaError($"startswith/endswith first arg must be str or a tuple of str, not {Py.TypeName(other)}"),
    };

    private static int CodePointIndex(string s, int utf16Index) => utf16Index < 0 ? -1 : s[..utf16Index].EnumerateRunes().Count();

    private static int CountOccurrences(string s, string sub)
    {
        if (sub.Length == 0) return s.EnumerateRunes().Count() + 1;
        return s.AsSpan().Count(sub.AsSpan()); // non-overlapping, as Python's str.count
    }

    /// <summary>Adds a piece of a split string, within the list limit (<see cref="Budget.ItemsVariable"/>).</summary>
    private static void AddItem(List<object?> list, string item)
    {
        var budget = Budget.Current;
        if (list.Count >= budget.MaxItems) budget.Items(list.Count + 1L, "the pieces of a split string");
        budget.Step();
        list.Add(item);
    }

    /// <summary>Python's <c>str.splitlines()</c>: at \n, \r\n, \r and the other line boundaries, no trailing empty line.</summary>
    private static List<object?> SplitLines(string s)
    {
        var lines = new List<object?>();
        int start = 0;
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] is not ('\n' or '\r' or '\v' or '\f' or '\x1c' or '\x1d' or '\x1e' or '\x85' or '\u2028' or '\u2029')) continue;
            AddItem(lines, s[start..i]);
            if (s[i] == '\r' && i + 1 < s.Length && s[i + 1] == '\n') i++;
            start = i + 1;
        }
        if (start < s.Length) lines.Add(s[start..]);
        return lines;
    }

    /// <summary>Python's <c>str.strip()</c> without arguments: whitespace per <c>str.isspace</c>.</summary>
    internal static string PyStrip(string s, bool left, bool right)
    {
        int a = 0, b = s.Length;
        if (left) while (a < b && Lexer.IsSpace(s[a])) a++;
        if (right) while (b > a && Lexer.IsSpace(s[b - 1])) b--;
        return s[a..b];
    }

    /// <summary><c>sep.join(items)</c>, its length checked against the limit before it is made.</summary>
    private static string Join(string separator, List<string> items)
    {
        long length = Budget.Times(separator.Length, Math.Max(0, items.Count - 1));
        foreach (string item in items) length = Budget.Sum(length, item.Length);
        Budget.Current.Text(length);
        return string.Join(separator, items);
    }

    private static string PyReplace(string s, string old, string replacement, long count)
    {
        // The result's length, from the number of replacements, checked against the limit before it is made.
        long occurrences = old.Length == 0 ? Py.Length(s) + 1 : CountOccurrences(Py.Scanned(s), old);
        if (count >= 0) occurrences = Math.Min(occurrences, count);
        Budget.Current.Text(Budget.Sum(s.Length - (long)old.Length * occurrences, Budget.Times(replacement.Length, occurrences)));
        if (count < 0) return old.Length == 0 ? string.Concat(s.EnumerateRunes().Select(r => replacement + r)) + replacement : s.Replace(old, replacement, StringComparison.Ordinal);
        var sb = new StringBuilder();
        int pos = 0;
        for (long n = 0; n < count; n++)
        {
            int i = s.IndexOf(old, pos, StringComparison.Ordinal);
            if (i < 0 || old.Length == 0) break;
            sb.Append(s, pos, i - pos).Append(replacement);
            pos = i + old.Length;
        }
        return sb.Append(s, pos, s.Length - pos).ToString();
    }

    /// <summary>Python's <c>str.split(sep=None, maxsplit=-1)</c>.</summary>
    private static List<object?> PySplit(string s, object? sep, long maxsplit)
    {
        var result = new List<object?>();
        if (sep is null)
        {
            int i = 0;
            while (true)
            {
                while (i < s.Length && Lexer.IsSpace(s[i])) i++;
                if (i == s.Length) break;
                if (maxsplit >= 0 && result.Count == maxsplit)
                {
                    result.Add(PyStrip(s[i..], false, true));
                    break;
                }
                int start = i;
                while (i < s.Length && !Lexer.IsSpace(s[i])) i++;
                AddItem(result, s[start..i]);
            }
            return result;
        }
        string separator = Py.Str(sep);
        if (separator.Length == 0) throw new JinjaError("empty separator");
        int pos = 0;
        while (maxsplit < 0 || result.Count < maxsplit)
        {
            int i = s.IndexOf(separator, pos, StringComparison.Ordinal);
            if (i < 0) break;
            AddItem(result, s[pos..i]);
            pos = i + separator.Length;
        }
        result.Add(s[pos..]);
        return result;
    }
}
