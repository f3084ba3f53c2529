using System.CommandLine;
using Irr.Jobs;
using Irr.Eval;

namespace Irr.Cli;

/// <summary><c>irr generate</c>: answers to a list of prompts, formatted with the model's chat template (or raw text), as JSONL (<see cref="GenerateJob"/>).</summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var model = CommandSupport.ModelOption();
        var adapter = CommandSupport.AdapterOption();
        var prompts = new Option<string>("--prompts") { Description = $"prompts: {OptionHelp.PromptFormats}", Required = true };
        var system = CommandSupport.SystemPromptOption();
        var noChatTemplate = CommandSupport.NoChatTemplateOption();
        var maxNew = new Option<int>("--max-new-tokens") { Description = "most tokens generated per prompt", DefaultValueFactory = _ => 256 };
        var temperature = new Option<float>("--temperature") { Description = "0 (the default) decodes greedily; above 0 samples" };
        var topP = new Option<float>("--top-p") { Description = "nucleus sampling: keep the most likely tokens up to this probability mass (1: off)", DefaultValueFactory = _ => 1f };
        var topK = new Option<int>("--top-k") { Description = "sample among the k most likely tokens (default 0: off)" };
        var seed = new Option<int>("--seed") { Description = "sampling seed (default 0)" };
        var batchSize = CommandSupport.BatchSizeOption(8, "prompts");
        var outputIds = new Option<bool>("--output-ids") { Description = "write prompt_token_ids and token_ids in each record (vLLM's names; local generation only)" };
        var output = new Option<string>("--output", "-o") { Description = "the responses, one JSON object per line", Required = true };
        var engine = new EngineCommandOptions("generate", "OUTPUT.engine-cache.jsonl, next to --output");

        GenerateJob Build(ParseResult r) => new()
        {
            Model = r.GetValue(model)!,
            Adapter = r.GetValue(adapter),
            Prompts = r.GetValue(prompts)!,
            SystemPrompt = r.GetValue(system)!,
            NoChatTemplate = r.GetValue(noChatTemplate),
            MaxNewTokens = r.GetValue(maxNew),
            Temperature = r.GetValue(temperature),
            TopP = r.GetValue(topP),
            TopK = r.GetValue(topK),
            Seed = r.GetValue(seed),
            BatchSize = r.GetValue(batchSize),
            OutputPath = r.GetValue(output)!,
            OutputIds = r.GetValue(outputIds),
            Engine = engine.Build(r),
        };

        var command = new JobCommand("generate", "Generate answers to prompts with the model's chat template, or to raw text (--no-chat-template), greedy by default, written as JSONL", Build)
        {
            model, adapter, prompts, system, noChatTemplate, maxNew, temperature, topP, topK, seed, batchSize, outputIds, output,
        };
        engine.AddTo(command);
        command.SetAction(parseResult =>
        {
            var job = Build(parseResult);
            var responses = CommandSupport.Run(parseResult, job);
            int failed = responses.Count(r => r.Error is not null);
            parseResult.InvocationConfiguration.Error.WriteLine($"{responses.Count} responses written to {job.OutputPath}" +
                                                                (failed > 0 ? $" ({failed} failed: see \"error\" on their lines)" : ""));
            return CommandSupport.GenerationExit(parseResult.InvocationConfiguration.Error, failed, responses.Count);
        });
        return command;
    }
}
