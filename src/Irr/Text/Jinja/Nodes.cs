using System.Text;

namespace Irr.Text.Jinja;

/// <summary>State of one rendering: the output, the current scope and the depth of for loops.</summary>
internal sealed class RenderContext(Scope scope)
{
    public StringBuilder Output { get; set; } = new();

    /// <summary>
    /// Characters written that cost one step: appending is a copy, and the text written is bounded by the output
    /// limit (what made it was charged already), so it costs less than making text (<see cref="Budget.CharsPerStep"/>).
    /// </summary>
    private const int WriteCharsPerStep = 64;

    /// <summary>Appends rendered text, within the size limit of a string and of the rendered prompt (<see cref="Budget.OutputVariable"/>).</summary>
    public void Write(string text)
    {
        var budget = Budget.Current;
        budget.CheckChars((long)Output.Length + text.Length, "the rendered text");
        budget.Step(1 + text.Length / WriteCharsPerStep);
        Output.Append(text);
    }

    public Scope Scope { get; set; } = scope;

    public int LoopDepth { get; set; }
}

/// <summary>How a list of statements finished: normally, or by <c>{% break %}</c>/<c>{% continue %}</c>.</summary>
internal enum Flow { Normal, Break, Continue }

internal abstract class Expr(int line)
{
    public int Line { get; } = line;

    /// <summary>
    /// Evaluates, one step and one level of nesting deeper (<see cref="Budget"/>), attaching this node's line to an
    /// error that has none yet.
    /// </summary>
    public object? Evaluate(RenderContext ctx)
    {
        var budget = Budget.Current;
        try
        {
            budget.Step();
            budget.Enter();
            try
            {
                return Eval(ctx);
            }
            finally
            {
                budget.Leave();
            }
        }
        catch (JinjaError e) when (!e.Data.Contains("line"))
        {
            e.Data["line"] = Line;
            throw;
        }
    }

    protected abstract object? Eval(RenderContext ctx);
}

internal sealed class Literal(object? value, int line) : Expr(line)
{
    public object? Value { get; } = value;

    protected override object? Eval(RenderContext ctx) => Value;
}

internal sealed class NameExpr(string name, int line) : Expr(line)
{
    public string Name { get; } = name;

    protected override object? Eval(RenderContext ctx) =>
        ctx.Scope.TryGet(Name, out var v) ? v : Builtins.Global(Name) ?? new Undefined($"'{Name}' is undefined");
}

internal sealed class ListExpr(List<Expr> items, int line) : Expr(line)
{
    protected override object? Eval(RenderContext ctx)
    {
        Budget.Current.Items(items.Count);
        return items.Select(i => i.Evaluate(ctx)).ToList();
    }
}

internal sealed class TupleExpr(List<Expr> items, int line) : Expr(line)
{
    public List<Expr> Items { get; } = items;

    protected override object? Eval(RenderContext ctx) => new PyTuple(Items.Select(i => i.Evaluate(ctx)).ToArray());
}

internal sealed class DictExpr(List<(Expr Key, Expr Value)> pairs, int line) : Expr(line)
{
    protected override object? Eval(RenderContext ctx)
    {
        var d = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (k, v) in pairs)
        {
            var key = k.Evaluate(ctx) as string ?? throw new JinjaError("only string keys are supported in dict literals");
            d[key] = v.Evaluate(ctx);
        }
        return d;
    }
}

/// <summary><c>obj.name</c>: jinja2 tries the attribute (methods, namespace and loop attributes), then the item.</summary>
internal sealed class GetAttr(Expr target, string name, int line) : Expr(line)
{
    protected override object? Eval(RenderContext ctx) => Builtins.GetAttribute(target.Evaluate(ctx), name);
}

/// <summary><c>obj[key]</c>: jinja2 tries the item, then (for a string key) the attribute.</summary>
internal sealed class GetItem(Expr target, Expr key, int line) : Expr(line)
{
    protected override object? Eval(RenderContext ctx) => Builtins.GetItem(target.Evaluate(ctx), key.Evaluate(ctx));
}

