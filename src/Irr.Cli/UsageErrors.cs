using System.CommandLine;
using System.CommandLine.Parsing;
using System.Text.RegularExpressions;

namespace Irr.Cli;

/// <summary>A wrong command line in irr's words, in one line: the first problem, a suggestion for a mistyped option, and where the help is.</summary>
internal static partial class UsageErrors
{
    /// <summary>"<c>realign: unknown option '--sparsty' (did you mean --sparsity?); irr realign --help lists the options</c>".</summary>
    public static string Describe(ParseResult parsed)
    {
        var command = parsed.CommandResult.Command;
        var names = new List<string>();
        for (var c = parsed.CommandResult; c is not null; c = c.Parent as CommandResult) names.Insert(0, c.Command.Name);
        string path = string.Join(" ", names);
        string where = names.Count > 1 ? string.Join(" ", names.Skip(1)) + ": " : "";
        // A mistyped word explains the rest ("Required command was not provided" after "eval saftey"): it goes first.
        var problem = parsed.Errors.FirstOrDefault(e => Unrecognized().IsMatch(e.Message)) ?? parsed.Errors[0];
        string message = problem.Message;
        if (Unrecognized().Match(message) is { Success: true } u)
        {
            string token = u.Groups[1].Value;
            var candidates = token.StartsWith('-') ? command.Options.SelectMany(o => o.Aliases.Prepend(o.Name)) : command.Subcommands.Select(c => c.Name);
            string? near = Nearest(token, candidates);
            string suggestion = near is null ? "" : $" (did you mean {near}?)";
            message = token.StartsWith('-') ? $"unknown option '{token}'{suggestion}"
                : command.Subcommands.Count > 0 ? $"unknown command '{token}'{suggestion}" : $"unexpected argument '{token}'";
        }
        else if (RequiredOption().Match(message) is { Success: true } r) message = $"{r.Groups[1].Value} is required";
        else if (MissingValue().Match(message) is { Success: true } v) message = $"{v.Groups[1].Value} needs a value";
        else if (SingleValue().Match(message) is { Success: true } one) message = $"{one.Groups[1].Value} takes one value, not {one.Groups[2].Value}";
        else if (message.StartsWith("Required command was not provided", StringComparison.Ordinal))
            message = $"give a command: {string.Join(", ", command.Subcommands.Select(c => c.Name))}";
        else if (message.StartsWith("Required argument missing", StringComparison.Ordinal))
            message = $"{string.Join(", ", command.Arguments.Select(a => a.Name))} is required";
        else if (CannotParse().Match(message) is { Success: true } c) message = $"{c.Groups[2].Value}: '{c.Groups[1].Value}' is not a valid value";
        return $"{where}{message}; {path} --help lists the options";
    }

    // The candidate within two edits of the token, if one is.
    private static string? Nearest(string token, IEnumerable<string> candidates)
    {
        var best = candidates.Select(c => (Name: c, Distance: Irr.Jobs.RecipeSteps.Distance(token, c))).MinBy(c => c.Distance);
        return best.Name is not null && best.Distance <= 2 ? best.Name : null;
    }

    [GeneratedRegex("^Unrecognized command or argument '(.*)'\\.?$")]
    private static partial Regex Unrecognized();

    [GeneratedRegex("^Required argument missing for option: '(.*)'\\.?$")]
    private static partial Regex MissingValue();

    [GeneratedRegex("^Option '(.*)' expects a single argument but (\\d+) were provided\\.?$")]
    private static partial Regex SingleValue();

    [GeneratedRegex("^Option '(.*)' is required\\.?$")]
    private static partial Regex RequiredOption();

    [GeneratedRegex("^Cannot parse argument '(.*)' for option '(.*)' as expected type")]
    private static partial Regex CannotParse();
}
