using System.Text.Json.Nodes;
using Irr.Realign;

namespace Irr.Jobs;

/// <summary>A recipe step checked before any step runs: its plan, the command line that runs it, its job and every option's value.</summary>
/// <param name="Planned">The step with its paths resolved and inputs wired (<see cref="StepGraph"/>).</param>
/// <param name="Arguments">The command line that runs it, without "irr": what running the step on its own takes.</param>
/// <param name="Job">Its job, bound from the step's keys and validated.</param>
/// <param name="Options">Every option of the job with its value, defaults included (run.json's <c>options</c>).</param>
internal sealed record CheckedStep(PlannedStep Planned, IReadOnlyList<string> Arguments, IJob Job, JsonObject Options)
{
    /// <summary>
    /// The options that can change the step's result (what a rerun compares), a Hub input as given (<c>org/name</c>, not
    /// the snapshot of the commit it resolved to: what it read is compared by content, <see cref="RecipeSteps.HubInputs"/>).
    /// </summary>
    public JsonObject Fingerprint => RecipeSteps.HubAsGiven(Planned, Job, JobSchema.Of(Job.GetType()).Fingerprint(Job));

    /// <summary>Whether the command takes <c>--overwrite</c> (a rerun replaces the step's own earlier output).</summary>
    public bool CanOverwrite => JobSchema.Of(Job.GetType()).Find("overwrite") is not null;
}

/// <summary>
/// What <c>irr run</c> checks of a recipe before any step runs, through each job's schema (<see cref="JobSchema"/>): every
/// key against the job's options (spelled canonically, "did you mean"), the wiring and order (<see cref="StepGraph"/>), each
/// step's job bound and validated, and the steps against each other (swapped models, modules). Errors name the recipe's line.
/// </summary>
internal static class RecipeSteps
{
    /// <summary>The schema of the job a recipe step's command runs, or null when a recipe cannot run it.</summary>
    public static JobSchema? SchemaOf(string command) =>
        StepSpec.JobTypes.Select(JobSchema.Of).FirstOrDefault(s => s.Job?.Command == command);

    /// <summary>
    /// The step with each key spelled as its option's long name (o → output), every key checked against the job's schema:
    /// unknown keys (with a suggestion), keys a recipe may not give (<see cref="OptionAttribute.CommandLineOnly"/>, or
    /// <paramref name="commandLineOnly"/>'s reason for an option of the command line only), flags, lists and repeats.
    /// </summary>
    /// <exception cref="IrrException">The first bad key, as "RECIPE line N: command: message".</exception>
    public static RecipeStep Canonical(Recipe recipe, RecipeStep step, JobSchema schema, Func<string, string?> commandLineOnly)
    {
        var options = new List<RecipeOption>();
        foreach (var given in step.Options)
        {
            string key = given.Key;
            var option = schema.Find(key);
            string? why = option?.Attribute.CommandLineOnly ?? (option is null ? commandLineOnly(key) : null);
            if (why is not null) throw recipe.Error(given.Line, $"{step.Command}: {option?.Key ?? key} {why}");
            if (option is null)
                throw recipe.Error(given.Line, $"{step.Command}: unknown option '{key}'{Suggestion(key, schema.Options.Select(o => o.Key))}");
            key = option.Key;
            if (option.IsFlag && (given.IsList || !bool.TryParse(given.Values[0], out _)))
                throw recipe.Error(given.Line, $"{step.Command}: {key} is a flag: true or false");
            if (given.IsList && !option.IsList)
                throw recipe.Error(given.Line, $"{step.Command}: {key} takes one value, not a list");
            if (options.Any(o => o.Key == key)) throw recipe.Error(given.Line, $"{step.Command}: {key} is given twice");
            // A list option's comma-separated string is its list, before its paths are resolved and wired.
            var values = option.IsList ? given.Values.SelectMany(v => JobSchema.SplitList(option, v, recipe.Resolve(v))).ToList() : given.Values;
            options.Add(given with { Key = key, Values = values, IsList = given.IsList || values.Count > 1 });
        }
        return step with { Options = options };
    }

