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
            Warnings.Current?.Flush(); // what checking said (a Hub input read from the cache while the Hub is down …), before the steps
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
        var steps = graph.Order.Select(s => RecipeSteps.Check(recipe, s, RecipeSteps.SchemaOf(s.Command)!)).ToList();
        RecipeSteps.CheckBetween(recipe, graph, steps);
        return steps;
    }

    // The step with each key spelled as its option's long name, checked against its job's schema; an option of the command
    // line that is not the job's (the sweep's --list-points) is refused with its reason.
    private static RecipeStep Canonical(Recipe recipe, Command root, RecipeStep step)
    {
        StepSpec.Of(recipe, step); // an unknown command, named with the commands a recipe can run
        var command = step.Command.Split(' ').Aggregate(root, (parent, word) => parent.Subcommands.Single(c => c.Name == word));
        bool OnCommandLine(string key) => command.Options.Any(o => o is not HelpOption && (o.Name == "--" + key || o.Aliases.Contains("--" + key)));
        return RecipeSteps.Canonical(recipe, step, RecipeSteps.SchemaOf(step.Command)!,
            key => OnCommandLine(key) ? NotInRecipes.GetValueOrDefault(key, "is an option of the command line only") : null);
    }

    // Options of a command's own that a recipe may not give, and why: what prints instead of running. A job option says so
    // in its declaration (OptionAttribute.CommandLineOnly).
    private static readonly Dictionary<string, string> NotInRecipes = new(StringComparer.Ordinal)
    {
        ["list-points"] = "prints the sweep's units instead of running it; run irr sweep ... --list-points on the command line",
        ["json"] = "applies to list-points, which a recipe cannot give",
    };

    private static int Execute(Recipe recipe, IReadOnlyList<CheckedStep> steps, IReadOnlySet<string> force, InvocationConfiguration io)
    {
        var err = io.Error;
        var ledger = RunLedger.Load(recipe.Output);
        var ids = recipe.Steps.Select(s => s.Id).ToList();
        // Before any step runs: an output that exists, is not the step's own earlier one (run.json) and that the step would
        // refuse, is refused now, not after the hours of the steps before it.
        // The step's output exists and run.json records it as that step's own (what a rerun may replace).
        bool Exists(CheckedStep s) => s.Planned.Output is { } o && (File.Exists(o) || Directory.Exists(o));
        bool Own(CheckedStep s) => ledger.Find(s.Planned.Id)?.Output == s.Planned.Output;
        foreach (var step in steps.Where(s => s.CanOverwrite && Exists(s)))
            if (!Own(step) && !step.Planned.Step.Flag("overwrite"))
                throw recipe.Error(step.Planned.Step.Find("output")?.Line ?? step.Planned.Step.Line,
                    $"{step.Planned.Command}: the output {step.Planned.Output} exists and is not this step's earlier output (choose another output, or give overwrite: true to replace it)");
        var reran = new HashSet<int>();
        for (int k = 0; k < steps.Count; k++)
        {
            var (planned, arguments, _, options) = steps[k];
            bool canOverwrite = steps[k].CanOverwrite;
            string tag = $"[{k + 1}/{steps.Count}] {planned.Id}";
            var hub = RecipeSteps.HubInputs(steps[k]);
            var candidate = new StepRecord
            {
                Id = planned.Id,
                Command = planned.Command,
                Arguments = arguments,
                Options = options,
                Fingerprint = steps[k].Fingerprint,
                Output = planned.Output,
                Inputs = new SortedDictionary<string, string>(ledger.HashInputs(planned.Inputs).Concat(hub.Hashes).ToDictionary(), StringComparer.Ordinal),
                Hub = hub.Commits.Count > 0 ? hub.Commits : null,
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
            // A Hub input runs at the commit the recipe was checked against (and run.json records), even if its branch moves meanwhile.
            var args = arguments.Select(a => RecipeSteps.PinnedToCommit(a, hub.Commits)).ToList();
            // A rerun replaces the step's own earlier output, which the command would otherwise refuse to write over.
            if (canOverwrite && !args.Contains("--overwrite") && Exists(steps[k]) && Own(steps[k]))
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
