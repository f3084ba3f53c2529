using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using Irr.Jobs;

namespace Irr.Cli;

/// <summary>
/// A command that is a front-end to a library job, derived from the job's schema (<see cref="JobSchema"/>): one option
/// per declared job option, with its key, alias, help and default; <see cref="Build"/> binds what was given and
/// <c>irr run</c> builds the same job from a recipe step. The command's file only says how to print the result.
/// </summary>
internal sealed class JobCommand : Command
{
    private readonly List<(JobOption Option, Symbol Symbol)> bound = [];
    /// <summary>A command for the job type <paramref name="jobType"/>, named and described by its <see cref="JobAttribute"/>.</summary>
    /// <param name="jobType">The job's type.</param>
    /// <param name="name">The command's own word ("safety" for "eval safety"); default: the job's command.</param>
    public JobCommand(Type jobType, string? name = null)
        : base(name ?? JobSchema.Of(jobType).Command, JobSchema.Of(jobType).Job?.Help)
    {
        Schema = JobSchema.Of(jobType);
        // A list option takes several words after it ("--prompts a.json b.json") unless the command has positional arguments,
        // which those words would swallow ("irr report --labels a,b RUN1 RUN2").
        bool manyPerToken = Schema.Positional is null;
        foreach (var option in Schema.Options)
        {
            Symbol symbol = option.Attribute.Positional ? Positional(option) : Flag(option, manyPerToken);
            if (symbol is Argument argument) Arguments.Add(argument);
            else Options.Add((Option)symbol);
            bound.Add((option, symbol));
        }
    }

    /// <summary>The job's schema.</summary>
    public JobSchema Schema { get; }

    /// <summary>The job the parsed options describe (no file is touched; <c>Validate</c> is the job's).</summary>
    /// <exception cref="IrrException">A required option is missing or a value does not convert.</exception>
    public IJob Build(ParseResult parseResult) => (IJob)Schema.Bind(Given(parseResult));

    /// <summary>The job the parsed options describe, typed.</summary>
    public T Build<T>(ParseResult parseResult) where T : IJob => (T)Build(parseResult);

    /// <summary>The option values given on the command line, by key, as text (what <see cref="JobSchema.Bind"/> takes).</summary>
    public Dictionary<string, IReadOnlyList<string>> Given(ParseResult parseResult)
    {
        var given = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var (option, symbol) in bound)
        {
            SymbolResult? result = symbol switch
            {
                Option o => parseResult.GetResult(o) is { Implicit: false } r ? r : null,
                Argument a => parseResult.GetResult(a) is { } r && r.Tokens.Count > 0 ? r : null,
                _ => null,
            };
            if (result is null) continue;
            given[option.Key] = option.IsFlag
                ? [parseResult.GetValue((Option<bool>)symbol) ? "true" : "false"]
                : result.Tokens.Select(t => t.Value).ToList();
        }
        return given;
    }

    /// <summary>The command-line option of a job option (for a command that reads one itself).</summary>
    public Option OptionOf(string key) => (Option)bound.Single(b => b.Option.Key == key).Symbol;

    private static Option Flag(JobOption option, bool manyPerToken)
    {
        var a = option.Attribute;
        string[] aliases = a.Alias is { } alias ? [alias] : [];
        Option symbol = option.IsFlag
            ? new Option<bool>("--" + option.Key, aliases)
            : option.IsList
                ? new Option<string[]>("--" + option.Key, aliases) { AllowMultipleArgumentsPerToken = manyPerToken }
                : new Option<string>("--" + option.Key, aliases) { DefaultValueFactory = !a.Required && Shown(option.Default) is { } d ? _ => d : null };
        symbol.Description = a.Text + (a.Hub ? OptionHelp.HubRepo : "") + (a.HubFile ? OptionHelp.HubFile : "") + (option.IsList && !a.KeyValue && !a.Text.Contains("comma", StringComparison.Ordinal) ? " (a list: comma-separated or repeated)" : "") + (a.Required ? " (required)" : "");
        if (a.HelpName is { } helpName) symbol.HelpName = helpName;
        if (option.IsList && !a.Required && Shown(option.Default) is { } list && list.Length > 0) ((Option<string[]>)symbol).DefaultValueFactory = _ => [list];
        return symbol;
    }

    private static Argument Positional(JobOption option) => option.IsList
        ? new Argument<string[]>(option.Attribute.HelpName ?? option.Key.ToUpperInvariant()) { Description = option.Attribute.Text, Arity = ArgumentArity.ZeroOrMore }
        : new Argument<string>(option.Attribute.HelpName ?? option.Key.ToUpperInvariant()) { Description = option.Attribute.Text + (option.Attribute.Hub ? OptionHelp.HubRepo : ""), Arity = ArgumentArity.ZeroOrOne };

    // A default as the help shows it, or null when there is none worth showing (null, false, an empty text); a required
    // option shows none.
    private static string? Shown(object? value) => value switch
    {
        null or false => null,
        string s => s.Length == 0 ? null : s,
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        System.Collections.IEnumerable list => string.Join(",", list.Cast<object?>().Select(Shown)),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture),
    };
}