    /// <summary>" (did you mean 'sparsity'?)" for a word within two edits of a name, else "".</summary>
    public static string Suggestion(string word, IEnumerable<string> names)
    {
        var best = names.Select(n => (Name: n, Distance: Distance(word, n))).MinBy(n => n.Distance);
        return best.Name is not null && best.Distance <= 2 ? $" (did you mean '{best.Name}'?)" : "";
    }

    /// <summary>The edit distance of two words (Levenshtein).</summary>
    public static int Distance(string a, string b)
    {
        var row = Enumerable.Range(0, b.Length + 1).ToArray();
        for (int i = 1; i <= a.Length; i++)
        {
            int diagonal = row[0];
            row[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int above = row[j];
                row[j] = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), diagonal + (a[i - 1] == b[j - 1] ? 0 : 1));
                diagonal = above;
            }
        }
        return row[b.Length];
    }

    /// <summary>The command line of a step: its command's words, then --key value per value (--key for a true flag), then its positional values.</summary>
    public static List<string> Arguments(PlannedStep step, JobSchema schema)
    {
        var args = step.Command.Split(' ').ToList();
        foreach (var given in step.Options.Where(o => o.Key != step.Spec.Positional))
        {
            if (schema.Find(given.Key)!.IsFlag)
            {
                if (given.IsTrue) args.Add("--" + given.Key);
                continue;
            }
            // A value that starts with a dash would read as an option.
            foreach (string value in given.Values) args.AddRange(value.StartsWith('-') ? [$"--{given.Key}={value}"] : ["--" + given.Key, value]);
        }
        if (step.Spec.Positional is { } positional && step.Options.FirstOrDefault(o => o.Key == positional) is { } values)
        {
            args.Add("--");
            args.AddRange(values.Values);
        }
        return args;
    }

    /// <summary>The step's job, bound from its keys through the schema and validated.</summary>
    /// <exception cref="IrrException">A value does not convert, a required key is missing or Validate refuses: at the key's line when the message names one.</exception>
    public static CheckedStep Check(Recipe recipe, PlannedStep step, JobSchema schema)
    {
        IJob job;
        try
        {
            job = (IJob)schema.Bind(step.Options.ToDictionary(o => o.Key, o => o.Values));
            job.Validate();
        }
        catch (IrrException e)
        {
            // A message about one key ("realign: sparsity must be a number …") points at that key's line.
            string message = e.Message.StartsWith(step.Command + ": ", StringComparison.Ordinal) ? e.Message : $"{step.Command}: {e.Message}";
            int line = step.Step.Options.FirstOrDefault(o => message.StartsWith($"{step.Command}: {o.Key} ", StringComparison.Ordinal))?.Line ?? step.Step.Line;
            throw recipe.Error(line, message);
        }
        return new CheckedStep(step, Arguments(step, schema), job, HubAsGiven(step, job, schema.Describe(job)));
    }

    // The step's given options that take a Hub repo or file, with their schema entry.
    private static IEnumerable<(JobOption Option, RecipeOption Given)> HubOptions(PlannedStep step, IJob job)
    {
        var schema = JobSchema.Of(job.GetType());
        foreach (var given in step.Options)
            if (schema.Find(given.Key) is { } option && (option.Attribute.Hub || option.Attribute.HubFile))
                yield return (option, given);
    }

    /// <summary>The options of <paramref name="described"/> that took a Hub repo or file, with their values as the recipe gives them.</summary>
    public static JsonObject HubAsGiven(PlannedStep step, IJob job, JsonObject described)
    {
        foreach (var (option, given) in HubOptions(step, job))
        {
            if (!described.ContainsKey(option.Key) || !given.Values.Any(StepGraph.IsHub)) continue;
            described[option.Key] = option.IsList
                ? new JsonArray(given.Values.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray())
                : JsonValue.Create(given.Values[0]);
        }
        return described;
    }

    /// <summary>
    /// The Hub inputs of a checked step as run.json records them: each repo or <c>hf://</c> file as given → the commit it
    /// resolved to (<c>Commits</c>: "org/name@COMMIT") and the content of what the step reads (<c>Hashes</c>, beside the
    /// content hashes of its local inputs): a file's blob name (its ETag: SHA-256 of an LFS file, git's SHA-1 of another),
    /// a model's or adapter's "blobs SHA-256" over the path and blob of each file it needs (<see cref="IO.ModelReference.Needed"/>,
    /// with the shards of an index). So a step whose files are unchanged is up to date after its branch moved (a commit
    /// that only touched other files), and one whose files changed reruns.
    /// </summary>
    public static (SortedDictionary<string, string> Hashes, SortedDictionary<string, string> Commits) HubInputs(CheckedStep step)
    {
        var hashes = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var commits = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var schema = JobSchema.Of(step.Job.GetType());
        bool readsCard = schema.Find("no-model-card") is not null; // a step that writes a model card reads the base's README.md (its licence)
        foreach (var (option, given) in HubOptions(step.Planned, step.Job))
        {
            var bound = option.ValueIn(step.Job) switch
            {
                string one => [one],
                IEnumerable<string> many => many.ToList(),
                _ => new List<string>(),
            };
            foreach (var (text, path) in given.Values.Zip(bound))
            {
                if (text == path || IO.HubCache.RepoOfCachedPath(path) is not { } hub) continue;
                commits[text] = $"{hub.RepoId}@{hub.Commit}";
                hashes[text] = hub.Path.Length > 0 ? "blob " + BlobOf(path) : "blobs " + SnapshotHash(path, readsCard);
            }
        }
        return (hashes, commits);
    }

    /// <summary>
    /// A step's argument with a Hub input pinned to the commit it resolved to when the recipe was checked (<paramref name="commits"/>,
    /// from <see cref="HubInputs"/>): <c>org/name</c> → <c>org/name@COMMIT</c>, <c>hf://datasets/org/name/path</c> →
    /// <c>hf://datasets/org/name@COMMIT/path</c>; any other argument as it is.
    /// </summary>
    public static string PinnedToCommit(string argument, IReadOnlyDictionary<string, string> commits)
    {
        if (!commits.TryGetValue(argument, out string? pinned)) return argument;
        string commit = pinned[(pinned.LastIndexOf('@') + 1)..];
        if (Data.HubDataPath.IsHubPath(argument)) return (Data.HubDataPath.Parse(argument) with { Revision = commit }).ToString();
        var reference = IO.ModelReference.Parse(argument);
        return reference.IsHub ? $"{reference.RepoId}@{commit}" : argument;
    }

    // The blob a snapshot file links to (its ETag), or "?" for a file that is not a link into blobs/.
    private static string BlobOf(string file) =>
        new FileInfo(file).LinkTarget is { } target ? Path.GetFileName(target) : "?";

    // SHA-256 over "path blob" lines of the files a model or adapter command reads from a snapshot (README.md only for a
    // command that writes a model card, whose licence it reads).
    private static string SnapshotHash(string snapshot, bool readsCard)
    {
        var files = Directory.EnumerateFiles(snapshot, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(snapshot, f).Replace(Path.DirectorySeparatorChar, '/')).ToList();
        var needed = IO.ModelReference.Needed(files).Where(f => files.Contains(f) && (readsCard || f != IO.ModelCard.FileName)).ToList();
        foreach (string index in needed.Where(IO.HubFiles.IsShardIndex).ToList())
            needed.AddRange(IO.HubFiles.ShardsOf(Path.Combine(snapshot, index), index));
        var lines = needed.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).Select(p => $"{p} {BlobOf(Path.Combine(snapshot, p))}\n");
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(string.Concat(lines))));
    }

    /// <summary>
    /// The checks between steps: a realign, sweep or baseline step whose safety vector or Fisher an earlier step computes,
    /// against the models that step names (<see cref="InputChecks.Planned"/>: a swap stops the run before any step runs),
    /// and a realign or sweep step's modules against those of the steps that compute its safety vector and Fisher.
    /// </summary>
    /// <exception cref="IrrException">The first problem, at the step's line.</exception>
    public static void CheckBetween(Recipe recipe, StepGraph graph, IReadOnlyList<CheckedStep> steps)
    {
        foreach (var step in graph.Order) PlannedInputs(recipe, graph, step, steps);
        foreach (var step in steps) ModulesOfItsModel(recipe, step);
        foreach (var step in steps) PlannedModules(recipe, steps, step);
    }

    // A step's modules against the family of its model when that model exists before the run (its config.json): q_proj on
    // Phi-3 stops the run here, not when the step starts after the earlier ones ran. A model a step computes is checked
    // when that step runs.
    private static void ModulesOfItsModel(Recipe recipe, CheckedStep step)
    {
        (string? model, IReadOnlyList<string>?[] lists) = step.Job switch
        {
            SafetyVectorJob v => (v.Aligned, [v.Modules]),
            FisherJob f => (f.Model, [f.Modules]),
            RealignJob r => (r.Base, [r.Modules]),
            SweepJob s => (s.Realign.Base, [s.Realign.Modules]),
            Realign.Baselines.RestaJob r => (r.Base, [r.Modules]),
            Realign.Baselines.AntidoteJob a => (a.Base, [a.Modules]),
            Realign.Baselines.InterpolateJob i => (i.Base, [i.Modules]),
            Irr.Model.TrainJob t => (t.Model, [t.Targets, t.TrainableModules]),
            _ => ((string?)null, Array.Empty<IReadOnlyList<string>?>()),
        };
        if (lists.All(l => l is null) || ConfigBeforeTheRun(model) is not { } config) return;
        try
        {
            foreach (var modules in lists.OfType<IReadOnlyList<string>>()) TargetModules.For(config, modules);
        }
        catch (IrrException e)
        {
            var line = step.Planned.Step.Find("modules") ?? step.Planned.Step.Find("targets") ?? step.Planned.Step.Find("trainable-modules");
            throw recipe.Error(line?.Line ?? step.Planned.Step.Line, $"{step.Planned.Command}: {e.Message}");
        }
    }

    private static void PlannedInputs(Recipe recipe, StepGraph graph, PlannedStep step, IReadOnlyList<CheckedStep> steps)
    {
        if (step.Command is not ("realign" or "sweep" or "baseline resta" or "baseline safelora")) return;
        // A Hub ID kept as given is compared as the snapshot directory the step's job was bound to.
        string Bound(PlannedStep s, string key, string value) =>
            StepGraph.IsHub(value) && steps.FirstOrDefault(c => c.Planned.Index == s.Index) is { } bound
            && JobSchema.Of(bound.Job.GetType()).Find(key)?.ValueIn(bound.Job) is string path ? path : value;
        string? Value(PlannedStep s, string key) => s.Options.FirstOrDefault(o => o.Key == key) is { Values.Count: 1 } o ? Bound(s, key, o.Values[0]) : null;
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

    // The config of a model that exists before the run, or null (a later step's output, or a bad config the step itself reports)
    private static IO.ModelConfig? ConfigBeforeTheRun(string? model)
    {
        string? configPath = model is null ? null : Path.Combine(model, "config.json");
        if (configPath is null || !File.Exists(configPath)) return null;
        try { return IO.ModelConfig.Load(configPath); }
        catch (IrrException) { return null; }
    }

    // "all" as the modules of the base's family: from its config.json when it is there, else (the base is a later output)
    // Phi-3's four when a producer names a fused module, the seven projections otherwise.
    private static IReadOnlyList<string> PlannedFamilyModules(string @base, IReadOnlyList<string> modules,
        IEnumerable<(string Key, string Step, int Line, IReadOnlyList<string> Modules)> producers)
    {
        if (!modules.SequenceEqual(TargetModules.All)) return modules;
        if (ConfigBeforeTheRun(@base) is { } config) return config.LinearModules;
        bool fused = producers.Any(p => p.Modules.Any(m => m is "qkv_proj" or "gate_up_proj") && !p.Modules.SequenceEqual(TargetModules.All));
        return TargetModules.All.Where(m => fused ? m is not ("q_proj" or "k_proj" or "v_proj" or "gate_proj" or "up_proj") : m is not ("qkv_proj" or "gate_up_proj")).ToList();
    }

    // A realign or sweep step whose safety vector or Fisher an earlier step computes: those steps must cover the modules
    // it realigns, or it would fail only when it runs, after the Fisher's hours.
    private static void PlannedModules(Recipe recipe, IReadOnlyList<CheckedStep> steps, CheckedStep step)
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
            InputChecks.PlannedModules(step.Planned.Command, PlannedFamilyModules(realign.Base, realigned, producers), realign.Modules is not null, producers);
        }
        catch (IrrException e)
        {
            throw recipe.Error(step.Planned.Step.Find("modules")?.Line ?? step.Planned.Step.Line, e.Message);
        }
    }
}
