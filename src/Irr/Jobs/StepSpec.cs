namespace Irr.Jobs;

/// <summary>The kinds of step output that <c>irr run</c> wires into later steps' inputs.</summary>
public enum ArtifactKind
{
    /// <summary>Not wired.</summary>
    None,

    /// <summary>A safety vector (.safetensors), from safety-vector.</summary>
    SafetyVector,

    /// <summary>A diagonal Fisher (.safetensors), from fisher.</summary>
    Fisher,

    /// <summary>A full model directory, from realign, sweep (its chosen model, OUTPUT/chosen), train --full or baseline resta.</summary>
    Model,

    /// <summary>An evaluation run directory that irr report reads (safety.json, task.json), from eval safety or eval task.</summary>
    EvalRun,
}

/// <summary>An option of a command that names a file or directory; its relative paths are resolved against the recipe's directory.</summary>
/// <param name="Key">The option's long name without the dashes, or the positional key ("runs").</param>
/// <param name="IsInput">
/// Whether the step reads it: then it must exist or be written by a step, it is hashed into run.json, and the step depends
/// on the step that writes it. False for a path that is only resolved (a cache the step reads and writes).
/// </param>
/// <param name="From">The kind of earlier output wired into it when the recipe omits it; null: never wired.</param>
/// <param name="Many">Wired from every earlier step that produces <paramref name="From"/> (a list), not only the latest.</param>
/// <param name="NotNeededWith">A key whose presence makes this input unnecessary, so it is not wired (eval safety's model with responses).</param>
/// <param name="HubRepo">It may be a Hub repo <c>org/name[@revision]</c> (<see cref="OptionAttribute.Hub"/>), kept as given.</param>
/// <param name="HubFile">It may be an <c>hf://</c> file (<see cref="OptionAttribute.HubFile"/>), kept as given.</param>
internal sealed record PathOption(string Key, bool IsInput = true, ArtifactKind? From = null, bool Many = false, string? NotNeededWith = null, bool HubRepo = false, bool HubFile = false);

/// <summary>
/// What <c>irr run</c> knows about one command beyond its options: which options are paths and which of them are wired
/// from earlier steps, where its output goes by default and what kind of output that is. <see cref="All"/> is the one wiring table.
/// </summary>
/// <param name="Command">The command ("realign", "eval safety").</param>
/// <param name="Paths">Its path options.</param>
/// <param name="OutputExtension">
/// The default output is <c>OUTPUT/&lt;step-id&gt;</c> plus this (".safetensors"); null: a directory (see also
/// <see cref="StepSpec.FileInputOutputExtension"/>).
/// </param>
/// <param name="Produces">The kind of its output, for wiring; null: never wired.</param>
internal sealed record StepSpec(string Command, IReadOnlyList<PathOption> Paths, string? OutputExtension = null, ArtifactKind? Produces = null)
{
    /// <summary>The key of every command's output option (<c>--output</c>/<c>-o</c>).</summary>
    public const string OutputKey = "output";

    /// <summary>A flag without which the output is not of kind <see cref="Produces"/> (train writes a model only with full).</summary>
    public string? ProducesOnlyWith { get; init; }

    /// <summary>A flag with which the command writes nothing (realign's dry-run): no output, and the step always runs.</summary>
    public string? NoOutputWith { get; init; }

    /// <summary>Whether several steps may write into the same output directory (an evaluation run directory "may exist").</summary>
    public bool SharesOutput { get; init; }

    /// <summary>
    /// Where inside the output directory the produced artifact is (sweep's <c>chosen</c> model), or null when the output
    /// itself is the artifact.
    /// </summary>
    public string? ProducedInside { get; init; }

    /// <summary>The path of the artifact a step with output <paramref name="output"/> produces (what later steps are wired to).</summary>
    public string ArtifactPath(string output) => ProducedInside is null ? output : Path.Combine(output, ProducedInside);

    /// <summary>The key that holds the command's positional arguments, or null when it has none.</summary>
    public string? Positional { get; init; }

    /// <summary>
    /// The default output's extension when the <see cref="Positional"/> input is a file, instead of <see cref="OutputExtension"/>
    /// (convert: a state dict becomes one .safetensors file, a model directory a directory); null: always <see cref="OutputExtension"/>.
    /// </summary>
    public string? FileInputOutputExtension { get; init; }

