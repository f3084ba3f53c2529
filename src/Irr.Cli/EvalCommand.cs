using System.CommandLine;

namespace Irr.Cli;

/// <summary><c>irr eval</c>: the evaluation commands (safety, task, ppl).</summary>
internal static class EvalCommand
{
    public static Command Create() => new("eval", "Evaluate a model: harmful-response rate (safety), task accuracy (task), perplexity (ppl)")
    {
        EvalSafetyCommand.Create(),
        EvalTaskCommand.Create(),
        EvalPplCommand.Create(),
    };
}
