using System.CommandLine;
using Irr.Jobs;
using System.Globalization;
using Irr.Eval;

namespace Irr.Cli;

/// <summary><c>irr eval ppl</c>: perplexity, exp of the mean token NLL over all predicted tokens of a text corpus (<see cref="EvalPplJob"/>).</summary>
internal static class EvalPplCommand
{
    public static Command Create()
    {
        var model = CommandSupport.ModelOption();
        var adapter = CommandSupport.AdapterOption();
        var data = new Option<string>("--data") { Description = $"texts: .txt (one record per paragraph), or strings or records with a text field; {OptionHelp.DataFormats}", Required = true };
        var maxLength = CommandSupport.MaxLengthOption(1024);
        var batchSize = CommandSupport.BatchSizeOption(8, "texts");
        var output = new Option<string?>("--output", "-o") { Description = "run directory (may exist): perplexity.json" };

        EvalPplJob Build(ParseResult r) => new()
        {
            Model = r.GetValue(model)!,
            Adapter = r.GetValue(adapter),
            Data = r.GetValue(data)!,
            MaxLength = r.GetValue(maxLength),
            BatchSize = r.GetValue(batchSize),
            OutputDir = r.GetValue(output),
        };

        var command = new JobCommand("ppl", "Perplexity of the model on texts: exp(mean NLL over all predicted tokens)", Build)
        {
            model, adapter, data, maxLength, batchSize, output,
        };
        command.SetAction(parseResult =>
        {
            var run = CommandSupport.Run(parseResult, Build(parseResult));
            parseResult.InvocationConfiguration.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"perplexity {run.Perplexity:F4} (mean NLL {run.MeanNll:F4} nats over {run.Tokens} tokens of {run.Records} texts)"));
            return 0;
        });
        return command;
    }
}