internal sealed class SliceExpr(Expr target, Expr? start, Expr? stop, Expr? step, int line) : Expr(line)
{
    protected override object? Eval(RenderContext ctx)
    {
        var value = target.Evaluate(ctx);
        long? Bound(Expr? e) => e?.Evaluate(ctx) switch { null => null, var v => Py.ToLong(v) };
        return Builtins.Slice(value, Bound(start), Bound(stop), Bound(step));
    }
}

internal sealed class CallExpr(Expr function, List<Expr> args, List<(string Name, Expr Value)> kwargs, int line) : Expr(line)
{
    protected override object? Eval(RenderContext ctx)
    {
        var f = function.Evaluate(ctx);
        var a = args.Select(x => x.Evaluate(ctx)).ToList();
        var k = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (name, value) in kwargs) k[name] = value.Evaluate(ctx);
        return f switch
        {
            Callable c => Budget.Current.Made(c.Invoke(a, k)),
            Undefined u => throw new JinjaError(u.Hint),
            _ => throw new JinjaError($"'{Py.TypeName(f)}' object is not callable"),
        };
    }
}

internal sealed class FilterExpr(Expr value, string name, List<Expr> args, List<(string Name, Expr Value)> kwargs, int line) : Expr(line)
{
    protected override object? Eval(RenderContext ctx)
    {
        var k = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (n, v) in kwargs) k[n] = v.Evaluate(ctx);
        return Budget.Current.Made(Builtins.ApplyFilter(name, value.Evaluate(ctx), args.Select(x => x.Evaluate(ctx)).ToList(), k));
    }
}

internal sealed class TestExpr(Expr value, string name, List<Expr> args, int line) : Expr(line)
{
    protected override object? Eval(RenderContext ctx) =>
        Builtins.ApplyTest(name, value.Evaluate(ctx), args.Select(x => x.Evaluate(ctx)).ToList());
}

internal sealed class UnaryExpr(string op, Expr operand, int line) : Expr(line)
{
    protected override object? Eval(RenderContext ctx)
    {
        var v = operand.Evaluate(ctx);
        return op switch
        {
            "not" => !Py.Truthy(v),
            "-" => v switch { long l => l == long.MinValue ? throw new JinjaError("integer overflow: -(-9223372036854775808) does not fit in 64 bits (the templates' integers are 64-bit)") : (object)-l, double d => -d, bool b => b ? -1L : 0L, Undefined u => throw new JinjaError(u.Hint), _ => throw new JinjaError($"bad operand type for unary -: '{Py.TypeName(v)}'") },
            _ => v switch { long or double => v, bool b => b ? 1L : 0L, Undefined u => throw new JinjaError(u.Hint), _ => throw new JinjaError($"bad operand type for unary +: '{Py.TypeName(v)}'") },
        };
    }
}

internal sealed class BinaryExpr(string op, Expr left, Expr right, int line) : Expr(line)
{
    protected override object? Eval(RenderContext ctx)
    {
        if (op == "and")
        {
            var l = left.Evaluate(ctx);
            return Py.Truthy(l) ? right.Evaluate(ctx) : l;
        }
        if (op == "or")
        {
            var l = left.Evaluate(ctx);
            return Py.Truthy(l) ? l : right.Evaluate(ctx);
        }
        return Builtins.Binary(op, left.Evaluate(ctx), right.Evaluate(ctx));
    }
}

/// <summary>A comparison chain <c>a &lt; b == c</c>: each link compared, stopping at the first false.</summary>
internal sealed class CompareExpr(Expr first, List<(string Op, Expr Operand)> rest, int line) : Expr(line)
{
    protected override object? Eval(RenderContext ctx)
    {
        var left = first.Evaluate(ctx);
        foreach (var (op, operand) in rest)
        {
            var right = operand.Evaluate(ctx);
            if (!Builtins.Compare(op, left, right)) return false;
            left = right;
        }
        return true;
    }
}

