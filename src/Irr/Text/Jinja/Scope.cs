namespace Irr.Text.Jinja;

/// <summary>
/// Variables as jinja2 scopes them: the render context at the root, the template's top-level
/// <c>{% set %}</c>s above it, a new scope for each for-loop iteration and macro call (so a <c>set</c> inside a
/// loop reaches neither the next iteration nor the code after the loop), and none for <c>if</c>.
/// </summary>
internal sealed class Scope(Scope? parent)
{
    private readonly Dictionary<string, object?> vars = new(StringComparer.Ordinal);

    public Scope? Parent { get; } = parent;

    public bool TryGet(string name, out object? value)
    {
        for (var s = this; s is not null; s = s.Parent)
            if (s.vars.TryGetValue(name, out value)) return true;
        value = null;
        return false;
    }

    public void Set(string name, object? value) => vars[name] = value;
}
