using System.CommandLine;
using Irr.Model;

namespace Irr.Cli;

/// <summary>
/// <c>irr train</c>: fine-tune a model on a data set, fully (a new Hugging Face model directory) or
/// with LoRA (a PEFT adapter directory), with the loss on answer tokens only (<see cref="TrainJob"/>).
/// </summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var command = new JobCommand(typeof(TrainJob));
        command.SetAction(parseResult =>
        {
            var job = command.Build<TrainJob>(parseResult);
            var result = CommandSupport.Run(parseResult, job);
            var err = parseResult.InvocationConfiguration.Error;
            err.WriteLine($"final step loss {result.FinalLoss:F4}");
            err.WriteLine($"saved {(result.Adapter ? "adapter" : "model")} to {job.OutputPath}");
            return 0;
        });
        return command;
    }
}