internal sealed class CondExpr(Expr test, Expr then, Expr? otherwise, int line) : Expr(line)
{
    protected override object? Eval(RenderContext ctx) =>
        Py.Truthy(test.Evaluate(ctx)) ? then.Evaluate(ctx)
        : otherwise is null ? new Undefined("the inline if-expression evaluated to false and no else section was defined") : otherwise.Evaluate(ctx);
}

internal abstract class Stmt(int line)
{
    public int Line { get; } = line;

    public abstract Flow Render(RenderContext ctx);

    /// <summary>Renders a block's statements, one level of nesting deeper and one step per statement (<see cref="Budget"/>).</summary>
    public static Flow RenderAll(List<Stmt> body, RenderContext ctx)
    {
        var budget = Budget.Current;
        foreach (var s in body)
        {
            Flow flow;
            try
            {
                budget.Step();
                budget.Enter();
                try
                {
                    flow = s.Render(ctx);
                }
                finally
                {
                    budget.Leave();
                }
            }
            catch (JinjaError e) when (!e.Data.Contains("line"))
            {
                e.Data["line"] = s.Line;
                throw;
            }
            if (flow != Flow.Normal) return flow;
        }
        return Flow.Normal;
    }
}

internal sealed class TextStmt(string text) : Stmt(0)
{
    public override Flow Render(RenderContext ctx)
    {
        ctx.Write(text);
        return Flow.Normal;
    }
}

internal sealed class OutputStmt(Expr expr, int line) : Stmt(line)
{
    public override Flow Render(RenderContext ctx)
    {
        ctx.Write(Py.Str(expr.Evaluate(ctx)));
        return Flow.Normal;
    }
}

internal sealed class IfStmt(List<(Expr Test, List<Stmt> Body)> branches, List<Stmt>? otherwise, int line) : Stmt(line)
{
    public override Flow Render(RenderContext ctx)
    {
        foreach (var (test, body) in branches)
            if (Py.Truthy(test.Evaluate(ctx))) return RenderAll(body, ctx);
        return otherwise is null ? Flow.Normal : RenderAll(otherwise, ctx);
    }
}

/// <summary>
/// <c>{% for %}</c> as jinja2 scopes it: each iteration renders in a fresh scope over the enclosing one,
/// so a <c>set</c> in the body is invisible after the loop and to the next iteration (state that must
/// outlive an iteration goes through a <c>namespace()</c>). The <c>else</c> body has a scope of its own too.
/// </summary>
internal sealed class ForStmt(List<string> targets, Expr iterable, Expr? filter, List<Stmt> body, List<Stmt>? otherwise, int line) : Stmt(line)
{
    public override Flow Render(RenderContext ctx)
    {
        var source = iterable.Evaluate(ctx);
        var outer = ctx.Scope;
        try
        {
            var items = Py.Iterate(source).ToList();
            if (filter is not null)
            {
                var kept = new List<object?>();
                foreach (var item in items)
                {
                    Budget.Current.Step();
                    var test = new Scope(outer);
                    Bind(test, item);
                    ctx.Scope = test;
                    if (Py.Truthy(filter.Evaluate(ctx))) kept.Add(item);
                }
                items = kept;
            }
            if (items.Count == 0)
            {
                if (otherwise is null) return Flow.Normal;
                ctx.Scope = new Scope(outer);
                return RenderAll(otherwise, ctx);
            }
            var loop = new LoopContext(items, ctx.LoopDepth);
            ctx.LoopDepth++;
            try
            {
                for (int i = 0; i < items.Count; i++)
                {
                    Budget.Current.Step();
                    loop.Index0 = i;
                    var scope = new Scope(outer);
                    Bind(scope, items[i]);
                    scope.Set("loop", loop);
                    ctx.Scope = scope;
                    if (RenderAll(body, ctx) == Flow.Break) break;
                }
            }
            finally
            {
                ctx.LoopDepth--;
            }
            return Flow.Normal;
        }
        finally
        {
            ctx.Scope = outer;
        }
    }

