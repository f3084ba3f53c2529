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
    /// <summary>A step as its command sees it: the argument vector (without "irr"), parsed and checked, and every option's value.</summary>
    internal sealed record StepCommand(PlannedStep Planned, IReadOnlyList<string> Arguments, JsonObject Options, bool CanOverwrite)
    {
        /// <summary>The step's job, built and validated (null for a command that is not a job).</summary>
        public IJob? Job { get; init; }
    }

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
    /// Checks every step before any runs: its command and keys, the wiring and the graph (<see cref="StepGraph"/>), its
    /// argument vector parsed by the command, and a job command's job built and validated. Returns the steps in run order.
    /// </summary>
    /// <exception cref="IrrException">The first problem, as "RECIPE line N: command: message".</exception>
    internal static List<StepCommand> Check(Recipe recipe)
    {
        var root = Program.BuildRoot();
        var graph = StepGraph.Plan(recipe.WithSteps(recipe.Steps.Select(s => Canonical(recipe, root, s)).ToList()));
        var steps = graph.Order.Select(s => Parse(recipe, root, s)).ToList();
        foreach (var step in graph.Order) CheckPlannedInputs(recipe, graph, step);
        foreach (var step in steps) CheckPlannedModules(recipe, steps, step);
        return steps;
    }

    // A realign, sweep or baseline step whose safety vector or Fisher an earlier step computes: the models that step
    // names against this step's base and fine-tune (InputChecks.Planned), so a swap stops the run before any step runs.
    private static void CheckPlannedInputs(Recipe recipe, StepGraph graph, PlannedStep step)
    {
        if (step.Command is not ("realign" or "sweep" or "baseline resta" or "baseline safelora")) return;
        string? Value(PlannedStep s, string key) => s.Options.FirstOrDefault(o => o.Key == key) is { Values.Count: 1 } o ? o.Values[0] : null;
        PlannedStep? Producer(string key, string command) =>
            step.DependsOn.Where(d => d.Via.Key == key).Select(d => graph.Steps[d.Producer]).FirstOrDefault(p => p.Command == command);
        if (Value(step, "base") is not { } @base) return;
        var sv = Producer("safety-vector", "safety-vector");
        var fisher = Producer("fisher", "fisher");
        if (sv is null && fisher is null) return;
        try
        {
            InputChecks.Planned(step.Command, @base, Value(step, "finetuned"), Value(step, "adapter"),
                sv is null ? null : Value(step, "safety-vector"), sv is null ? null : Value(sv, "aligned"), sv is null ? null : Value(sv, "unaligned"),
                fisher is null ? null : Value(step, "fisher"), fisher is null ? null : Value(fisher, "model"));
        }
        catch (IrrException e)
        {
            throw recipe.Error(step.Step.Line, e.Message.StartsWith(step.Command + ": ", StringComparison.Ordinal) ? e.Message : $"{step.Command}: {e.Message}");
        }
    }

    // A realign or sweep step whose safety vector or Fisher an earlier step computes: those steps must cover the modules
    // it realigns, or it would fail only when it runs, after the Fisher's hours.
    private static void CheckPlannedModules(Recipe recipe, IReadOnlyList<StepCommand> steps, StepCommand step)
    {
        var realign = step.Job switch { RealignJob r => r, SweepJob s => s.Realign, _ => null };
        if (realign is null) return;
        var producers = new List<(string Key, string Step, int Line, IReadOnlyList<string> Modules)>();
        foreach (var d in step.Planned.DependsOn)
        {
            var producer = steps.Single(s => s.Planned.Index == d.Producer);
            IReadOnlyList<string>? modules = (d.Via.Key, producer.Job) switch
            {
                ("safety-vector", SafetyVectorJob v) => v.Modules,
                ("fisher", FisherJob f) => f.Modules,
                _ => null,
            };
            if (modules is not null) producers.Add((d.Via.Key, producer.Planned.Id, producer.Planned.Step.Line, modules));
        }
        if (producers.Count == 0 || realign.PlannedModules() is not { } realigned) return;
        try
        {
            InputChecks.PlannedModules(step.Planned.Command, realigned, realign.Modules is not null, producers);
        }
        catch (IrrException e)
        {
            throw recipe.Error(step.Planned.Step.Find("modules")?.Line ?? step.Planned.Step.Line, e.Message);
        }
    }

    private static Command CommandOf(Command root, string command) =>
        command.Split(' ').Aggregate(root, (parent, word) => parent.Subcommands.Single(c => c.Name == word));

    private static IEnumerable<Option> OptionsOf(Command command) => command.Options.Where(o => o is not HelpOption);

    private static Option? OptionOf(Command command, string key) =>
        OptionsOf(command).FirstOrDefault(o => o.Name == "--" + key || o.Aliases.Contains("--" + key) || o.Aliases.Contains("-" + key));

    private static bool IsFlag(Option option) => option.ValueType == typeof(bool);

    private static string KeyOf(Option option) => option.Name.TrimStart('-');

    // Options of a command's own that a recipe may not give, and why: what prints instead of running (the sweep's
    // --list-points and --json). A job option says so in its declaration (OptionAttribute.CommandLineOnly).
    private static readonly Dictionary<string, string> NotInRecipes = new(StringComparer.Ordinal)
    {
        ["list-points"] = "prints the sweep's units instead of running it; run irr sweep ... --list-points on the command line",
        ["json"] = "applies to list-points, which a recipe cannot give",
        // TRANSITIONAL (issue 25): the sweep's hand-built engine options, until the sweep holds EngineSettings.
        ["engine-serve"] = Irr.Eval.EngineSettings.ServeCommandLineOnly,
        ["engine-serve-adapter"] = Irr.Eval.EngineSettings.ServeAdapterCommandLineOnly,
    };

    // Why a recipe may not give the option with this key, or null: the job option's declaration says (a command derived
    // from a job's schema), else the command's own options above.
    private static string? CommandLineOnly(Command command, string key) =>
        (command is JobCommand { Schema: not null } job ? job.Schema.Find(key)?.Attribute.CommandLineOnly : null) ?? NotInRecipes.GetValueOrDefault(key);

    // The step with each key spelled as its option's long name (o → output), every key checked against the command.
    private static RecipeStep Canonical(Recipe recipe, Command root, RecipeStep step)
    {
        var spec = StepSpec.Of(recipe, step);
        var command = CommandOf(root, step.Command);
        var options = new List<RecipeOption>();
        foreach (var given in step.Options)
        {
            string key = given.Key;
            if (key != spec.Positional)
            {
                var option = OptionOf(command, key)
                    ?? throw recipe.Error(given.Line, $"{step.Command}: unknown option '{key}'{Suggestion(key, OptionsOf(command).Select(KeyOf).Append(spec.Positional))}");
                key = KeyOf(option);
                if (CommandLineOnly(command, key) is { } why) throw recipe.Error(given.Line, $"{step.Command}: {key} {why}");
                if (IsFlag(option) && (given.IsList || !bool.TryParse(given.Values[0], out _)))
                    throw recipe.Error(given.Line, $"{step.Command}: {key} is a flag: true or false");
                if (given.IsList && option.Arity.MaximumNumberOfValues <= 1)
                    throw recipe.Error(given.Line, $"{step.Command}: {key} takes one value, not a list");
            }
            if (options.Any(o => o.Key == key)) throw recipe.Error(given.Line, $"{step.Command}: {key} is given twice");
            options.Add(given with { Key = key });
        }
        return step with { Options = options };
    }

    // " (did you mean 'sparsity'?)" for a key within two edits of an option's name.
    private static string Suggestion(string key, IEnumerable<string?> names)
    {
        var best = names.OfType<string>().Select(n => (Name: n, Distance: UsageErrors.Distance(key, n))).MinBy(n => n.Distance);
        return best.Name is not null && best.Distance <= 2 ? $" (did you mean '{best.Name}'?)" : "";
    }

    /// <summary>The argument vector of a step: its command's words, then --key value per value (--key for a true flag), then its positional values.</summary>
    internal static List<string> Arguments(PlannedStep step, Command command)
    {
        var args = step.Command.Split(' ').ToList();
        foreach (var option in step.Options.Where(o => o.Key != step.Spec.Positional))
        {
            if (IsFlag(OptionOf(command, option.Key)!))
            {
                if (option.IsTrue) args.Add("--" + option.Key);
                continue;
            }
            // A value that starts with a dash would read as an option.
            foreach (string value in option.Values) args.AddRange(value.StartsWith('-') ? [$"--{option.Key}={value}"] : ["--" + option.Key, value]);
        }
        if (step.Spec.Positional is { } positional && step.Options.FirstOrDefault(o => o.Key == positional) is { } values)
        {
            args.Add("--");
            args.AddRange(values.Values);
        }
        return args;
    }

    private static StepCommand Parse(Recipe recipe, Command root, PlannedStep step)
    {
        var command = CommandOf(root, step.Command);
        var args = Arguments(step, command);
        var result = root.Parse(args);
        if (result.Errors.Count > 0)
        {
            var error = result.Errors[0];
            string? key = error.SymbolResult switch
            {
                OptionResult o => KeyOf(o.Option),
                ArgumentResult => step.Spec.Positional,
                _ => null,
            };
            int line = (key is null ? null : step.Step.Find(key)?.Line) ?? step.Step.Line;
            throw recipe.Error(line, $"{step.Command}: {error.Message}");
        }
        IJob? built = null;
        if (command is JobCommand job)
        {
            try
            {
                built = job.Build(result);
                built.Validate();
            }
            catch (IrrException e)
            {
                // A message about one key ("realign: sparsity must be a number …") points at that key's line.
                string message = e.Message.StartsWith(step.Command + ": ", StringComparison.Ordinal) ? e.Message : $"{step.Command}: {e.Message}";
                int line = step.Step.Options.FirstOrDefault(o => message.StartsWith($"{step.Command}: {o.Key} ", StringComparison.Ordinal))?.Line ?? step.Step.Line;
                throw recipe.Error(line, message);
            }
        }
        var options = new JsonObject();
        if (built is not null && command is JobCommand { Schema: not null } schemaCommand)
            options = schemaCommand.Schema.Describe(built);
        else
        {
            foreach (var option in OptionsOf(command)) options[KeyOf(option)] = JobSchema.Json(ValueOf(result, option.Name, option.ValueType));
            foreach (var argument in command.Arguments) options[step.Spec.Positional ?? argument.Name] = JobSchema.Json(ValueOf(result, argument.Name, argument.ValueType));
        }
        return new StepCommand(step, args, options, OptionOf(command, "overwrite") is not null) { Job = built };
    }

    // The value the command gets: an option that is not given and has no default is default(T) (0 for --sparsity).
    private static object? ValueOf(ParseResult result, string name, Type type) =>
        result.GetValue<object>(name) ?? (type.IsValueType && Nullable.GetUnderlyingType(type) is null ? Activator.CreateInstance(type) : null);

    private static int Execute(Recipe recipe, IReadOnlyList<StepCommand> steps, IReadOnlySet<string> force, InvocationConfiguration io)
    {
        var err = io.Error;
        var ledger = RunLedger.Load(recipe.Output);
        var ids = recipe.Steps.Select(s => s.Id).ToList();
        var reran = new HashSet<int>();
        for (int k = 0; k < steps.Count; k++)
        {
            var (planned, arguments, options, canOverwrite) = steps[k];
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
