using System.CommandLine;
using Irr.Jobs;
using Irr.Model;

namespace Irr.Cli;

/// <summary>
/// <c>irr score</c>: the log-probability the model gives every labelled (answer) token of a data set,
/// formatted as the model was trained, and the mean loss.
/// </summary>
internal static class ScoreCommand
{
    public static Command Create()
    {
        var model = CommandSupport.ModelOption();
        var adapter = CommandSupport.AdapterOption();
        var data = new Option<string>("--data") { Description = $"records: {OptionHelp.Records}", Required = true };
        var system = CommandSupport.SystemPromptOption();
        var noChatTemplate = CommandSupport.NoChatTemplateOption();
        var maxLength = CommandSupport.MaxLengthOption(1024);
        var batchSize = CommandSupport.BatchSizeOption(8, "records");
        var output = new Option<string?>("--output", "-o") { Description = "write the JSON here (default: standard output)" };
        ScoreJob Build(ParseResult r) => new()
        {
            Model = r.GetValue(model)!,
            Adapter = r.GetValue(adapter),
            Data = r.GetValue(data)!,
            SystemPrompt = r.GetValue(system)!,
            NoChatTemplate = r.GetValue(noChatTemplate),
            MaxLength = r.GetValue(maxLength),
            BatchSize = r.GetValue(batchSize),
            OutputPath = r.GetValue(output),
        };

        var command = new JobCommand("score", "Score a data set: each record's token ids, labels and the log-probability of every answer token, and the mean loss", Build)
        {
            model, adapter, data, system, noChatTemplate, maxLength, batchSize, output,
        };
        command.SetAction(parseResult =>
        {
            var job = Build(parseResult);
            var result = CommandSupport.Run(parseResult, job);
            if (job.OutputPath is null) result.WriteJson(parseResult.InvocationConfiguration.Output);
            parseResult.InvocationConfiguration.Error.WriteLine($"{result.Examples.Count} records, {result.LabelledTokens} labelled tokens, mean loss {result.MeanLoss:F4}");
            return 0;
        });
        return command;
    }
}
