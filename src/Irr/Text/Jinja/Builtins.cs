using System.Globalization;
using System.Text;

namespace Irr.Text.Jinja;

/// <summary>
/// The operators, attribute lookup, filters, tests, global functions and string/dict methods of the
/// subset, each with jinja2's (and Python's) semantics.
/// </summary>
internal static partial class Builtins
{
    // ---- globals --------------------------------------------------------------------------------

    public static object? Global(string name) => name switch
    {
        "raise_exception" => new Callable(name, (args, _) =>
            throw new RaisedError(args.Count > 0 ? Py.Str(args[0]) : "")),
        "namespace" => new Callable(name, (args, kwargs) =>
        {
            var ns = new Namespace();
            foreach (var a in args)
            {
                if (a is not OrderedDictionary<string, object?> d) throw new JinjaError("namespace() takes a dict or keyword arguments");
                foreach (var (k, v) in d) ns.Attributes[k] = v;
            }
            foreach (var (k, v) in kwargs) ns.Attributes[k] = v;
            return ns;
        }),
        "range" => new Callable(name, (args, _) => Range(args)),
        "dict" => new Callable(name, (args, kwargs) =>
        {
            var d = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
            foreach (var (k, v) in kwargs) d[k] = v;
            return d;
        }),
        "strftime_now" => new Callable(name, (args, _) => StrftimeNow(args.Count > 0 ? Py.Str(args[0]) : "")),
        _ => null,
    };

    private static List<object?> Range(List<object?> args)
    {
        long start = 0, stop, step = 1;
        switch (args.Count)
        {
            case 1: stop = Py.ToLong(args[0]); break;
            case 2: start = Py.ToLong(args[0]); stop = Py.ToLong(args[1]); break;
            case 3: start = Py.ToLong(args[0]); stop = Py.ToLong(args[1]); step = Py.ToLong(args[2]); break;
            default: throw new JinjaError("range expected 1 to 3 arguments");
        }
        if (step == 0) throw new JinjaError("range() arg 3 must not be zero");
        // Python's len(range(start, stop, step)), in exact arithmetic, checked against the list limit before any item is made.
        var span = step > 0 ? (System.Numerics.BigInteger)stop - start : (System.Numerics.BigInteger)start - stop;
        var count = span <= 0 ? System.Numerics.BigInteger.Zero : (span - 1) / System.Numerics.BigInteger.Abs(step) + 1;
        Budget.Current.Items(count > long.MaxValue ? long.MaxValue : (long)count, $"range({string.Join(", ", args.Select(Py.Repr))})");
        var result = new List<object?>((int)count);
        for (long i = 0, value = start; i < (long)count; i++, value = unchecked(value + step)) result.Add(value);
        return result;
    }

