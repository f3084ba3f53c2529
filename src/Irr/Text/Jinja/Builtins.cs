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
        var result = new List<object?>();
        for (long i = start; step > 0 ? i < stop : i > stop; i += step)
        {
            result.Add(i);
            if (result.Count > 10_000_000) throw new JinjaError("range too large");
        }
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
            case List<object?> or PyTuple or string when key is long or bool:
            {
                var seq = target is string s ? Py.Iterate(s) : Py.Iterate(target);
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
        var seq = target switch
        {
            List<object?> or PyTuple or string => Py.Iterate(target),
            _ => throw new JinjaError($"'{Py.TypeName(target)}' object is not subscriptable"),
        };
        long n = seq.Count, st = step ?? 1;
        if (st == 0) throw new JinjaError("slice step cannot be zero");
        long Clamp(long? v, long dflt, long lo, long hi)
        {
            if (v is null) return dflt;
            long x = v.Value < 0 ? v.Value + n : v.Value;
            return Math.Clamp(x, lo, hi);
        }
        var picked = new List<object?>();
        if (st > 0)
        {
            long a = Clamp(start, 0, 0, n), b = Clamp(stop, n, 0, n);
            for (long i = a; i < b; i += st) picked.Add(seq[(int)i]);
        }
        else
        {
            long a = Clamp(start, n - 1, -1, n - 1), b = Clamp(stop, -1, -1, n - 1);
            for (long i = a; i > b; i += st) picked.Add(seq[(int)i]);
        }
        return target switch
        {
            string => string.Concat(picked.Cast<string>()),
            PyTuple => new PyTuple(picked.ToArray()),
            _ => picked,
        };
    }

    // ---- operators --------------------------------------------------------------------------------

    public static object? Binary(string op, object? a, object? b)
    {
        if (op == "~") return Py.Str(a) + Py.Str(b);
        if (a is Undefined ua) throw new JinjaError(ua.Hint);
        if (b is Undefined ub) throw new JinjaError(ub.Hint);
        switch (op)
        {
            case "+":
                if (a is string sa && b is string sb) return sa + sb;
                if (a is List<object?> la && b is List<object?> lb) return la.Concat(lb).ToList();
                if (a is PyTuple ta && b is PyTuple tb) return new PyTuple([.. ta.Items, .. tb.Items]);
                break;
            case "*":
                if (a is string s1 && b is long or bool) return Repeat(s1, Py.ToLong(b));
                if (b is string s2 && a is long or bool) return Repeat(s2, Py.ToLong(a));
                if (a is List<object?> l1 && b is long or bool) return Enumerable.Repeat(l1, (int)Math.Max(0, Py.ToLong(b))).SelectMany(x => x).ToList();
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
            case "+": return integers ? Py.ToLong(a) + Py.ToLong(b) : (object)(Py.ToDouble(a) + Py.ToDouble(b));
            case "-": return integers ? Py.ToLong(a) - Py.ToLong(b) : (object)(Py.ToDouble(a) - Py.ToDouble(b));
            case "*": return integers ? Py.ToLong(a) * Py.ToLong(b) : (object)(Py.ToDouble(a) * Py.ToDouble(b));
            case "/":
                if (Py.ToDouble(b) == 0) throw new JinjaError("division by zero");
                return Py.ToDouble(a) / Py.ToDouble(b);
            case "//":
                if (Py.ToDouble(b) == 0) throw new JinjaError("integer division or modulo by zero");
                if (integers)
                {
                    long x = Py.ToLong(a), y = Py.ToLong(b), q = x / y;
                    return (x % y != 0 && (x < 0) != (y < 0)) ? q - 1 : q;
                }
                return Math.Floor(Py.ToDouble(a) / Py.ToDouble(b));
            case "%":
                if (Py.ToDouble(b) == 0) throw new JinjaError("integer division or modulo by zero");
                if (integers)
                {
                    long x = Py.ToLong(a), y = Py.ToLong(b), r = x % y;
                    return r != 0 && (r < 0) != (y < 0) ? r + y : r;
                }
                {
                    double x = Py.ToDouble(a), y = Py.ToDouble(b), r = x % y;
                    return r != 0 && (r < 0) != (y < 0) ? r + y : r;
                }
            case "**":
                if (integers && Py.ToLong(b) >= 0)
                {
                    long result = 1, x = Py.ToLong(a);
                    for (long i = Py.ToLong(b); i > 0; i--) result = checked(result * x);
                    return result;
                }
                return Math.Pow(Py.ToDouble(a), Py.ToDouble(b));
        }
        throw new JinjaError($"unknown operator '{op}'");
    }

    private static string Repeat(string s, long n) => n <= 0 ? "" : new StringBuilder(s.Length * (int)n).Insert(0, s, (int)n).ToString();

    /// <summary>Python's <c>"…%s…" % value</c> for %s, %d, %r and %%.</summary>
    private static string PercentFormat(string fmt, object? args)
    {
        var values = args is PyTuple t ? t.Items : [args];
        var sb = new StringBuilder();
        int k = 0;
        for (int i = 0; i < fmt.Length; i++)
        {
            if (fmt[i] != '%') { sb.Append(fmt[i]); continue; }
            if (++i >= fmt.Length) throw new JinjaError("incomplete format");
            char c = fmt[i];
            if (c == '%') { sb.Append('%'); continue; }
            if (k >= values.Length) throw new JinjaError("not enough arguments for format string");
            var v = values[k++];
            sb.Append(c switch
            {
                's' => Py.Str(v),
                'r' => Py.Repr(v),
                'd' or 'i' => Py.ToLong(v is double d ? (long)Math.Truncate(d) : v).ToString(CultureInfo.InvariantCulture),
                _ => throw new JinjaError($"unsupported format character '{c}'"),
            });
        }
        if (k < values.Length) throw new JinjaError("not all arguments converted during string formatting");
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
