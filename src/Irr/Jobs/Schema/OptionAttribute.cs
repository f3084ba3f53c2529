namespace Irr.Jobs;

/// <summary>What a job option names, for <c>irr run</c>'s wiring, path resolution and rerun checks.</summary>
public enum OptionKind
{
    /// <summary>A value: a number, a name, literal text, a flag.</summary>
    Value,

    /// <summary>A file or directory the job reads: it must exist or be written by an earlier step, and its content is hashed into run.json.</summary>
    Input,

    /// <summary>The file or directory the job writes (<c>--output</c>/<c>-o</c>).</summary>
    Output,

    /// <summary>A path the job reads and writes (a cache): resolved against the recipe's directory, never hashed or wired.</summary>
    Path,
}

/// <summary>
/// Declares a job property as an option of its command, once: the command line (<c>--key</c>), a recipe step's key, the
/// help text, the default (the property's initial value), the kind and the fingerprint that <c>irr run</c> and the sweep
/// compare all come from it (<see cref="JobSchema"/>; docs/design/jobs.md).
/// </summary>
/// <param name="help">The help text: what the option means, its unit and its values.</param>
[AttributeUsage(AttributeTargets.Property)]
public sealed class OptionAttribute(string help) : Attribute
{
    /// <summary>The help text.</summary>
    public string Help { get; } = help;

    /// <summary>The long name without dashes; default: the property's name in kebab case (BatchSize → batch-size).</summary>
    public string? Name { get; init; }

    /// <summary>A short alias with its dash ("-o").</summary>
    public string? Alias { get; init; }

    /// <summary>The value's name in the help ("K/N"); default: the key.</summary>
    public string? HelpName { get; init; }

    /// <summary>What the option names.</summary>
    public OptionKind Kind { get; init; }

    /// <summary>The option must be given (checked before <c>Validate</c>: "<c>COMMAND: key is required</c>").</summary>
    public bool Required { get; init; }

    /// <summary>A flag that sets the property to false (<c>--no-recalibrate</c> ↔ <c>Recalibrate</c>).</summary>
    public bool Negated { get; init; }

    /// <summary>The positional argument(s) of the command (report's RUN_DIR …) and the recipe key that holds them.</summary>
    public bool Positional { get; init; }

    /// <summary>
    /// The group it belongs to, so that a job composing this one takes a group of its options (<see cref="OptionsAttribute.Groups"/>):
    /// the sweep takes realign's "inputs" and "tuning", not its output or sparsity.
    /// </summary>
    public string? Group { get; init; }

    /// <summary>
    /// Whether the value can change what the job computes, so that it goes into the fingerprint a rerun compares
    /// (<see cref="JobSchema.Fingerprint"/>); false for the output, overwrite, and how work is done (concurrency, timeouts).
    /// </summary>
    public bool Fingerprinted { get; init; } = true;

    /// <summary>Why a recipe may not give it (it prints instead of running, or runs a command), or null.</summary>
    public string? CommandLineOnly { get; init; }

    /// <summary>The kind of earlier output <c>irr run</c> wires into it when a recipe step omits it, or <see cref="ArtifactKind.None"/>.</summary>
    public ArtifactKind From { get; init; }

    /// <summary>Wired from every earlier step that produces <see cref="From"/> (a list), not only the latest.</summary>
    public bool Many { get; init; }

    /// <summary>
    /// An input that may also be a Hugging Face Hub repo <c>org/name[@revision]</c> (a model or adapter): bound to the
    /// repo's snapshot directory in the local Hub cache (<see cref="IO.ModelReference"/>).
    /// </summary>
    public bool Hub { get; init; }

    /// <summary>With <see cref="Hub"/>: only the tokenizer's files are fetched (config, tokenizer, chat template, adapter config), not the weights.</summary>
    public bool HubTokenizerOnly { get; init; }

    /// <summary>
    /// A data file that may also be a file of a Hub repo, <c>hf://datasets/org/name[@revision]/path/in/repo</c> (the
    /// <c>hf://</c> form of huggingface_hub's HfFileSystem, which datasets and pandas read): bound to the file in the
    /// local Hub cache, downloaded when missing (<see cref="IO.HubClient.File"/>).
    /// </summary>
    public bool HubFile { get; init; }

    /// <summary>A key whose presence makes this input unnecessary, so that it is not wired (eval safety's model with responses).</summary>
    public string? NotNeededWith { get; init; }

    /// <summary>
    /// A type whose public static string property <c>Help</c> is the help text instead of <see cref="Help"/>: for an option
    /// whose values are a table's rows (--method and <c>RemovalMethods</c>), so that the table is the one place that names them.
    /// </summary>
    public Type? HelpSource { get; init; }

    /// <summary>The help text: <see cref="HelpSource"/>'s when given, else <see cref="Help"/>.</summary>
    public string Text => HelpSource?.GetProperty("Help", System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)?.GetValue(null) as string ?? Help;

    /// <summary>
    /// Its values are <c>KEY=VALUE</c> items (<c>--template-arg</c>): repeatable, never split at commas (a VALUE may hold
    /// them), and a recipe may give them as a mapping <c>{KEY: VALUE, …}</c>, each value written as JSON.
    /// </summary>
    public bool KeyValue { get; init; }

    /// <summary>Parses the given values into the property's type instead of the built-in conversion: a type with a parameterless constructor implementing <see cref="IOptionParser"/>.</summary>
    public Type? Parser { get; init; }
}

/// <summary>
/// Declares a property whose type is a record of options as part of this job's options (the sweep's realignment, an
/// evaluation's engine and judge). A null record is created when one of its options is given.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class OptionsAttribute : Attribute
{
    /// <summary>Only the options of these groups (<see cref="OptionAttribute.Group"/>); null: all of them.</summary>
    public string[]? Groups { get; init; }
}

/// <summary>Declares a job class as the job of a command, with what <c>irr run</c> needs beyond its options.</summary>
/// <param name="command">The command ("realign", "eval safety").</param>
[AttributeUsage(AttributeTargets.Class)]
public sealed class JobAttribute(string command) : Attribute
{
    /// <summary>The command.</summary>
    public string Command { get; } = command;

    /// <summary>The help text of the command.</summary>
    public string Help { get; init; } = "";

    /// <summary>The default output in a recipe is <c>OUTPUT/&lt;step-id&gt;</c> plus this (".safetensors"); null: a directory.</summary>
    public string? OutputExtension { get; init; }

    /// <summary>The kind of its output, for wiring, or <see cref="ArtifactKind.None"/>.</summary>
    public ArtifactKind Produces { get; init; }

    /// <summary>A flag without which the output is not of kind <see cref="Produces"/> (train writes a model only with full).</summary>
    public string? ProducesOnlyWith { get; init; }

    /// <summary>A flag with which the command writes nothing (realign's dry-run).</summary>
    public string? NoOutputWith { get; init; }

    /// <summary>Whether several steps may write into the same output directory.</summary>
    public bool SharesOutput { get; init; }

    /// <summary>Where inside the output directory the produced artifact is (the sweep's chosen model), or null.</summary>
    public string? ProducedInside { get; init; }

    /// <summary>The default output's extension when the positional input is a file (convert), or null.</summary>
    public string? FileInputOutputExtension { get; init; }
}

/// <summary>Parses an option's values (the command line's or a recipe's, lists already split at commas) into its property's type.</summary>
public interface IOptionParser
{
    /// <summary>The property's value.</summary>
    /// <exception cref="IrrException">A value is not valid; the message names <paramref name="key"/>.</exception>
    object? Parse(IReadOnlyList<string> values, string key);
}
