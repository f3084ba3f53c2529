using System.CommandLine;
using System.Globalization;
using Irr.Demo;

namespace Irr.Cli;

/// <summary>
/// <c>irr demo pretrain</c>: trains the demo world's base model from scratch on its plain-text corpus (run once; the
/// result ships with irr, and <c>irr demo</c> starts from it).
/// </summary>
internal static class DemoPretrainCommand
{
    public static Command Create()
    {
        var command = new JobCommand(typeof(PretrainJob), "pretrain");
        command.SetAction(parseResult =>
        {
            var job = command.Build<PretrainJob>(parseResult);
            var result = CommandSupport.Run(parseResult, job, oneBar: true);
            parseResult.InvocationConfiguration.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"pretrained {result.Parameters:N0} parameters on {result.Tokens:N0} tokens in {result.Steps} steps (final loss {result.FinalLoss:F3}) in {result.Seconds / 60:F1} min: {job.OutputPath}"));
            return 0;
        });
        return command;
    }
}
