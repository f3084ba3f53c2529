namespace Irr.Jobs;

/// <summary>A step that depends on another: it reads <see cref="Path"/>, which <see cref="Producer"/> writes.</summary>
/// <param name="Producer">The index of the step it depends on (recipe order).</param>
/// <param name="Via">The option through which it reads that step's output.</param>
/// <param name="Path">The path it reads.</param>
internal sealed record StepDependency(int Producer, RecipeOption Via, string Path);

/// <summary>A recipe step with everything resolved: full paths, its output, the inputs wired from earlier steps, what it depends on.</summary>
internal sealed record PlannedStep
{
    /// <summary>The step as the recipe wrote it.</summary>
    public required RecipeStep Step { get; init; }

    /// <summary>Its command's spec (<see cref="StepSpec.All"/>).</summary>
    public required StepSpec Spec { get; init; }

    /// <summary>Its position in the recipe (0-based).</summary>
    public required int Index { get; init; }

    /// <summary>
    /// Its options as the command gets them: the recipe's, with paths made full, plus the default output and the
    /// wired inputs when the recipe omits them (these carry the step's line).
    /// </summary>
    public required IReadOnlyList<RecipeOption> Options { get; init; }

    /// <summary>What it writes (full path), or null when it writes nothing (a dry run).</summary>
    public required string? Output { get; init; }

    /// <summary>The files and directories it reads (full paths): hashed into run.json.</summary>
    public required IReadOnlyList<string> Inputs { get; init; }

    /// <summary>The steps whose output it reads.</summary>
    public required IReadOnlyList<StepDependency> DependsOn { get; init; }

    /// <summary>For each wired key, the ids of the steps it was wired from.</summary>
    public required IReadOnlyDictionary<string, IReadOnlyList<string>> Wired { get; init; }

    /// <summary>The step's id.</summary>
    public string Id => Step.Id;

    /// <summary>The step's command.</summary>
    public string Command => Step.Command;
}

/// <summary>
/// The steps of a recipe as a graph (<c>irr run</c>): each step's paths resolved against the recipe's directory, its
/// default output (<c>OUTPUT/&lt;step-id&gt;</c>), its omitted inputs wired from the latest earlier step that produces them
/// (<see cref="StepSpec.All"/>), its dependencies, and an order that runs every step after the steps it reads from.
/// Nothing is touched but the existence of input paths.
/// </summary>
internal sealed class StepGraph
{
    private StepGraph(Recipe recipe, IReadOnlyList<PlannedStep> steps, IReadOnlyList<PlannedStep> order)
    {
        Recipe = recipe;
        Steps = steps;
        Order = order;
    }

    /// <summary>The recipe.</summary>
    public Recipe Recipe { get; }

    /// <summary>The steps in recipe order.</summary>
    public IReadOnlyList<PlannedStep> Steps { get; }

    /// <summary>The steps in the order they run: recipe order, except that a step runs after every step it reads from.</summary>
    public IReadOnlyList<PlannedStep> Order { get; }

    /// <summary>The step with this id, or null.</summary>
    public PlannedStep? Find(string id) => Steps.FirstOrDefault(s => s.Id == id);

    /// <summary>Resolves, wires and orders the steps of <paramref name="recipe"/>.</summary>
    /// <exception cref="IrrException">
    /// An unknown command, a missing input (neither given, nor wireable), an input that does not exist and that no step
    /// writes, two steps writing one output, or a cycle; the message names the recipe and line.
    /// </exception>
    public static StepGraph Plan(Recipe recipe)
    {
        var steps = new List<PlannedStep>();
        foreach (var step in recipe.Steps) steps.Add(Wire(recipe, step, steps));
        CheckOutputs(recipe, steps);
        steps = steps.Select(s => WithHubIds(recipe, s, steps)).ToList();
        steps = steps.Select(s => s with { DependsOn = Dependencies(recipe, s, steps) }).ToList();
        return new StepGraph(recipe, steps, Sort(recipe, steps));
    }

    private static PlannedStep Wire(Recipe recipe, RecipeStep step, IReadOnlyList<PlannedStep> earlier)
    {
        var spec = StepSpec.Of(recipe, step);
        var options = step.Options
            .Select(o => spec.PathOf(o.Key) is not null || o.Key == StepSpec.OutputKey ? o with { Values = o.Values.Select(recipe.Resolve).ToList() } : o)
            .ToList();
        string? output = null;
        if (spec.NoOutputWith is null || !step.Flag(spec.NoOutputWith))
        {
            output = options.FirstOrDefault(o => o.Key == StepSpec.OutputKey)?.Values.FirstOrDefault();
            if (output is null)
            {
                output = Path.Combine(recipe.Output, step.Id + spec.DefaultOutputExtension(options));
                options.Add(new RecipeOption(StepSpec.OutputKey, [output], false, step.Line));
            }
        }

        var wired = new Dictionary<string, IReadOnlyList<string>>();
        foreach (var path in spec.Paths)
        {
            if (path.From is not { } kind || step.Find(path.Key) is not null || (path.NotNeededWith is { } other && step.Find(other) is not null)) continue;
            var producers = earlier.Where(p => p.Output is not null && p.Spec.ProducedBy(p.Step) == kind).ToList();
            if (producers.Count == 0)
                throw recipe.Error(step.Line, $"{step.Command}: missing input '{path.Key}': give it, or add an earlier step that writes it ({Producers(kind)})");
            var chosen = path.Many ? producers : [producers[^1]];
            options.Add(new RecipeOption(path.Key, chosen.Select(p => p.Spec.ArtifactPath(p.Output!)).Distinct().ToList(), path.Many, step.Line));
            wired[path.Key] = chosen.Select(p => p.Id).ToList();
        }
        return new PlannedStep
        {
            Step = step,
            Spec = spec,
            Index = earlier.Count,
            Options = options,
            Output = output,
            Inputs = options.Where(o => spec.PathOf(o.Key)?.IsInput == true).SelectMany(o => o.Values).Distinct().ToList(),
            DependsOn = [],
            Wired = wired,
        };
    }

