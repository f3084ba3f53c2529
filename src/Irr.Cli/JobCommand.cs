using System.CommandLine;
using Irr.Jobs;

namespace Irr.Cli;

/// <summary>
/// A command that is a front-end to a library job: it parses its options, builds the job (<see cref="Build"/>),
/// shows the job's progress and prints its result. <c>irr run</c> builds the same job from a recipe step.
/// </summary>
/// <param name="name">The command's name.</param>
/// <param name="description">Its help text.</param>
/// <param name="build">Builds the job its parsed options describe (no file is touched).</param>
internal sealed class JobCommand(string name, string description, Func<ParseResult, IJob> build) : Command(name, description)
{
    /// <summary>Builds the job that parsed options describe.</summary>
    public IJob Build(ParseResult parseResult) => build(parseResult);
}
