using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Parsing;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Irr.Jobs;
using Irr.Realign;

namespace Irr.Cli;

/// <summary>
/// <c>irr run RECIPE.yaml</c>: runs a recipe's steps, each through its own command exactly as if it were run on its own,
/// after checking every step; skips the steps that are up to date (OUTPUT/run.json). See docs/RECIPES.md.
/// </summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var recipe = new Argument<string>("RECIPE") { Description = "the recipe: a YAML file with an output directory and a list of steps (docs/RECIPES.md)" };
        var force = new Option<string[]>("--force") { HelpName = "STEP", Description = "redo this step (by id, e.g. eval-safety) and the steps that depend on it; repeatable" };
        var command = new Command("run", "Run a recipe: a list of irr steps with their options, inputs wired from earlier steps, " +
            "every step checked before any runs, up-to-date steps skipped (OUTPUT/run.json)")
        {
            recipe, force,
        };
        command.SetAction(parseResult =>
        {
            var theRecipe = Recipe.Load(parseResult.GetValue(recipe)!);
            var steps = Check(theRecipe);
            var forced = parseResult.GetValue(force) ?? [];
            foreach (string id in forced.Where(id => steps.All(s => s.Planned.Id != id)))
                throw new IrrException($"--force {id}: {theRecipe.Path} has no step '{id}' (its steps: {string.Join(", ", theRecipe.Steps.Select(s => s.Id))})");
            return Execute(theRecipe, steps, forced.ToHashSet(StringComparer.Ordinal), parseResult.InvocationConfiguration);
        });
        return command;
    }

    /// <summary>
    /// Checks every step before any runs (<see cref="RecipeSteps"/>): its command and keys, the wiring and the graph
    /// (<see cref="StepGraph"/>), its job bound and validated, and the steps against each other. Returns the steps in run order.
    /// </summary>
    /// <exception cref="IrrException">The first problem, as "RECIPE line N: command: message".</exception>
    internal static List<CheckedStep> Check(Recipe recipe)
    {
        var root = Program.BuildRoot();
        var graph = StepGraph.Plan(recipe.WithSteps(recipe.Steps.Select(s => Canonical(recipe, root, s)).ToList()));
        var steps = graph.Order.Select(s => RecipeSteps.SchemaOf(s.Command) is { } schema ? RecipeSteps.Check(recipe, s, schema) : Legacy(recipe, root, s)).ToList();
        RecipeSteps.CheckBetween(recipe, graph, steps);
        return steps;
    }

    private static RecipeStep Canonical(Recipe recipe, Command root, RecipeStep step)
    {
        var spec = StepSpec.Of(recipe, step);
        var command = CommandOf(root, step.Command);
        if (RecipeSteps.SchemaOf(step.Command) is { } schema)
            return RecipeSteps.Canonical(recipe, step, schema, key => OptionOf(command, key) is null ? null : NotInRecipes.GetValueOrDefault(key, "is an option of the command line only"));
        return LegacyCanonical(recipe, command, spec, step);
    }

    // Options of the command line that are not a job's, and why a recipe may not give them: what prints instead of running.
    private static readonly Dictionary<string, string> NotInRecipes = new(StringComparer.Ordinal)
    {
        ["list-points"] = "prints the sweep's units instead of running it; run irr sweep ... --list-points on the command line",
        ["json"] = "applies to list-points, which a recipe cannot give",
        ["engine-serve"] = "runs a command, and irr never runs a command read from a file; start the server yourself and give engine-url and engine-model, or give engine-serve on the command line",
        ["engine-serve-adapter"] = "runs a command, and irr never runs a command read from a file; start the server yourself and give engine-url and engine-model, or give engine-serve-adapter on the command line",
    };

    private static Command CommandOf(Command root, string command) =>
        command.Split(' ').Aggregate(root, (parent, word) => parent.Subcommands.Single(c => c.Name == word));

    private static IEnumerable<Option> OptionsOf(Command command) => command.Options.Where(o => o is not HelpOption);

    private static Option? OptionOf(Command command, string key) =>
        OptionsOf(command).FirstOrDefault(o => o.Name == "--" + key || o.Aliases.Contains("--" + key) || o.Aliases.Contains("-" + key));

    private static string KeyOf(Option option) => option.Name.TrimStart('-');

    // TRANSITIONAL (issue 25): a command whose options are still written by hand, checked through its parser.
    private static RecipeStep LegacyCanonical(Recipe recipe, Command command, StepSpec spec, RecipeStep step)
    {
        var options = new List<RecipeOption>();
        foreach (var given in step.Options)
        {
            string key = given.Key;
            if (key != spec.Positional)
            {
                var option = OptionOf(command, key)
                    ?? throw recipe.Error(given.Line, $"{step.Command}: unknown option '{key}'{RecipeSteps.Suggestion(key, OptionsOf(command).Select(KeyOf))}");
                key = KeyOf(option);
                if (NotInRecipes.TryGetValue(key, out string? why)) throw recipe.Error(given.Line, $"{step.Command}: {key} {why}");
                if (option.ValueType == typeof(bool) && (given.IsList || !bool.TryParse(given.Values[0], out _)))
                    throw recipe.Error(given.Line, $"{step.Command}: {key} is a flag: true or false");
                if (given.IsList && option.Arity.MaximumNumberOfValues <= 1)
                    throw recipe.Error(given.Line, $"{step.Command}: {key} takes one value, not a list");
            }
            if (options.Any(o => o.Key == key)) throw recipe.Error(given.Line, $"{step.Command}: {key} is given twice");
            options.Add(given with { Key = key });
        }
        return step with { Options = options };
    }

    // TRANSITIONAL (issue 25): the argument vector and job of a command whose options are still written by hand.
    private static CheckedStep Legacy(Recipe recipe, Command root, PlannedStep step)
    {
        var command = CommandOf(root, step.Command);
        var args = step.Command.Split(' ').ToList();
        foreach (var option in step.Options.Where(o => o.Key != step.Spec.Positional))
        {
            if (OptionOf(command, option.Key)!.ValueType == typeof(bool))
            {
                if (option.IsTrue) args.Add("--" + option.Key);
                continue;
            }
            foreach (string value in option.Values) args.AddRange(value.StartsWith('-') ? [$"--{option.Key}={value}"] : ["--" + option.Key, value]);
        }
        var result = root.Parse(args);
        if (result.Errors.Count > 0)
        {
            var error = result.Errors[0];
            string? key = error.SymbolResult is OptionResult o ? KeyOf(o.Option) : null;
            throw recipe.Error((key is null ? null : step.Step.Find(key)?.Line) ?? step.Step.Line, $"{step.Command}: {error.Message}");
        }
        IJob built;
        try
        {
            built = ((JobCommand)command).Build(result);
            built.Validate();
        }
        catch (IrrException e)
        {
            string message = e.Message.StartsWith(step.Command + ": ", StringComparison.Ordinal) ? e.Message : $"{step.Command}: {e.Message}";
            int line = step.Step.Options.FirstOrDefault(o => message.StartsWith($"{step.Command}: {o.Key} ", StringComparison.Ordinal))?.Line ?? step.Step.Line;
            throw recipe.Error(line, message);
        }
        var options = new JsonObject();
        foreach (var option in OptionsOf(command))
            options[KeyOf(option)] = JobSchema.Json(result.GetValue<object>(option.Name) ?? (option.ValueType.IsValueType && Nullable.GetUnderlyingType(option.ValueType) is null ? Activator.CreateInstance(option.ValueType) : null));
        return new CheckedStep(step, args, built, options);
    }

    private static int Execute(Recipe recipe, IReadOnlyList<CheckedStep> steps, IReadOnlySet<string> force, InvocationConfiguration io)
    {
        var err = io.Error;
        var ledger = RunLedger.Load(recipe.Output);
        var ids = recipe.Steps.Select(s => s.Id).ToList();
        var reran = new HashSet<int>();
        for (int k = 0; k < steps.Count; k++)
        {
            var (planned, arguments, _, options) = steps[k];
            bool canOverwrite = steps[k].CanOverwrite;
            string tag = $"[{k + 1}/{steps.Count}] {planned.Id}";
            var candidate = new StepRecord
            {
                Id = planned.Id,
                Command = planned.Command,
                Arguments = arguments,
                Options = options,
                Output = planned.Output,
                Inputs = ledger.HashInputs(planned.Inputs),
                Started = DateTime.UtcNow,
                Seconds = 0,
                Status = RunLedger.Done,
            };
            if (!force.Contains(planned.Id) && !planned.DependsOn.Any(d => reran.Contains(d.Producer)) && ledger.IsUpToDate(candidate))
            {
                ledger.MarkSkipped(planned.Id);
                err.WriteLine($"{tag} … skipped (up to date)");
                continue;
            }
            var args = arguments.ToList();
            // A rerun replaces the step's own earlier output, which the command would otherwise refuse to write over.
            if (canOverwrite && !args.Contains("--overwrite") && planned.Output is { } output && ledger.Find(planned.Id)?.Output == output
                && (File.Exists(output) || Directory.Exists(output)))
                args.Insert(planned.Command.Split(' ').Length, "--overwrite");
            err.WriteLine($"{tag}: irr {string.Join(' ', args.Select(Quote))}");
            var clock = Stopwatch.StartNew();
            int code;
            try
            {
                Interruption.ThrowIfRequested();
                code = Program.Run(Program.BuildRoot(), args.ToArray(), io.Output, err);
            }
            catch (Exception) when (Interruption.Requested)
            {
                // The interrupted step is not recorded; the ones before it are, and a rerun skips them.
                if (k > 0) Interruption.Keep($"kept {k} finished step{(k == 1 ? "" : "s")} of {steps.Count} ({ledger.Path}); run the same command to resume from step {planned.Id}");
                throw;
            }
            double seconds = clock.Elapsed.TotalSeconds;
            ledger.Record(candidate with { Seconds = Math.Round(seconds, 3), Status = code == 0 ? RunLedger.Done : RunLedger.Failed });
            ledger.Save(recipe.Path, ids);
            if (code != 0)
            {
                err.WriteLine($"{tag} … failed (exit code {code})");
                return code;
            }
            reran.Add(planned.Index);
            err.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{tag} … done in {seconds:F1} s"));
        }
        ledger.Save(recipe.Path, ids);
        err.WriteLine($"{reran.Count} of {steps.Count} steps ran, {steps.Count - reran.Count} up to date; {ledger.Path}");
        return 0;
    }

    private static string Quote(string arg) =>
        arg.Length > 0 && !arg.Any(c => char.IsWhiteSpace(c) || c is '\'' or '"' or '\\' or '$' or '`') ? arg : "'" + arg.Replace("'", "'\\''") + "'";
}