    // A Hub repo "org/name[@revision]" or an hf:// file, given to an option that takes one, stays as given (the command
    // resolves it) unless the recipe's directory holds that path or a step writes it: as transformers, a local path wins.
    private static PlannedStep WithHubIds(Recipe recipe, PlannedStep step, List<PlannedStep> steps)
    {
        var options = step.Options.Select(o =>
        {
            if (step.Step.Find(o.Key) is not { } given || given.Values.Count != o.Values.Count) return o; // wired, or not a path
            var values = o.Values.Zip(given.Values, (resolved, text) =>
                !File.Exists(resolved) && !Directory.Exists(resolved) && !steps.Any(p => p.Output is not null && SameOrInside(resolved, p.Output))
                && step.Spec.IsRemote(o.Key, text, recipe.Directory) ? text : resolved).ToList();
            return o with { Values = values };
        }).ToList();
        return step with { Options = options, Inputs = step.Inputs.Where(i => options.Any(o => o.Values.Contains(i))).ToList() };
    }

    /// <summary>Whether a planned input is a Hub repo or file kept as given (every path of a plan is a full path).</summary>
    public static bool IsHub(string value) => !Path.IsPathRooted(value);

    // The commands that produce a kind, from the table: "realign or train with full".
    private static string Producers(ArtifactKind kind) => string.Join(" or ", StepSpec.All.Where(s => s.Produces == kind)
        .Select(s => s.ProducesOnlyWith is null ? s.Command : $"{s.Command} with {s.ProducesOnlyWith}"));

    private static void CheckOutputs(Recipe recipe, List<PlannedStep> steps)
    {
        foreach (var step in steps.Where(s => s.Output is not null))
        {
            var first = steps.First(s => s.Output is not null && SamePath(s.Output, step.Output!));
            if (first != step && !(first.Spec.SharesOutput && step.Spec.SharesOutput))
                throw recipe.Error(LineOf(step, StepSpec.OutputKey), $"{step.Command}: the output {step.Output} is also the output of {first.Id} (line {first.Step.Line})");
        }
    }

    // The steps whose output each input is or lies in (a wired input has one; a given one needs one, or must exist).
    private static List<StepDependency> Dependencies(Recipe recipe, PlannedStep step, List<PlannedStep> steps)
    {
        var dependencies = new List<StepDependency>();
        foreach (var option in step.Options.Where(o => step.Spec.PathOf(o.Key)?.IsInput == true))
        {
            foreach (string value in option.Values)
            {
                var producers = steps.Where(p => p.Output is not null && SameOrInside(value, p.Output)).ToList();
                if (producers.Contains(step))
                    throw recipe.Error(option.Line, $"{step.Command}: {option.Key} {value} is this step's own output (a cycle)");
                if (producers.Count == 0 && !File.Exists(value) && !Directory.Exists(value) && !IsHub(value))
                    throw recipe.Error(option.Line, $"{step.Command}: {option.Key} {value}: no such file or directory, and no step writes it");
                dependencies.AddRange(producers.Select(p => new StepDependency(p.Index, option, value)));
            }
        }
        return dependencies;
    }

    // Recipe order, except that a step waits for the steps it reads from (a stable topological sort).
    private static List<PlannedStep> Sort(Recipe recipe, List<PlannedStep> steps)
    {
        var placed = new bool[steps.Count];
        var order = new List<PlannedStep>();
        while (order.Count < steps.Count)
        {
            var next = steps.FirstOrDefault(s => !placed[s.Index] && s.DependsOn.All(d => placed[d.Producer]));
            if (next is null) throw Cycle(recipe, steps, placed);
            placed[next.Index] = true;
            order.Add(next);
        }
        return order;
    }

    // Walks unplaced dependencies from the first unplaced step until a step repeats, and names the edge to a later step.
    private static IrrException Cycle(Recipe recipe, List<PlannedStep> steps, bool[] placed)
    {
        var path = new List<int> { Array.IndexOf(placed, false) };
        while (true)
        {
            int next = steps[path[^1]].DependsOn.First(d => !placed[d.Producer]).Producer;
            int seen = path.IndexOf(next);
            path.Add(next);
            if (seen >= 0)
            {
                path = path[seen..];
                break;
            }
        }
        int at = Enumerable.Range(0, path.Count - 1).First(i => path[i + 1] > path[i]);
        var (reader, writer) = (steps[path[at]], steps[path[at + 1]]);
        var edge = reader.DependsOn.First(d => d.Producer == writer.Index);
        string cycle = string.Join(" → ", path.Select(i => steps[i].Id));
        return recipe.Error(edge.Via.Line,
            $"{reader.Command}: {edge.Via.Key} {edge.Path} is written by {writer.Id} (line {writer.Step.Line}), a later step that depends on this one (cycle: {cycle})");
    }

    private static int LineOf(PlannedStep step, string key) => step.Step.Find(key)?.Line ?? step.Step.Line;

    private static string Trim(string path) => path.Length > 1 ? path.TrimEnd(Path.DirectorySeparatorChar) : path;

    private static bool SamePath(string a, string b) => string.Equals(Trim(a), Trim(b), StringComparison.Ordinal);

    /// <summary>Whether <paramref name="path"/> is <paramref name="output"/> or lies inside it (full paths).</summary>
    public static bool SameOrInside(string path, string output) =>
        SamePath(path, output) || Trim(path).StartsWith(Trim(output) + Path.DirectorySeparatorChar, StringComparison.Ordinal);
}