    /// <summary>transformers' <c>strftime_now(format)</c>, for the common C format codes.</summary>
    private static string StrftimeNow(string format)
    {
        var now = DateTime.Now;
        var sb = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 == format.Length)
            {
                sb.Append(format[i]);
                continue;
            }
            char c = format[++i];
            sb.Append(c switch
            {
                'd' => now.ToString("dd", CultureInfo.InvariantCulture),
                'm' => now.ToString("MM", CultureInfo.InvariantCulture),
                'Y' => now.ToString("yyyy", CultureInfo.InvariantCulture),
                'y' => now.ToString("yy", CultureInfo.InvariantCulture),
                'b' => now.ToString("MMM", CultureInfo.InvariantCulture),
                'B' => now.ToString("MMMM", CultureInfo.InvariantCulture),
                'a' => now.ToString("ddd", CultureInfo.InvariantCulture),
                'A' => now.ToString("dddd", CultureInfo.InvariantCulture),
                'H' => now.ToString("HH", CultureInfo.InvariantCulture),
                'M' => now.ToString("mm", CultureInfo.InvariantCulture),
                'S' => now.ToString("ss", CultureInfo.InvariantCulture),
                'j' => now.DayOfYear.ToString("000", CultureInfo.InvariantCulture),
                '%' => "%",
                _ => throw new JinjaError($"strftime_now: unsupported format code '%{c}'"),
            });
        }
        return sb.ToString();
    }

    // ---- attribute and item access ----------------------------------------------------------------

    public static object? GetAttribute(object? target, string name)
    {
        switch (target)
        {
            case Undefined u:
                throw new JinjaError(u.Hint);
            case Namespace ns:
                return ns.Attributes.TryGetValue(name, out var v) ? v : new Undefined($"'Namespace' object has no attribute '{name}'");
            case LoopContext loop:
                return loop.Attribute(name);
        }
        if (Method(target, name) is { } method) return method;
        if (target is OrderedDictionary<string, object?> d && d.TryGetValue(name, out var item)) return item;
        return new Undefined($"'{Py.TypeName(target)} object' has no attribute '{name}'");
    }

    public static object? GetItem(object? target, object? key)
    {
        switch (target)
        {
            case Undefined u:
                throw new JinjaError(u.Hint);
            case OrderedDictionary<string, object?> d:
                if (key is string k && d.TryGetValue(k, out var v)) return v;
                break;
            case string s when key is long or bool:
            {
                long i = Py.ToLong(key);
                if (!Py.HasSurrogates(s))
                {
                    if (i < 0) i += s.Length;
                    if (i >= 0 && i < s.Length) return s[(int)i].ToString();
                }
                else
                {
                    int[] points = Py.CodePoints(s);
                    if (i < 0) i += points.Length;
                    if (i >= 0 && i < points.Length) return char.ConvertFromUtf32(points[(int)i]);
                }
                return new Undefined($"str object has no element {Py.Repr(key)}");
            }
            case List<object?> or PyTuple when key is long or bool:
            {
                var seq = target is PyTuple t ? t.Items : (IReadOnlyList<object?>)target;
                long i = Py.ToLong(key);
                if (i < 0) i += seq.Count;
                if (i >= 0 && i < seq.Count) return seq[(int)i];
                return new Undefined($"{Py.TypeName(target)} object has no element {Py.Repr(key)}");
            }
            case Namespace or LoopContext when key is string name:
                return GetAttribute(target, name);
        }
        if (key is string attr && Method(target, attr) is { } method) return method;
        return new Undefined($"'{Py.TypeName(target)} object' has no attribute {Py.Repr(key)}");
    }

    /// <summary>Python slicing <c>seq[start:stop:step]</c> of lists, tuples and strings.</summary>
    public static object? Slice(object? target, long? start, long? stop, long? step)
    {
        if (target is Undefined u) throw new JinjaError(u.Hint);
        int[]? points = target is string str && Py.HasSurrogates(str) ? Py.CodePoints(str) : null;
        string? text = target as string;
        IReadOnlyList<object?>? seq = target switch
        {
            List<object?> l => l,
            PyTuple t => t.Items,
            string => null,
            _ => throw new JinjaError($"'{Py.TypeName(target)}' object is not subscriptable"),
        };
        long n = points?.Length ?? text?.Length ?? seq!.Count, st = step ?? 1;
        if (st == 0) throw new JinjaError("slice step cannot be zero");
        long Clamp(long? v, long dflt, long lo, long hi)
        {
            if (v is null) return dflt;
            long x = v.Value < 0 ? v.Value + n : v.Value;
            return Math.Clamp(x, lo, hi);
        }
        var indices = new List<int>();
        if (st > 0)
        {
            long a = Clamp(start, 0, 0, n), b = Clamp(stop, n, 0, n);
            if (st == 1 && text is not null && points is null) return text[(int)a..(int)Math.Max(a, b)];
            for (long i = a; i < b; i += st) indices.Add((int)i);
        }
        else
        {
            long a = Clamp(start, n - 1, -1, n - 1), b = Clamp(stop, -1, -1, n - 1);
            for (long i = a; i > b; i += st) indices.Add((int)i);
        }
        Budget.Current.Step(indices.Count);
        if (points is not null) return string.Concat(indices.Select(i => char.ConvertFromUtf32(points[i])));
        if (text is not null) return string.Concat(indices.Select(i => text[i]));
        var picked = indices.Select(i => seq![i]).ToList();
        return target is PyTuple ? new PyTuple([.. picked]) : picked;
    }

    // ---- operators --------------------------------------------------------------------------------

    public static object? Binary(string op, object? a, object? b)
    {
        var budget = Budget.Current;
        if (op == "~")
        {
            string x = Py.Str(a), y = Py.Str(b);
            budget.Text((long)x.Length + y.Length);
            return x + y;
        }
        if (a is Undefined ua) throw new JinjaError(ua.Hint);
        if (b is Undefined ub) throw new JinjaError(ub.Hint);
        switch (op)
        {
            case "+":
                if (a is string sa && b is string sb)
                {
                    budget.Text((long)sa.Length + sb.Length);
                    return sa + sb;
                }
                if (a is List<object?> la && b is List<object?> lb)
                {
                    budget.Items((long)la.Count + lb.Count);
                    return la.Concat(lb).ToList();
                }
                if (a is PyTuple ta && b is PyTuple tb)
                {
                    budget.Items((long)ta.Items.Length + tb.Items.Length, "a tuple");
                    return new PyTuple([.. ta.Items, .. tb.Items]);
                }
                break;
            case "*":
                if (a is string s1 && b is long or bool) return Repeat(s1, Py.ToLong(b));
                if (b is string s2 && a is long or bool) return Repeat(s2, Py.ToLong(a));
                if (a is List<object?> l1 && b is long or bool) return RepeatList(l1, Py.ToLong(b));
                if (b is List<object?> l2 && a is long or bool) return RepeatList(l2, Py.ToLong(a));
                if (a is PyTuple t1 && b is long or bool) return new PyTuple([.. RepeatList(t1.Items, Py.ToLong(b))]);
                if (b is PyTuple t2 && a is long or bool) return new PyTuple([.. RepeatList(t2.Items, Py.ToLong(a))]);
                break;
            case "%":
                if (a is string fmt) return PercentFormat(fmt, b);
                break;
        }
        if (!Py.IsNumber(a) || !Py.IsNumber(b))
            throw new JinjaError($"unsupported operand type(s) for {op}: '{Py.TypeName(a)}' and '{Py.TypeName(b)}'");
        bool integers = a is not double && b is not double;
        switch (op)
        {
            case "+": return integers ? Integer(op, a, b, (System.Numerics.BigInteger)Py.ToLong(a) + Py.ToLong(b)) : (object)(Py.ToDouble(a) + Py.ToDouble(b));
            case "-": return integers ? Integer(op, a, b, (System.Numerics.BigInteger)Py.ToLong(a) - Py.ToLong(b)) : (object)(Py.ToDouble(a) - Py.ToDouble(b));
            case "*": return integers ? Integer(op, a, b, (System.Numerics.BigInteger)Py.ToLong(a) * Py.ToLong(b)) : (object)(Py.ToDouble(a) * Py.ToDouble(b));
            case "/":
                if (Py.ToDouble(b) == 0) throw new JinjaError("division by zero");
                return Py.ToDouble(a) / Py.ToDouble(b);
            case "//":
                if (Py.ToDouble(b) == 0) throw new JinjaError("integer division or modulo by zero");
                if (integers)
                {
                    long x = Py.ToLong(a), y = Py.ToLong(b);
                    if (x == long.MinValue && y == -1) return Integer(op, a, b, -(System.Numerics.BigInteger)x);
                    long q = x / y;
                    return (x % y != 0 && (x < 0) != (y < 0)) ? q - 1 : q;
                }
                return Math.Floor(Py.ToDouble(a) / Py.ToDouble(b));
            case "%":
                if (Py.ToDouble(b) == 0) throw new JinjaError("integer division or modulo by zero");
                if (integers)
                {
                    long x = Py.ToLong(a), y = Py.ToLong(b);
                    if (y == -1) return 0L;
                    long r = x % y;
                    return r != 0 && (r < 0) != (y < 0) ? r + y : r;
                }
                {
                    double x = Py.ToDouble(a), y = Py.ToDouble(b), r = x % y;
                    return r != 0 && (r < 0) != (y < 0) ? r + y : r;
                }
            case "**":
                if (integers && Py.ToLong(b) >= 0)
                {
                    // |x| ≥ 2 overflows 64 bits from the exponent 64 on: refused before any work.
                    long x = Py.ToLong(a), e = Py.ToLong(b);
                    if (x is 0 or 1) return e == 0 ? 1L : x;
                    if (x == -1) return e % 2 == 0 ? 1L : -1L;
                    var result = e < 64 ? System.Numerics.BigInteger.Pow(x, (int)e) : (System.Numerics.BigInteger)long.MaxValue + 1;
                    return Integer(op, a, b, result);
                }
                return Math.Pow(Py.ToDouble(a), Py.ToDouble(b));
        }
        throw new JinjaError($"unknown operator '{op}'");
    }

    /// <summary>
    /// An integer result as Python computes it, if it fits 64 bits. Python's integers are unbounded and irr's are
    /// 64-bit: a result outside that range is refused by name (never wrapped).
    /// </summary>
    private static long Integer(string op, object? a, object? b, System.Numerics.BigInteger result) =>
        result >= long.MinValue && result <= long.MaxValue ? (long)result
        : throw new JinjaError($"integer overflow: {Py.Repr(a)} {op} {Py.Repr(b)} does not fit in 64 bits (the templates' integers are 64-bit)");

    /// <summary><c>str * n</c>: its length checked against the limit before it is made.</summary>
    private static string Repeat(string s, long n)
    {
        if (n <= 0 || s.Length == 0) return "";
        Budget.Current.Text(Budget.Times(s.Length, n));
        // Filled by doubling copies: a few memory copies, whatever the count.
        return string.Create((int)(s.Length * n), s, (span, unit) =>
        {
            unit.AsSpan().CopyTo(span);
            for (int filled = unit.Length; filled < span.Length; filled *= 2)
                span[..Math.Min(filled, span.Length - filled)].CopyTo(span[filled..]);
        });
    }

    /// <summary><c>list * n</c>: its length checked against the limit before it is made.</summary>
    private static List<object?> RepeatList(IReadOnlyList<object?> items, long n)
    {
        if (n <= 0 || items.Count == 0) return [];
        Budget.Current.Items(Budget.Times(items.Count, n));
        var result = new List<object?>((int)(items.Count * n));
        for (long i = 0; i < n; i++) result.AddRange(items);
        return result;
    }

    /// <summary>Python's <c>"…%s…" % value</c> for %s, %d, %r and %%.</summary>
    private static string PercentFormat(string fmt, object? args)
    {
        var values = args is PyTuple t ? t.Items : [args];
        var sb = new StringBuilder();
        int k = 0;
        for (int i = 0; i < fmt.Length; i++)
        {
            if (fmt[i] != '%') { sb.Append(fmt[i]); continue; }
            Budget.Current.CheckChars(sb.Length);
            if (++i >= fmt.Length) throw new JinjaError("incomplete format");
            char c = fmt[i];
            if (c == '%') { sb.Append('%'); continue; }
            if (k >= values.Length) throw new JinjaError("not enough arguments for format string");
            var v = values[k++];
            sb.Append(c switch
            {
                's' => Py.Str(v),
                'r' => Py.Repr(v),
                'd' or 'i' => Py.ToLong(v is double d ? Py.Truncate(d) : v).ToString(CultureInfo.InvariantCulture),
                _ => throw new JinjaError($"unsupported format character '{c}'"),
            });
        }
        if (k < values.Length) throw new JinjaError("not all arguments converted during string formatting");
        Budget.Current.Text(sb.Length);
        return sb.ToString();
    }

    public static bool Compare(string op, object? a, object? b) => op switch
    {
        "==" => Py.Equal(a, b),
        "!=" => !Py.Equal(a, b),
        "<" => Py.Compare(a, b, op) < 0,
        "<=" => Py.Compare(a, b, op) <= 0,
        ">" => Py.Compare(a, b, op) > 0,
        ">=" => Py.Compare(a, b, op) >= 0,
        "in" => Py.Contains(b, a),
        "not in" => !Py.Contains(b, a),
        _ => throw new JinjaError($"unknown comparison '{op}'"),
    };

    // ---- tests ------------------------------------------------------------------------------------

    private static readonly HashSet<string> Tests =
    [
        "defined", "undefined", "none", "string", "number", "integer", "float", "boolean", "true", "false", "mapping",
        "iterable", "sequence", "callable", "equalto", "eq", "==", "ne", "!=", "lt", "<", "le", "<=", "gt", ">", "ge", ">=",
        "in", "odd", "even", "divisibleby", "sameas", "lower", "upper",
    ];

    public static bool HasTest(string name) => Tests.Contains(name);

    public static bool ApplyTest(string name, object? v, List<object?> args)
    {
        object? Arg(int i) => i < args.Count ? args[i] : throw new JinjaError($"test '{name}' needs an argument");
        return name switch
        {
            "defined" => v is not Undefined,
            "undefined" => v is Undefined,
            "none" => v is null,
            "string" => v is string,
            "number" => v is long or double or bool,
            "integer" => v is long,
            "float" => v is double,
            "boolean" => v is bool,
            "true" => v is true,
            "false" => v is false,
            "mapping" => v is OrderedDictionary<string, object?>,
            "iterable" => v is string or List<object?> or PyTuple or OrderedDictionary<string, object?> or Undefined,
            "sequence" => v is string or List<object?> or PyTuple or OrderedDictionary<string, object?>,
            "callable" => v is Callable,
            "equalto" or "eq" or "==" => Py.Equal(v, Arg(0)),
            "ne" or "!=" => !Py.Equal(v, Arg(0)),
            "lt" or "<" => Py.Compare(v, Arg(0), "<") < 0,
            "le" or "<=" => Py.Compare(v, Arg(0), "<=") <= 0,
            "gt" or ">" => Py.Compare(v, Arg(0), ">") > 0,
            "ge" or ">=" => Py.Compare(v, Arg(0), ">=") >= 0,
            "in" => Py.Contains(Arg(0), v),
            "odd" => Py.ToLong(v) % 2 != 0,
            "even" => Py.ToLong(v) % 2 == 0,
            "divisibleby" => Py.ToLong(v) % Py.ToLong(Arg(0)) == 0,
            "sameas" => v is null ? Arg(0) is null : v is bool b ? Arg(0) is bool c && b == c : ReferenceEquals(v, Arg(0)),
            "lower" => v is string s && s == s.ToLowerInvariant(),
            "upper" => v is string s2 && s2 == s2.ToUpperInvariant(),
            _ => throw new JinjaError($"unsupported test '{name}'"),
        };
    }
}