    /// <summary>The extension of the default output of a step with these (resolved) options.</summary>
    public string? DefaultOutputExtension(IEnumerable<RecipeOption> options) =>
        FileInputOutputExtension is not null && options.FirstOrDefault(o => o.Key == Positional)?.Values is [var input] && File.Exists(input)
            ? FileInputOutputExtension
            : OutputExtension;

    /// <summary>The path option with this key, or null.</summary>
    public PathOption? PathOf(string key) => Paths.FirstOrDefault(p => p.Key == key);

    /// <summary>Whether <paramref name="value"/> of the option <paramref name="key"/> names the Hub, not a path (<see cref="IO.ModelReference.IsRemote"/>).</summary>
    public bool IsRemote(string key, string value, string baseDirectory) =>
        PathOf(key) is { } p && IO.ModelReference.IsRemote(value, baseDirectory, p.HubRepo, p.HubFile);

    /// <summary>The kind of <paramref name="step"/>'s output, or null when it is not wired into later steps.</summary>
    public ArtifactKind? ProducedBy(RecipeStep step) =>
        (ProducesOnlyWith is null || step.Flag(ProducesOnlyWith)) && (NoOutputWith is null || !step.Flag(NoOutputWith)) ? Produces : null;

    /// <summary>
    /// The spec a job type declares: its path options (<see cref="OptionKind.Input"/> and <see cref="OptionKind.Path"/>,
    /// with <see cref="OptionAttribute.From"/>, <see cref="OptionAttribute.Many"/> and <see cref="OptionAttribute.NotNeededWith"/>),
    /// its positional key, and its <see cref="JobAttribute"/>'s output and wiring.
    /// </summary>
    public static StepSpec Of(JobSchema schema)
    {
        var job = schema.Job ?? throw new InvalidOperationException($"{schema.Type.Name} has no [Job] attribute");
        static ArtifactKind? Kind(ArtifactKind kind) => kind == ArtifactKind.None ? null : kind;
        var paths = schema.Options.Where(o => o.Kind is OptionKind.Input or OptionKind.Path)
            .Select(o => new PathOption(o.Key, o.Kind == OptionKind.Input, Kind(o.Attribute.From), o.Attribute.Many, o.Attribute.NotNeededWith, o.Attribute.Hub, o.Attribute.HubFile))
            .ToList();
        return new StepSpec(job.Command, paths, job.OutputExtension, Kind(job.Produces))
        {
            ProducesOnlyWith = job.ProducesOnlyWith,
            NoOutputWith = job.NoOutputWith,
            SharesOutput = job.SharesOutput,
            ProducedInside = job.ProducedInside,
            Positional = schema.Positional?.Key,
            FileInputOutputExtension = job.FileInputOutputExtension,
        };
    }

    /// <summary>The job types a recipe step may run, in the order <c>irr run</c> lists them.</summary>
    public static IReadOnlyList<Type> JobTypes { get; } =
    [
        typeof(Realign.SafetyVectorJob), typeof(Realign.FisherJob), typeof(Realign.RealignJob), typeof(Realign.Baselines.SafeLoraJob),
        typeof(Realign.SweepJob), typeof(Model.TrainJob), typeof(Realign.Baselines.RestaJob), typeof(Realign.Baselines.AntidoteJob),
        typeof(Realign.Baselines.InterpolateJob), typeof(Eval.GenerateJob), typeof(Model.ScoreJob),
        typeof(Eval.EvalSafetyJob), typeof(Eval.EvalTaskJob), typeof(Eval.EvalPplJob), typeof(Eval.Report.ReportJob), typeof(IO.ConvertJob),
    ];

    /// <summary>Every command a recipe step may run, with its wiring, derived from the job's declarations.</summary>
    public static IReadOnlyList<StepSpec> All => field ??= JobTypes.Select(t => Of(JobSchema.Of(t))).ToList();

    /// <summary>The spec of <paramref name="command"/>, or null when a recipe cannot run it.</summary>
    public static StepSpec? Find(string command) => All.FirstOrDefault(s => s.Command == command);

    /// <summary>The spec of <paramref name="step"/>'s command.</summary>
    /// <exception cref="IrrException">A recipe cannot run the command; the message names the recipe and line.</exception>
    public static StepSpec Of(Recipe recipe, RecipeStep step) => Find(step.Command)
        ?? throw recipe.Error(step.Line, $"unknown command '{step.Command}' (a step is one of: {string.Join(", ", All.Select(s => s.Command))})");
}
