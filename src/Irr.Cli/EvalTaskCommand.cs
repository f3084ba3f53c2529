using System.CommandLine;
using Irr.Jobs;
using System.Globalization;
using Irr.Eval;

namespace Irr.Cli;

/// <summary><c>irr eval task</c>: greedy answers to task examples, scored; prints the accuracy and writes task.json and predictions.jsonl (<see cref="EvalTaskJob"/>).</summary>
internal static class EvalTaskCommand
{
    public static Command Create()
    {
        var model = CommandSupport.ModelOption();
        var adapter = CommandSupport.AdapterOption();
        var data = new Option<string>("--data")
        {
            Description = $"examples: records with a user message and an answer (output, response or answer; GSM8K {{question, answer}}) or multiple choice {{question, choices, answer}}; {OptionHelp.DataFormats}",
            Required = true,
        };
        var metric = new Option<string>("--metric") { Description = "exact, contains, gsm8k or choice", Required = true };
        var system = CommandSupport.SystemPromptOption();
        var noChatTemplate = CommandSupport.NoChatTemplateOption();
        var maxNew = EvalCommand.MaxNewTokensOption(256);
        var batchSize = CommandSupport.BatchSizeOption(8, "examples");
        var limit = EvalCommand.LimitOption("examples");
        var output = new Option<string?>("--output", "-o") { Description = "run directory (may exist): task.json and predictions.jsonl" };
        var engine = new EngineCommandOptions("eval task", "OUTPUT/engine-cache.jsonl");

        EvalTaskJob Build(ParseResult r) => new()
        {
            Model = r.GetValue(model)!,
            Adapter = r.GetValue(adapter),
            Data = r.GetValue(data)!,
            Metric = r.GetValue(metric)!,
            SystemPrompt = r.GetValue(system)!,
            NoChatTemplate = r.GetValue(noChatTemplate),
            MaxNewTokens = r.GetValue(maxNew),
            BatchSize = r.GetValue(batchSize),
            Limit = r.GetValue(limit),
            OutputDir = r.GetValue(output),
            Engine = engine.Build(r),
        };

        var command = new JobCommand("task", "Task accuracy: answer examples greedily and score them (exact, contains, gsm8k, choice)", Build)
        {
            model, adapter, data, metric, system, noChatTemplate, maxNew, batchSize, limit, output,
        };
        engine.AddTo(command);
        command.SetAction(parseResult =>
        {
            var run = CommandSupport.Run(parseResult, Build(parseResult));
            parseResult.InvocationConfiguration.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"accuracy {run.Accuracy:F4} ({run.Correct} of {run.Total}, metric {run.Metric}){(run.Failed > 0 ? $", {run.Failed} failed generations counted incorrect" : "")}"));
            return CommandSupport.GenerationExit(parseResult.InvocationConfiguration.Error, run.Failed, run.Total);
        });
        return command;
    }
}
