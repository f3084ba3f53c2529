using System.CommandLine;
using System.Globalization;
using Irr.Eval;

namespace Irr.Cli;

/// <summary><c>irr eval ppl</c>: perplexity, exp of the mean token NLL over all predicted tokens of a text corpus (<see cref="EvalPplJob"/>).</summary>
internal static class EvalPplCommand
{
    public static Command Create()
    {
        var command = new JobCommand(typeof(EvalPplJob), "ppl");
        command.SetAction(parseResult =>
        {
            var run = CommandSupport.Run(parseResult, command.Build<EvalPplJob>(parseResult));
            parseResult.InvocationConfiguration.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"perplexity {run.Perplexity:F4} (mean NLL {run.MeanNll:F4} nats over {run.Tokens} tokens of {run.Records} texts)"));
            return 0;
        });
        return command;
    }
}
