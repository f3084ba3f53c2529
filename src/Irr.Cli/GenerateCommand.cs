using System.CommandLine;
using Irr.Eval;

namespace Irr.Cli;

/// <summary><c>irr generate</c>: answers to a list of prompts, formatted with the model's chat template (or raw text), as JSONL (<see cref="GenerateJob"/>).</summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var command = new JobCommand(typeof(GenerateJob));
        command.SetAction(parseResult =>
        {
            var job = command.Build<GenerateJob>(parseResult);
            var responses = CommandSupport.Run(parseResult, job);
            int failed = responses.Count(r => r.Error is not null);
            parseResult.InvocationConfiguration.Error.WriteLine($"{responses.Count} responses written to {job.OutputPath}" +
                                                                (failed > 0 ? $" ({failed} failed: see \"error\" on their lines)" : ""));
            return CommandSupport.GenerationExit(parseResult.InvocationConfiguration.Error, failed, responses.Count,
                job.Overwrite ? "rerun the same command" : "rerun the same command with --overwrite");
        });
        return command;
    }
}
