using Irr.IO;

namespace Irr.Realign;

/// <summary>The target modules M of IRR: names of linear layers inside each decoder layer.</summary>
public static class TargetModules
{
    /// <summary>Every linear module name of any family, in the order of the forward pass ("all": resolved per model by <see cref="For"/>).</summary>
    public static IReadOnlyList<string> All => ModelConfig.KnownLinearModules;

    /// <summary>
    /// The modules of <paramref name="config"/>'s family that <paramref name="modules"/> names: all of them for "all"
    /// (<see cref="All"/>), else the named ones, each of which must be a linear module of that family.
    /// </summary>
    /// <exception cref="IrrException">A named module the family does not have (e.g. q_proj on Phi-3, whose attention is one qkv_proj).</exception>
    public static IReadOnlyList<string> For(ModelConfig config, IReadOnlyList<string> modules)
    {
        if (ReferenceEquals(modules, All) || modules.SequenceEqual(All)) return config.LinearModules;
        foreach (string m in modules)
            if (!config.LinearModules.Contains(m))
                throw new IrrException($"{config.Source}: modules: '{m}' is not a linear module of {config.ModelType} (its modules: {string.Join(", ", config.LinearModules)})");
        return modules;
    }

    /// <summary>"all" or a comma-separated list such as "q_proj,v_proj" (validated, in forward order).</summary>
    public static IReadOnlyList<string> Parse(string? text)
    {
        if (text is null || text.Trim() is "all" or "all-linear") return All; // PEFT's target_modules="all-linear"
        var names = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (string n in names)
            if (!All.Contains(n)) throw new IrrException($"modules: '{n}' is not one of {string.Join(", ", All)} (or 'all')");
        if (names.Length == 0) throw new IrrException("modules is empty");
        return All.Where(names.Contains).ToArray();
    }

    /// <summary>The parser of a modules option (<c>--modules q_proj,v_proj</c>, a YAML list, or all): TargetModules.Parse.</summary>
    public sealed class OptionParser : Jobs.IOptionParser
    {
        /// <inheritdoc/>
        public object? Parse(IReadOnlyList<string> values, string key) => TargetModules.Parse(string.Join(",", values));
    }

    /// <summary>Every target weight name of a model, layer by layer (<paramref name="modules"/> resolved for its family by <see cref="For"/>).</summary>
    /// <exception cref="IrrException">A named module the family does not have.</exception>
    public static IEnumerable<string> WeightNames(ModelConfig config, IReadOnlyList<string> modules)
    {
        var resolved = For(config, modules);
        return Enumerable.Range(0, config.NumHiddenLayers).SelectMany(l => resolved.Select(m => ModelConfig.LinearWeightName(l, m)));
    }

    /// <summary>The layer and module of a target weight name.</summary>
    public static (int Layer, string Module) Parse(ModelConfig config, string weightName)
    {
        foreach (int l in Enumerable.Range(0, config.NumHiddenLayers))
            foreach (string m in config.LinearModules)
                if (ModelConfig.LinearWeightName(l, m) == weightName) return (l, m);
        throw new ArgumentException($"'{weightName}' is not a linear weight.", nameof(weightName));
    }
}
