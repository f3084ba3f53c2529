using System.CommandLine;
using Irr.Realign;
using Irr.Text;

namespace Irr.Cli;

/// <summary><c>irr fisher</c>: the diagonal empirical Fisher of the aligned model on safety data.</summary>
internal static class FisherCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "the aligned model θ_A (a Hugging Face model directory)", Required = true };
        var data = new Option<string>("--data") { Description = "harmful prompts with the aligned model's safe answers: JSON array or JSONL of {instruction, input, output} or {prompt, response}", Required = true };
        var modules = new Option<string>("--modules") { Description = "target modules: a comma-separated list or all", DefaultValueFactory = _ => "all" };
        var batchSize = CommandSupport.BatchSizeOption(8, "records");
        var maxLength = CommandSupport.MaxLengthOption(1024);
        var numSamples = new Option<int?>("--num-samples") { Description = "use only the first N records (default: all)" };
        var system = CommandSupport.SystemPromptOption();
        var output = new Option<string>("--output", "-o") { Description = "the Fisher file (.safetensors)", Required = true };
        var command = new Command("fisher", "IRR step 2: the diagonal empirical Fisher F = mean over batches of squared gradients, on safety data")
        {
            model, data, modules, batchSize, maxLength, numSamples, system, output,
        };
        command.SetAction(parseResult =>
        {
            string modelDir = parseResult.GetValue(model)!;
            var targets = TargetModules.Parse(parseResult.GetValue(modules));
            var (weights, tokenizer) = CommandSupport.Load(modelDir, null);
            using var _ = weights;
            var records = TrainingRecord.Load(parseResult.GetValue(data)!);
            if (parseResult.GetValue(numSamples) is { } n)
            {
                if (n < 1) throw new IrrException($"--num-samples must be at least 1, not {n}");
                records = records.Take(n).ToList();
            }
            var examples = CommandSupport.Encode(tokenizer, records, SystemPrompt.Resolve(parseResult.GetValue(system)), parseResult.GetValue(maxLength))
                .Select(e => (e.InputIds, e.Labels)).ToList();
            int size = parseResult.GetValue(batchSize);
            if (size < 1) throw new IrrException($"--batch-size must be at least 1, not {size}");
            int batches = (examples.Count + size - 1) / size;
            Dictionary<string, float[]> fisher = [];
            CommandSupport.WithProgress(parseResult, $"fisher ({batches} batches)", batches, report =>
            {
                int done = 0;
                fisher = Fisher.Compute(weights, examples, targets, size, (b, _, _) =>
                {
                    int tokens = examples.Skip(done * size).Take(size).Sum(e => e.InputIds.Length);
                    done = b;
                    report(1, tokens);
                });
            });
            Fisher.Write(parseResult.GetValue(output)!, weights.Config, targets, fisher, new Dictionary<string, string>
            {
                ["format"] = "pt",
                ["irr"] = "fisher",
                ["model"] = Path.GetFullPath(modelDir),
                ["data"] = Path.GetFullPath(parseResult.GetValue(data)!),
                ["batches"] = batches.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["modules"] = string.Join(",", targets),
            });
            parseResult.InvocationConfiguration.Error.WriteLine($"{examples.Count} records in {batches} batches; wrote {fisher.Count} tensors to {parseResult.GetValue(output)}");
            return 0;
        });
        return command;
    }
}
