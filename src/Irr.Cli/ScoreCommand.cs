using System.CommandLine;
using Irr.Model;

namespace Irr.Cli;

/// <summary>
/// <c>irr score</c>: the log-probability the model gives every labelled (answer) token of a data set,
/// formatted as the model was trained, and the mean loss (<see cref="ScoreJob"/>).
/// </summary>
internal static class ScoreCommand
{
    public static Command Create()
    {
        var command = new JobCommand(typeof(ScoreJob));
        command.SetAction(parseResult =>
        {
            var job = command.Build<ScoreJob>(parseResult);
            var result = CommandSupport.Run(parseResult, job);
            if (job.OutputPath is null) result.WriteJson(parseResult.InvocationConfiguration.Output);
            parseResult.InvocationConfiguration.Error.WriteLine($"{result.Examples.Count} records, {result.LabelledTokens} labelled tokens, mean loss {result.MeanLoss:F4}");
            return 0;
        });
        return command;
    }
}
