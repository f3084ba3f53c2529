using System.CommandLine;
using System.Globalization;
using Irr.Eval;

namespace Irr.Cli;

/// <summary><c>irr eval task</c>: greedy answers to task examples, scored; prints the accuracy and writes task.json and predictions.jsonl (<see cref="EvalTaskJob"/>).</summary>
internal static class EvalTaskCommand
{
    public static Command Create()
    {
        var command = new JobCommand(typeof(EvalTaskJob), "task");
        command.SetAction(parseResult =>
        {
            var run = CommandSupport.Run(parseResult, command.Build<EvalTaskJob>(parseResult));
            parseResult.InvocationConfiguration.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"accuracy {run.Accuracy:F4} ({run.Correct} of {run.Total}, metric {run.Metric}){(run.Failed > 0 ? $", {run.Failed} failed generations counted incorrect" : "")}"));
            return CommandSupport.GenerationExit(parseResult.InvocationConfiguration.Error, run.Failed, run.Total);
        });
        return command;
    }
}
