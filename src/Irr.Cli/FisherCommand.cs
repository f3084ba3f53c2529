using System.CommandLine;
using Irr.Jobs;
using Irr.Realign;

namespace Irr.Cli;

/// <summary><c>irr fisher</c>: the diagonal empirical Fisher of the aligned model on safety data (<see cref="FisherJob"/>).</summary>
internal static class FisherCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "the aligned model θ_A (a Hugging Face model directory)", Required = true };
        var data = new Option<string>("--data") { Description = $"harmful prompts with the aligned model's safe answers: {OptionHelp.Records}", Required = true };
        var modules = new Option<string>("--modules") { Description = "target modules: a comma-separated list or all", DefaultValueFactory = _ => "all" };
        var batchSize = CommandSupport.BatchSizeOption(8, "records");
        var maxLength = CommandSupport.MaxLengthOption(1024);
        var numSamples = new Option<int?>("--num-samples") { Description = "use only the first N records (default: all)" };
        var system = CommandSupport.SystemPromptOption();
        var noChatTemplate = CommandSupport.NoChatTemplateOption();
        var output = new Option<string>("--output", "-o") { Description = "the Fisher file (.safetensors); with --shard, this shard's partial file", Required = true };
        var shard = new Option<string?>("--shard") { Description = "K/N: compute only shard K of N (batches b with b mod N = K) into a partial file; combine the N parts with irr fisher merge" };

        FisherJob Build(ParseResult r)
        {
            var (k, n) = r.GetValue(shard) is { } text ? FisherJob.ParseShard(text) : (-1, 1);
            return new()
            {
                Shard = k >= 0 ? k : null,
                ShardCount = n,
            Model = r.GetValue(model)!,
            Data = r.GetValue(data)!,
            Modules = TargetModules.Parse(r.GetValue(modules)),
            BatchSize = r.GetValue(batchSize),
            MaxLength = r.GetValue(maxLength),
            NumSamples = r.GetValue(numSamples),
            SystemPrompt = r.GetValue(system)!,
            NoChatTemplate = r.GetValue(noChatTemplate),
            OutputPath = r.GetValue(output)!,
            };
        }

        var command = new JobCommand("fisher", "IRR step 2: the diagonal empirical Fisher F = mean over batches of squared gradients, on safety data", Build)
        {
            model, data, modules, batchSize, maxLength, numSamples, system, noChatTemplate, shard, output,
        };
        command.Subcommands.Add(MergeCommand());
        command.SetAction(parseResult =>
        {
            var job = Build(parseResult);
            var result = CommandSupport.Run(parseResult, job);
            parseResult.InvocationConfiguration.Error.WriteLine(job.Shard is { } k
                ? $"shard {k}/{job.ShardCount}: {result.ShardBatches} of the {result.Batches} batches of {result.Records} records; wrote {result.Tensors} partial sums to {job.OutputPath} (combine with irr fisher merge)"
                : $"{result.Records} records in {result.Batches} batches; wrote {result.Tensors} tensors to {job.OutputPath}");
            return 0;
        });
        return command;
    }

    // irr fisher merge PART... -o F
    private static Command MergeCommand()
    {
        var parts = new Argument<string[]>("PARTS") { Description = "the partial files of irr fisher --shard K/N, K = 0 … N−1", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string>("--output", "-o") { Description = "the Fisher file (.safetensors)", Required = true };
        FisherMergeJob Build(ParseResult r) => new() { Parts = r.GetValue(parts)!, OutputPath = r.GetValue(output)! };
        var command = new JobCommand("merge", "Combine the partial files of irr fisher --shard K/N into the Fisher file", Build) { parts, output };
        command.SetAction(parseResult =>
        {
            var job = Build(parseResult);
            var result = CommandSupport.Run(parseResult, job);
            parseResult.InvocationConfiguration.Error.WriteLine($"{job.Parts.Count} shards, {result.Batches} batches; wrote {result.Tensors} tensors to {job.OutputPath}");
            return 0;
        });
        return command;
    }
}
