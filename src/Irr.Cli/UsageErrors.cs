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
        var problem = parsed.Errors[0];
        string message = problem.Message;
        if (Unrecognized().Match(message) is { Success: true } u)
        {
            string token = u.Groups[1].Value;
            var candidates = command.Options.SelectMany(o => o.Aliases.Prepend(o.Name)).Concat(command.Subcommands.Select(c => c.Name));
            string? near = token.StartsWith('-') ? Nearest(token, candidates) : null;
            message = token.StartsWith('-')
                ? $"unknown option '{token}'{(near is null ? "" : $" (did you mean {near}?)")}"
                : command.Subcommands.Count > 0 ? $"unknown command '{token}'" : $"unexpected argument '{token}'";
        }
        else if (RequiredOption().Match(message) is { Success: true } r) message = $"{r.Groups[1].Value} is required";
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

    [GeneratedRegex("^Option '(.*)' is required\\.?$")]
    private static partial Regex RequiredOption();

    [GeneratedRegex("^Cannot parse argument '(.*)' for option '(.*)' as expected type")]
    private static partial Regex CannotParse();
}