    private void Bind(Scope scope, object? item)
    {
        if (targets.Count == 1)
        {
            scope.Set(targets[0], item);
            return;
        }
        var parts = Py.Iterate(item);
        if (parts.Count != targets.Count)
            throw new JinjaError($"cannot unpack {parts.Count} values into {targets.Count} loop variables") { Data = { ["line"] = Line } };
        for (int i = 0; i < targets.Count; i++) scope.Set(targets[i], parts[i]);
    }
}

internal sealed class SetStmt(List<string> targets, Expr value, int line) : Stmt(line)
{
    public override Flow Render(RenderContext ctx)
    {
        var v = value.Evaluate(ctx);
        if (targets.Count == 1) ctx.Scope.Set(targets[0], v);
        else
        {
            var parts = Py.Iterate(v);
            if (parts.Count != targets.Count)
                throw new JinjaError($"cannot unpack {parts.Count} values into {targets.Count} names") { Data = { ["line"] = Line } };
            for (int i = 0; i < targets.Count; i++) ctx.Scope.Set(targets[i], parts[i]);
        }
        return Flow.Normal;
    }
}

/// <summary><c>{% set ns.attr = value %}</c>: only namespace objects can be assigned attributes.</summary>
internal sealed class SetAttrStmt(string target, string attribute, Expr value, int line) : Stmt(line)
{
    public override Flow Render(RenderContext ctx)
    {
        var v = value.Evaluate(ctx);
        if (!ctx.Scope.TryGet(target, out var ns) || ns is not Namespace n)
            throw new JinjaError($"cannot assign attribute on non-namespace object '{target}'") { Data = { ["line"] = Line } };
        n.Attributes[attribute] = v;
        return Flow.Normal;
    }
}

/// <summary><c>{% set name %}…{% endset %}</c>: the rendered body is assigned.</summary>
internal sealed class SetBlockStmt(string target, List<Stmt> body, int line) : Stmt(line)
{
    public override Flow Render(RenderContext ctx)
    {
        var saved = ctx.Output;
        ctx.Output = new StringBuilder();
        try
        {
            RenderAll(body, ctx);
            ctx.Scope.Set(target, Budget.Current.Made(ctx.Output.ToString()));
        }
        finally
        {
            ctx.Output = saved;
        }
        return Flow.Normal;
    }
}

internal sealed class LoopControlStmt(Flow flow, int line) : Stmt(line)
{
    public override Flow Render(RenderContext ctx) => flow;
}

/// <summary>HF's <c>{% generation %}…{% endgeneration %}</c> marks assistant text; rendering outputs the body.</summary>
internal sealed class BlockStmt(List<Stmt> body, int line) : Stmt(line)
{
    public override Flow Render(RenderContext ctx) => RenderAll(body, ctx);
}

/// <summary><c>{% macro name(a, b=default) %}…{% endmacro %}</c>: a callable that renders its body to a string.</summary>
internal sealed class MacroStmt(string name, List<(string Name, Expr? Default)> parameters, List<Stmt> body, int line) : Stmt(line)
{
    public override Flow Render(RenderContext ctx)
    {
        var definitionScope = ctx.Scope;
        ctx.Scope.Set(name, new Callable(name, (args, kwargs) =>
        {
            if (args.Count > parameters.Count) throw new JinjaError($"macro '{name}' takes not more than {parameters.Count} argument(s)");
            var scope = new Scope(definitionScope);
            var call = new RenderContext(scope);
            for (int i = 0; i < parameters.Count; i++)
            {
                var (p, dflt) = parameters[i];
                object? v = i < args.Count ? args[i]
                    : kwargs.Remove(p, out var kv) ? kv
                    : dflt is not null ? dflt.Evaluate(call)
                    : new Undefined($"parameter '{p}' was not provided");
                scope.Set(p, v);
            }
            if (kwargs.Count > 0) throw new JinjaError($"macro '{name}' takes no keyword argument '{kwargs.Keys.First()}'");
            RenderAll(body, call);
            return call.Output.ToString();
        }));
        return Flow.Normal;
    }
}
